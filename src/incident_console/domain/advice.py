"""How many gunicorn workers fit in a memory limit, and what limit a number of workers needs.

Each gunicorn worker is a full copy of the application; its RSS grows under load. The peak RSS
seen per worker, the master's RSS and a headroom share give the arithmetic the seed's runbook did
by hand ("4 workers x 200-300 MB = 826 MB: use 2 and a 512M limit"):

    need(workers) = (workers x worker_peak + master) x (1 + headroom)

`2 x cores + 1` (gunicorn's own advice) stays the upper bound: memory only ever lowers it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from incident_console.domain.durations import format_bytes

__all__ = [
    "LIMIT_STEP",
    "WorkerAdvice",
    "advise_workers",
    "cpu_worker_bound",
    "suggest_limit",
    "suggest_workers",
]

LIMIT_STEP = 32 << 20
"""Suggested limits are rounded up to this (32 MiB): numbers people write in compose files."""


def _peak(worker_peak_bytes: int | Sequence[int]) -> int:
    peaks = [worker_peak_bytes] if isinstance(worker_peak_bytes, int) else worker_peak_bytes
    # The largest worker sets the bill: any worker can grow to what one already did.
    return max((int(p) for p in peaks if p and p > 0), default=0)


def cpu_worker_bound(cores: int) -> int:
    """Gunicorn's suggested upper bound on workers: 2 x cores + 1."""
    return 2 * max(int(cores), 1) + 1


def _need(workers: int, peak: int, master: int, headroom: float) -> float:
    return (workers * peak + max(master, 0)) * (1 + max(headroom, 0.0))


def suggest_workers(
    limit_bytes: int,
    worker_peak_bytes: int | Sequence[int],
    master_bytes: int,
    headroom: float = 0.2,
    *,
    cores: int | None = None,
) -> int:
    """The most workers whose peak memory, the master and the headroom fit in the limit.

    Args:
        limit_bytes: The container's memory limit.
        worker_peak_bytes: Peak RSS per worker seen (one number, or one per worker: the
            largest counts).
        master_bytes: The gunicorn master's RSS.
        headroom: Share kept free on top of the need (0.2 = 20%).
        cores: CPU cores; when given, `2 x cores + 1` caps the result.

    Returns:
        At least 1 (one worker is the floor even when it does not fit: then raise the limit).
    """
    peak = _peak(worker_peak_bytes)
    bound = cpu_worker_bound(cores) if cores else None
    if peak <= 0 or limit_bytes <= 0:
        return bound or 1
    budget = limit_bytes / (1 + max(headroom, 0.0)) - max(master_bytes, 0)
    workers = max(math.floor(budget / peak), 1)
    return min(workers, bound) if bound else workers


def suggest_limit(
    workers: int,
    worker_peak_bytes: int | Sequence[int],
    master_bytes: int,
    headroom: float = 0.2,
) -> int:
    """The memory limit `workers` workers need, rounded up to 32 MiB."""
    need = _need(max(workers, 1), _peak(worker_peak_bytes), master_bytes, headroom)
    return max(math.ceil(need / LIMIT_STEP), 1) * LIMIT_STEP


@dataclass(frozen=True, slots=True)
class WorkerAdvice:
    """A worker count and memory limit for one gunicorn service, with the reason in one line.

    Attributes:
        workers: Suggested number of workers.
        limit_bytes: Suggested memory limit (the current one when it is enough).
        raise_limit: True when the current limit cannot hold even the suggested workers.
        why: One line with the arithmetic, for the runbook step and the report.
    """

    workers: int
    limit_bytes: int
    worker_peak_bytes: int
    master_bytes: int
    headroom: float
    raise_limit: bool
    why: str


def advise_workers(
    limit_bytes: int,
    worker_peak_bytes: int | Sequence[int],
    master_bytes: int,
    headroom: float = 0.2,
    *,
    cores: int | None = None,
    current_workers: int | None = None,
) -> WorkerAdvice:
    """Advice for one service: workers for the current limit, or a limit when there is none.

    Args:
        limit_bytes: The limit in effect (0: none).
        worker_peak_bytes: Peak RSS per worker seen.
        master_bytes: The master's RSS.
        headroom: Share kept free (0.2 = 20%).
        cores: CPU cores of the host (caps workers at 2 x cores + 1).
        current_workers: Workers running now (used when there is no limit to fit in).
    """
    peak = _peak(worker_peak_bytes)
    share = f"{round(max(headroom, 0.0) * 100)}%"
    master = f"master {format_bytes(master_bytes)}"
    if limit_bytes > 0:
        workers = suggest_workers(limit_bytes, peak, master_bytes, headroom, cores=cores)
        need = suggest_limit(workers, peak, master_bytes, headroom)
        raise_limit = _need(workers, peak, master_bytes, headroom) > limit_bytes
        limit = need if raise_limit else limit_bytes
        verb = "need" if raise_limit else "fit in"
        shown = format_bytes(need if raise_limit else limit_bytes)
        tail = f", more than the {format_bytes(limit_bytes)} limit" if raise_limit else ""
    else:
        bound = cpu_worker_bound(cores) if cores else None
        workers = max(current_workers or bound or 2, 1)
        if bound:
            workers = min(workers, bound)
        limit = suggest_limit(workers, peak, master_bytes, headroom)
        raise_limit, verb, shown, tail = True, "need", format_bytes(limit), " (no limit set now)"
    noun = "worker" if workers == 1 else "workers"
    why = (
        f"workers peaked at {format_bytes(peak)} each; {workers} {noun} + {master}"
        f" + {share} headroom {verb} {shown}{tail}"
    )
    return WorkerAdvice(
        workers=workers,
        limit_bytes=limit,
        worker_peak_bytes=peak,
        master_bytes=master_bytes,
        headroom=headroom,
        raise_limit=raise_limit,
        why=why,
    )


# The fix as one proposal ---------------------------------------------------------------------

#: A worker recycled more often than every 20 requests costs more in boots than it saves; past
#: 5000 a leak is too slow to matter.
MAX_REQUESTS_RANGE = (20, 5000)
JITTER_SHARE = 0.1
#: With no limit in effect and no kill to learn from, a worker may keep what 1000 requests (the
#: seed's max-requests) leave in it.
UNBOUNDED_REQUESTS = 1000
#: When the limit must grow, it is sized for workers that live this many requests.
RAISED_LIMIT_REQUESTS = 100


@dataclass(frozen=True, slots=True)
class FixEvidence:
    """What was measured of one gunicorn service, each figure with where it came from.

    Attributes:
        limit_bytes: the memory limit in effect (0: none).
        current_workers: workers running now (0: none seen).
        master_bytes: the master's RSS; master_how says how the master was told apart.
        baseline_bytes: a freshly booted worker's RSS (the smallest worker seen).
        overhead_bytes: the container's memory beyond its processes' RSS (page cache...).
        peak_bytes: the largest a worker was seen (kill lines, samples); peak_how says which.
        per_request: bytes a worker keeps per request, cautious figure (None: not measured).
        growth: the growth per request in words (what it rests on), or why it is missing.
    """

    limit_bytes: int
    current_workers: int
    master_bytes: int
    master_how: str
    baseline_bytes: int
    overhead_bytes: int
    peak_bytes: int
    peak_how: str
    per_request: float | None
    growth: str


@dataclass(frozen=True, slots=True)
class FixProposal:
    """Workers, memory limit and max-requests that hold together, or why none is proposed.

    A field is None when it is not proposed (declined); its `why` then says what is missing.
    """

    workers: int | None
    limit_bytes: int | None
    max_requests: int | None
    jitter: int | None
    why_workers: str
    why_limit: str
    why_max_requests: str
    holds: str = ""


def _nice_floor(n: float) -> int:
    """Round down to a number people write: 67 -> 65, 437 -> 430, 2345 -> 2300."""
    step = 5 if n < 100 else 10 if n < 1000 else 100
    return max(int(n // step) * step, 1)


def _round_limit(need: float) -> int:
    return max(math.ceil(need / LIMIT_STEP), 1) * LIMIT_STEP


def _requests_fitting(share: float, baseline: int, per_request: float) -> float:
    """Requests (max-requests plus its jitter) a worker serves before it outgrows `share`."""
    return (share - baseline) / (per_request * (1 + JITTER_SHARE)) if share > baseline else 0.0


def propose_fix(
    e: FixEvidence,
    *,
    workers: int | None = None,
    limit_bytes: int | None = None,
    headroom: float = 0.2,
    declined: str = "run `lab load` or wait for traffic",
) -> FixProposal:
    """Workers, limit and max-requests under which a recycled worker never outgrows its share.

    A worker that is recycled after N requests (+ up to N/10 jitter) peaks at about
    ``baseline + 1.1 N x per_request``; the fix holds when ``workers x that + master + other``
    stays within ``limit / (1 + headroom)``. The worker count starts from half the workers
    seen (the seed went 4 -> 2) and drops while a worker would live fewer than 20 requests;
    when even one does not fit, the limit is raised.

    Args:
        e: what was measured.
        workers: the worker count when set by the operator (kept as given).
        limit_bytes: the limit when set by the operator (kept as given).
        headroom: share of the limit kept free (0.2 = 20%).
        declined: what to do when the growth per request is not known.
    """
    h = max(headroom, 0.0)
    if e.per_request is None or e.per_request <= 0 or e.current_workers <= 0:
        missing = e.growth if e.current_workers > 0 else "no gunicorn workers seen"
        why = f"not proposed: {missing}; {declined} (or --set it)"
        kept = limit_bytes if limit_bytes is not None else (e.limit_bytes or None)
        why_limit = (
            "set by the operator"
            if limit_bytes is not None
            else f"the limit in effect, kept: {why}"
            if kept
            else why
        )
        return FixProposal(None, kept, None, None, why, why_limit, why)
    g = e.per_request
    low, high = MAX_REQUESTS_RANGE
    master, other, base = max(e.master_bytes, 0), max(e.overhead_bytes, 0), max(e.baseline_bytes, 0)
    start = workers if workers is not None else max(e.current_workers // 2, 1)
    limit = limit_bytes if limit_bytes is not None else e.limit_bytes
    how_workers = (
        "set by the operator"
        if workers is not None
        else f"half of the {e.current_workers} seen, as the seed did"
        if e.current_workers > 1
        else "the one seen"
    )
    raised = ""
    if limit > 0:
        usable = limit / (1 + h) - master - other
        count = start
        fit = _requests_fitting(usable / count, base, g)
        while workers is None and count > 1 and fit < low:
            count -= 1
            fit = _requests_fitting(usable / count, base, g)
        if count < start:
            how_workers += f", then {count} so that each lives {low}+ requests"
        if fit < low and limit_bytes is None:
            need = count * (base + RAISED_LIMIT_REQUESTS * (1 + JITTER_SHARE) * g) + master + other
            limit = _round_limit(need * (1 + h))
            raised = (
                f"the {format_bytes(e.limit_bytes)} limit cannot hold {count} worker(s) for "
                f"{low} requests: raised to {format_bytes(limit)} for {RAISED_LIMIT_REQUESTS}"
            )
            fit = _requests_fitting((limit / (1 + h) - master - other) / count, base, g)
    else:
        count = start
        cap = e.peak_bytes if e.peak_bytes > base else base + UNBOUNDED_REQUESTS * 1.1 * g
        fit = _requests_fitting(cap, base, g)
        limit = _round_limit((count * cap + master + other) * (1 + h))
        raised = (
            f"no limit in effect: {format_bytes(limit)} holds {count} worker(s) below "
            f"{format_bytes(cap)} ({e.peak_how or 'the seed’s 1000 requests'})"
        )
    max_requests = min(max(_nice_floor(fit), low), high)
    jitter = max(round(max_requests * JITTER_SHARE), 1)
    peak = base + (max_requests + jitter) * g
    total = count * peak + master + other
    share = total / limit if limit else 0.0
    margin = f"{round(share * 100)}% of {format_bytes(limit)}"
    ok = total <= limit / (1 + h) + 1
    holds = (
        f"a worker recycled after {max_requests}+{jitter} requests peaks at ~{format_bytes(peak)}"
        f" ({format_bytes(base)} at boot); {count} x that + master {format_bytes(master)}"
        + (f" + other {format_bytes(other)}" if other else "")
        + f" = {format_bytes(total)}, {margin}"
        + ("" if ok else f": more than {round(100 / (1 + h))}%, raise mem_limit")
    )
    seen = (
        f"workers peaked at {format_bytes(e.peak_bytes)} unrecycled ({e.peak_how})"
        if (e.peak_bytes)
        else "no worker peak seen"
    )
    noun = "worker" if count == 1 else "workers"
    why_workers = f"{count} {noun} ({how_workers}); {seen}; {holds}"
    if fit > high:
        tail = f"recycle after {high} at most"
    elif fit < low:
        tail = f"even {low} requests do not fit: recycle after {low} and raise mem_limit"
    else:
        tail = f"recycle after {max_requests} (+ up to {jitter} jitter)"
    why_max = (
        f"workers grow {e.growth}; sized at {format_bytes(g)} per request, a worker booted at "
        f"{format_bytes(base)} may grow to {format_bytes(peak)}: {tail}"
    )
    if limit_bytes is not None:
        why_limit = f"set by the operator; {holds}"
    elif raised:
        why_limit = raised
    else:
        why_limit = f"the limit in effect holds the fix: {margin}"
    return FixProposal(count, limit, max_requests, jitter, why_workers, why_limit, why_max, holds)

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

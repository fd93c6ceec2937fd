"""How many requests a worker that keeps memory may serve before gunicorn recycles it.

`--max-requests N` restarts a worker after N requests, which gives back what it kept. The
right N comes from two measurements and the memory the workers are given:

    growth per request = worker RSS growth (bytes/s) / requests per second per worker
    budget per worker  = (limit / (1 + headroom) - master - overhead) / workers - baseline
    max_requests       = budget / (growth per request x (1 + jitter share))

- the growth: the median of the pairwise RSS slopes of each worker pid (Theil-Sen pooled over
  pids), so a worker killed or recycled mid-window starts a new series instead of a drop;
- the request rate: access-log lines (one per request served) per second, shared evenly over
  the workers gunicorn keeps;
- the baseline: the smallest worker RSS seen (a freshly booted worker);
- the overhead: what the container uses beyond its processes' RSS (page cache, kernel memory).

`--max-requests-jitter` adds up to `jitter` requests on top, so the budget must hold N + jitter.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from incident_console.domain.durations import format_bytes

__all__ = [
    "MAX_REQUESTS_RANGE",
    "RecycleAdvice",
    "advise_max_requests",
    "request_rate",
    "worker_growth",
]

#: Recycling more often than every 20 requests costs more in boots than it saves; beyond 5000 a
#: leak is too slow to matter.
MAX_REQUESTS_RANGE = (20, 5000)
JITTER_SHARE = 0.1
#: Fewer access lines, or a shorter span, is no rate.
MIN_LINES = 5
MIN_RATE_SPAN_S = 5.0
#: Fewer slope pairs, or a shorter span of process frames, is no growth rate.
MIN_PAIRS = 2
MIN_GROWTH_SPAN_S = 8.0
#: A worker growing slower than this (64 KiB/min) is not leaking in any way recycling fixes.
MIN_GROWTH_BYTES_PER_S = 64 * 1024 / 60


def request_rate(times: Iterable[float]) -> float | None:
    """Requests per second from the times of access-log lines (None: too few to tell).

    Args:
        times: Epoch seconds of each access line (any order).

    Returns:
        (lines - 1) / span between the first and the last, or None with fewer than 5 lines
        or under 5 s between them.
    """
    stamps = sorted(t for t in times if isinstance(t, int | float) and math.isfinite(t))
    if len(stamps) < MIN_LINES:
        return None
    span = stamps[-1] - stamps[0]
    if span < MIN_RATE_SPAN_S:
        return None
    return (len(stamps) - 1) / span


def worker_growth(frames: Sequence[tuple[float, Mapping[Hashable, int]]]) -> float | None:
    """How fast one worker's RSS grows (bytes/s), from frames of worker pid -> RSS.

    Args:
        frames: (epoch seconds, {worker: rss bytes}) of the workers only (not the master);
            a worker is its pid, or (container, pid) when several containers serve.

    Returns:
        The median of every pairwise slope within each pid's series (a dead worker's pid and a
        new one's never pair), or None with fewer than 2 pairs or under 8 s of frames.
    """
    series: dict[Hashable, list[tuple[float, int]]] = {}
    for when, workers in frames:
        for pid, rss in workers.items():
            series.setdefault(pid, []).append((when, rss))
    slopes: list[float] = []
    span = 0.0
    for points in series.values():
        points.sort()
        span = max(span, points[-1][0] - points[0][0])
        for i, (t0, v0) in enumerate(points):
            for t1, v1 in points[i + 1 :]:
                if t1 - t0 >= 1.0:
                    slopes.append((v1 - v0) / (t1 - t0))
    if len(slopes) < MIN_PAIRS or span < MIN_GROWTH_SPAN_S:
        return None
    return statistics.median(slopes)


@dataclass(frozen=True, slots=True)
class RecycleAdvice:
    """A max-requests and jitter for one service, with the arithmetic in one line.

    Attributes:
        max_requests: Requests a worker serves before gunicorn recycles it.
        jitter: Up to this many more (so workers do not all restart at once).
        growth_per_request: Bytes a worker keeps per request (None: not measured).
        why: The numbers behind it, or what could not be measured.
    """

    max_requests: int
    jitter: int
    growth_per_request: float | None
    why: str


def _nice_floor(n: float) -> int:
    """Round down to a number people write: 67 -> 65, 437 -> 430, 2345 -> 2300."""
    step = 5 if n < 100 else 10 if n < 1000 else 100
    return max(int(n // step) * step, 1)


def advise_max_requests(
    *,
    limit_bytes: int,
    workers: int,
    master_bytes: int,
    baseline_bytes: int,
    growth_bytes_per_s: float | None,
    requests_per_s: float | None,
    current_workers: int,
    overhead_bytes: int = 0,
    headroom: float = 0.2,
    fallback: tuple[int, int] = (1000, 50),
) -> RecycleAdvice:
    """Max-requests from the measured growth per request and the memory each worker has.

    Args:
        limit_bytes: The memory limit the workers will run in (0: none, nothing to fit).
        workers: The workers that will run in it.
        master_bytes: The gunicorn master's RSS.
        baseline_bytes: A freshly booted worker's RSS.
        growth_bytes_per_s: One worker's RSS growth now (see `worker_growth`).
        requests_per_s: The service's requests per second now (see `request_rate`).
        current_workers: The workers serving that rate now (it is shared evenly over them).
        overhead_bytes: Container memory beyond its processes' RSS.
        headroom: Share of the limit kept free, as the worker advice keeps it.
        fallback: (max_requests, jitter) when something cannot be measured.

    Returns:
        A `RecycleAdvice`; the fallback, saying what was missing, when it cannot be measured.
    """
    keep, keep_jitter = fallback
    if not requests_per_s or requests_per_s <= 0:
        return RecycleAdvice(keep, keep_jitter, None, (
            f"no access-log lines to measure the request rate: kept {keep}"
        ))  # fmt: skip
    if growth_bytes_per_s is None or current_workers <= 0:
        return RecycleAdvice(keep, keep_jitter, None, (
            f"too few worker RSS samples to measure their growth: kept {keep}"
        ))  # fmt: skip
    rate = f"{requests_per_s:.1f} req/s over {current_workers} workers"
    if growth_bytes_per_s < MIN_GROWTH_BYTES_PER_S:
        per_min = format_bytes(max(growth_bytes_per_s, 0.0) * 60)
        return RecycleAdvice(keep, keep_jitter, None, (
            f"workers do not grow measurably ({per_min}/min at {rate}): kept {keep}"
        ))  # fmt: skip
    per_request = growth_bytes_per_s * current_workers / requests_per_s
    grows = f"workers grow ~{format_bytes(per_request)} per request at {rate}"
    if limit_bytes <= 0 or workers <= 0:
        return RecycleAdvice(keep, keep_jitter, per_request, (
            f"{grows}; no limit to fit them in: kept {keep}"
        ))  # fmt: skip
    usable = limit_bytes / (1 + max(headroom, 0.0)) - max(master_bytes, 0) - max(overhead_bytes, 0)
    budget = usable / workers - max(baseline_bytes, 0)
    low, high = MAX_REQUESTS_RANGE
    raw = budget / (per_request * (1 + JITTER_SHARE)) if budget > 0 else 0.0
    max_requests = min(max(_nice_floor(raw), low), high)
    jitter = max(round(max_requests * JITTER_SHARE), 1)
    noun = "worker" if workers == 1 else "workers"
    other = f", other {format_bytes(overhead_bytes)}" if overhead_bytes > 0 else ""
    fits = (
        f"{workers} {noun} in {format_bytes(limit_bytes)} ({round(headroom * 100)}% headroom, "
        f"master {format_bytes(master_bytes)}{other}) leave "
        f"{format_bytes(max(budget, 0.0))} each to grow above {format_bytes(baseline_bytes)}"
    )
    if raw < low:
        tail = f"even {low} requests do not fit: recycle after {low} and raise the limit"
    elif raw > high:
        tail = f"recycle after {high} at most"
    else:
        tail = f"recycle after {max_requests} (+ up to {jitter} jitter)"
    return RecycleAdvice(max_requests, jitter, per_request, f"{grows}; {fits}: {tail}")

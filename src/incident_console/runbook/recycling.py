"""The max-requests proposal from what the monitor measured: access lines and worker RSS.

`HostState` keeps the recent process frames of each container and the recent log lines; this
module picks the service's out of them and hands the numbers to the pure arithmetic in
:mod:`incident_console.domain.recycle`.
"""

from __future__ import annotations

import statistics
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

from incident_console.domain.events import ContainerProcesses, ProcessRss
from incident_console.domain.logsignals import is_access_line
from incident_console.domain.recycle import (
    RecycleAdvice,
    advise_max_requests,
    request_rate,
    worker_growth,
)
from incident_console.monitor.state import ContainerView, HostState

__all__ = ["RecycleInputs", "measure", "recycle_advice", "split_gunicorn"]

#: How far back from the newest process frame the growth and the request rate are measured.
WINDOW_S = 300.0
#: A container sample this close to a process frame is the same moment.
PAIR_S = 2.0


@dataclass(frozen=True, slots=True)
class RecycleInputs:
    """What was measured for one service (see `advise_max_requests` for each)."""

    growth_bytes_per_s: float | None
    requests_per_s: float | None
    current_workers: int
    master_bytes: int
    baseline_bytes: int
    overhead_bytes: int


def split_gunicorn(procs: Sequence[ProcessRss]) -> tuple[ProcessRss | None, list[ProcessRss]]:
    """(master, workers): the gunicorn processes (else python ones), the lowest pid being the
    master. A healthcheck's `python3 -c ...` is no worker: a fresh 8 MiB interpreter would pass
    for a just-booted one and make the baseline."""
    app = [p for p in procs if "gunicorn" in p.name] or [p for p in procs if "python" in p.name]
    if not app:
        return None, []
    master = min(app, key=lambda p: p.pid)
    return master, [p for p in app if p is not master]


def _overhead(view: ContainerView, frames: Sequence[ContainerProcesses]) -> list[int]:
    """Container memory minus its processes' RSS, at each frame with a sample beside it."""
    out: list[int] = []
    samples = list(view.samples)
    for frame in frames:
        near = [s for s in samples if abs(s.time - frame.time) <= PAIR_S]
        if near:
            sample = min(near, key=lambda s: abs(s.time - frame.time))
            out.append(sample.memory_used_bytes - sum(p.rss_bytes for p in frame.processes))
    return out


def measure(state: HostState, views: Sequence[ContainerView]) -> RecycleInputs:
    """Worker growth, request rate, workers, master, baseline and overhead of one service."""
    newest = max((f.time for v in views for f in v.process_history), default=0.0)
    since = newest - WINDOW_S
    growth_frames: list[tuple[float, Mapping[Hashable, int]]] = []
    masters: list[int] = []
    workers_rss: list[int] = []
    overheads: list[int] = []
    current = 0
    for view in views:
        frames = [f for f in view.process_history if f.time >= since]
        counts: list[int] = []
        for frame in frames:
            master, workers = split_gunicorn(frame.processes)
            if master is not None:
                masters.append(master.rss_bytes)
            counts.append(len(workers))
            workers_rss += [p.rss_bytes for p in workers]
            keyed: dict[Hashable, int] = {(view.info.id, p.pid): p.rss_bytes for p in workers}
            growth_frames.append((frame.time, keyed))
        # gunicorn keeps its worker count: a frame just after a kill shows one fewer.
        current += round(statistics.median(counts)) if counts else 0
        overheads += _overhead(view, frames)
    ids = {v.info.id for v in views}
    times = [
        line.time
        for line in state.logs
        if line.id in ids and line.time >= since and is_access_line(line.text)
    ]
    return RecycleInputs(
        growth_bytes_per_s=worker_growth(growth_frames),
        requests_per_s=request_rate(times),
        current_workers=current,
        master_bytes=round(statistics.median(masters)) if masters else 0,
        baseline_bytes=min(workers_rss, default=0),
        overhead_bytes=max(round(statistics.median(overheads)), 0) if overheads else 0,
    )


def recycle_advice(
    state: HostState,
    views: Sequence[ContainerView],
    *,
    limit_bytes: int,
    workers: int,
    fallback: tuple[int, int],
) -> RecycleAdvice:
    """The max-requests and jitter for `workers` workers in `limit_bytes`, from measurements.

    Args:
        state: The monitor's state (process frames, samples, log lines).
        views: The service's live containers.
        limit_bytes: The limit the workers will run in (the proposed one).
        workers: The workers that will run in it (the proposed count).
        fallback: (max_requests, jitter) when the growth or the rate cannot be measured.
    """
    m = measure(state, views)
    return advise_max_requests(
        limit_bytes=limit_bytes,
        workers=workers,
        master_bytes=m.master_bytes,
        baseline_bytes=m.baseline_bytes,
        growth_bytes_per_s=m.growth_bytes_per_s,
        requests_per_s=m.requests_per_s,
        current_workers=m.current_workers,
        overhead_bytes=m.overhead_bytes,
        fallback=fallback,
    )

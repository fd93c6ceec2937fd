"""What the monitor has seen of a gunicorn service, as evidence for the fix.

`HostState` keeps each container's process frames (every 5 s, the last 10 minutes), the peak
RSS of every pid since the console started, the kernel's OOM kills and the recent log lines.
This module turns them into :class:`~incident_console.domain.advice.FixEvidence`: the master
told apart from its workers, the workers' peaks (kill lines and samples), a fresh worker's
size, and the growth per request over every interval that had requests
(:mod:`incident_console.domain.recycle`).
"""

from __future__ import annotations

import bisect
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from incident_console.domain.advice import FixEvidence
from incident_console.domain.durations import format_bytes
from incident_console.domain.events import ContainerProcesses, OomKill, ProcessRss
from incident_console.domain.logsignals import is_access_line
from incident_console.domain.recycle import Interval, growth_per_request
from incident_console.monitor.endpoints import healthcheck_path
from incident_console.monitor.leaks import per_request_of_worst
from incident_console.monitor.state import ContainerView, HostState

__all__ = ["SinceStart", "health_paths", "is_request", "kill_rss", "measure", "split_gunicorn"]

#: A container sample this close to a process frame is the same moment.
PAIR_S = 2.0
#: The worker count is the median over this many recent frames (a frame just after a kill
#: shows one fewer: gunicorn keeps its count).
COUNT_FRAMES = 12
_REQUEST_PATH = re.compile(r'"[A-Z]+ (\S+) HTTP/')
_KILL_RSS = re.compile(r"(anon|file|shmem)-rss:(\d+)kB")


def _app(procs: Iterable[ProcessRss]) -> list[ProcessRss]:
    """The gunicorn processes (else python ones). A healthcheck's `python3 -c ...` is no
    worker: a fresh 8 MiB interpreter would pass for a just-booted one and make the baseline."""
    procs = list(procs)
    return [p for p in procs if "gunicorn" in p.name] or [p for p in procs if "python" in p.name]


def split_gunicorn(
    procs: Sequence[ProcessRss],
    *,
    main_pid: int = 0,
    first_seen: dict[int, float] | None = None,
) -> tuple[ProcessRss | None, list[ProcessRss]]:
    """(master, workers) of one frame.

    The master is the container's main process when that is a gunicorn (docker's State.Pid:
    an entrypoint that execs gunicorn), else the gunicorn seen first (workers are forked
    after it and replaced when killed), else the lowest pid. The lowest pid alone is wrong on
    a busy host: pids wrap (pid_max is often 32768) and a worker respawned after a kill can
    get a pid below its master's.
    """
    app = _app(procs)
    if not app:
        return None, []
    master = next((p for p in app if main_pid and p.pid == main_pid), None)
    if master is None:
        seen = first_seen or {}
        master = min(app, key=lambda p: (seen.get(p.pid, float("inf")), p.pid))
    return master, [p for p in app if p is not master]


def _first_seen(frames: Iterable[ContainerProcesses]) -> dict[int, float]:
    seen: dict[int, float] = {}
    for frame in frames:
        for proc in frame.processes:
            seen.setdefault(proc.pid, frame.time)
    return seen


def kill_rss(kill: OomKill) -> int:
    """The killed process's RSS (anon + file + shmem, from the kernel line), else anon-rss."""
    total = 0
    for line in kill.raw:
        if "Killed process" in line:
            total = sum(int(kb) * 1024 for _, kb in _KILL_RSS.findall(line))
    return total or int(kill.anon_rss_bytes or 0)


def _skip_paths(views: Sequence[ContainerView], extra: Iterable[str]) -> set[str]:
    """Request paths that are health checks, not traffic: they keep nothing."""
    paths = {p for p in extra if p}
    for view in views:
        found = healthcheck_path(view.info.healthcheck)
        if found:
            paths.add(found[0])
    return paths


def _request_times(state: HostState, cid: str, skip: set[str]) -> list[float]:
    times: list[float] = []
    for line in state.logs:
        if line.id != cid or not is_access_line(line.text):
            continue
        match = _REQUEST_PATH.search(line.text)
        if match and match.group(1).split("?")[0] in skip:
            continue
        times.append(line.time)
    times.sort()
    return times


def _intervals(
    frames: Sequence[ContainerProcesses], master_of: dict[int, int], requests: list[float]
) -> list[Interval]:
    """Consecutive frames with the same workers in both, with the requests logged between."""
    out: list[Interval] = []
    for before, after in zip(frames, frames[1:], strict=False):
        a = {p.pid: p.rss_bytes for p in _app(before.processes) if p.pid != master_of[id(before)]}
        b = {p.pid: p.rss_bytes for p in _app(after.processes) if p.pid != master_of[id(after)]}
        if not a or a.keys() != b.keys():
            continue  # a worker died or was born in between: its memory went back
        served = bisect.bisect_right(requests, after.time) - bisect.bisect_right(
            requests, before.time
        )
        growth = sum(b[pid] - a[pid] for pid in a)
        out.append(Interval(before.time, after.time, growth, served))
    return out


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


@dataclass(frozen=True, slots=True)
class SinceStart:
    """The live container's whole log since it started, as counted by the caller.

    Attributes:
        container_id: the container.
        requests: access lines (health checks left out) since it started.
        recycled: whether gunicorn recycled a worker in that time (then what a recycled
            worker kept is unknown, and this count proves nothing).
        boots: workers gunicorn booted in that time ("Booting worker with pid"), None when
            the log has no such line (not gunicorn). More boots than live workers is a worker
            that died: killed, timed out or crashed.
    """

    container_id: str
    requests: int
    recycled: bool
    boots: int | None = None


def is_request(text: str, skip: set[str]) -> bool:
    """An access line of a request that is traffic (not one of the `skip` health paths)."""
    if not is_access_line(text):
        return False
    match = _REQUEST_PATH.search(text)
    return not (match and match.group(1).split("?")[0] in skip)


def health_paths(views: Sequence[ContainerView], extra: Iterable[str] = ()) -> set[str]:
    """Request paths that are health checks, not traffic: they keep nothing."""
    return _skip_paths(views, extra)


def _since_start(
    state: HostState, view: ContainerView, master: int, baseline: int, since: SinceStart
) -> tuple[Interval | None, str]:
    """One interval from the container's start to now: what every worker kept (the live ones'
    RSS above a fresh worker's, the killed ones' RSS at their kill) over every request served.

    A fresh worker is taken no bigger than its master (a worker forked or booted from the same
    app): when no fresh worker was seen, the smallest one seen would understate the growth.
    """
    if since.recycled or since.requests <= 0 or not view.process_history:
        return None, "workers were recycled since it started" if since.recycled else ""
    started = view.info.started_at or 0.0
    frame = view.process_history[-1]
    fresh = min(baseline, master) if master else baseline
    _, workers = split_gunicorn(
        frame.processes, main_pid=view.info.pid, first_seen=_first_seen(view.process_history)
    )
    kept = sum(max(p.rss_bytes - fresh, 0) for p in workers)
    # Kills before this start belong to another life of the container (restart: same id).
    mine = [k for k in state.oom_kills if k.container_id == view.info.id and k.time >= started - 5]
    kills = [rss for rss in (kill_rss(k) for k in mine) if rss > 0]
    died = (since.boots - len(workers)) if since.boots is not None else 0
    if died > len(kills):
        # A dead worker's memory went back with it; only its kill line said how much it held.
        # The kernel's buffer rotates (128 KiB: minutes on a busy server), so without that
        # line the whole-log count would understate the growth: it proves nothing then.
        return None, (
            f"{died} worker(s) died since {view.info.name} started and what "
            f"{died - len(kills)} of them held is unknown (no kill line with its size"
            " in the kernel log now)"
        )
    kept += sum(max(k - fresh, 0) for k in kills)
    return Interval(started, frame.time, kept, since.requests), (
        f"since {view.info.name} started: {len(workers)} workers now and {len(kills)} killed"
    )


def measure(
    state: HostState,
    views: Sequence[ContainerView],
    *,
    skip_paths: Iterable[str] = (),
    since_start: SinceStart | None = None,
) -> FixEvidence:
    """The evidence about one service's containers (`views`) in what the monitor has seen.

    Args:
        state: the monitor's state.
        views: the service's containers in one compose project (live ones first).
        skip_paths: request paths that are probes, not traffic (the health URL's).
        since_start: the live container's requests since it started (read from its whole
            log by the caller), used when the samples had no request to measure over.
    """
    skip = _skip_paths(views, skip_paths)
    intervals: list[Interval] = []
    masters: list[int] = []
    master_how: set[str] = set()
    workers_rss: list[int] = []
    peaks: list[int] = []
    overheads: list[int] = []
    current = 0
    samples = 0
    for view in views:
        frames = list(view.process_history)
        seen = _first_seen(frames)
        master_of: dict[int, int] = {}
        counts: list[int] = []
        master_pids: set[int] = set()
        for frame in frames:
            master, workers = split_gunicorn(
                frame.processes, main_pid=view.info.pid, first_seen=seen
            )
            master_of[id(frame)] = master.pid if master else -1
            if master is not None:
                masters.append(master.rss_bytes)
                master_pids.add(master.pid)
                master_how.add(
                    "the container's main process"
                    if master.pid == view.info.pid
                    else "the gunicorn seen first"
                )
            counts.append(len(workers))
            workers_rss += [p.rss_bytes for p in workers]
        if not view.gone and counts:
            current += round(statistics.median(counts[-COUNT_FRAMES:]))
        samples += len(frames)
        peaks += [rss for pid, rss in view.peak_rss.items() if pid not in master_pids]
        intervals += _intervals(frames, master_of, _request_times(state, view.info.id, skip))
        overheads += _overhead(view, frames)
    ids = {v.info.id for v in views}
    kills = [kill_rss(k) for k in state.oom_kills if k.container_id in ids]
    kills = [k for k in kills if k > 0]
    sampled = max(peaks, default=0)
    peak = max(sampled, *kills) if kills else sampled
    how = []
    if kills:
        how.append(f"{len(kills)} kill line(s), largest {format_bytes(max(kills))}")
    if sampled:
        how.append(f"process samples, largest {format_bytes(sampled)}")
    estimate, missing = growth_per_request(intervals)
    baseline = min(workers_rss, default=0)
    master_rss = round(statistics.median(masters)) if masters else 0
    live = next((v for v in views if since_start and v.info.id == since_start.container_id), None)
    whole_how = ""
    if estimate is None and since_start is not None and live is not None:
        whole, said = _since_start(state, live, master_rss, baseline, since_start)
        whole_estimate = growth_per_request([whole])[0] if whole is not None else None
        if whole is not None and whole_estimate is not None:
            estimate = replace(whole_estimate, seconds=whole.end - whole.start)
            missing, whole_how = "", said
        elif said:
            missing += f"; {said}"
    if estimate is not None:
        growth = estimate.describe()
        if whole_how:
            growth = growth.replace("of samples)", f"of its log, {whole_how})")
        if skip:
            growth = growth.replace(" requests over", f" requests ({', '.join(sorted(skip))} "
                                    "left out) over", 1)  # fmt: skip
    else:
        growth = missing if samples else "no process samples of the service yet"
    per_request = estimate.high if estimate is not None else None
    worst = per_request_of_worst(state, [v.info.id for v in views])
    if worst is not None:
        # Measured per route: a worker that serves N requests of the likely leak peaks at
        # its boot size plus N times what that route keeps, whatever the mix was while seen.
        per_request, growth = worst
    limit = max((v.info.memory_limit_bytes for v in views if not v.gone), default=0)
    return FixEvidence(
        limit_bytes=limit,
        current_workers=current,
        master_bytes=master_rss,
        master_how=" / ".join(sorted(master_how)) or "no master seen",
        baseline_bytes=baseline,
        overhead_bytes=max(round(statistics.median(overheads)), 0) if overheads else 0,
        peak_bytes=peak,
        peak_how="; ".join(how),
        per_request=per_request,
        growth=growth,
    )

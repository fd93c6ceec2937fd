"""The leak estimator, fed by the monitor: per-worker RSS and access-log lines, per container.

HostMonitor hands every event to :meth:`LeakTracker.observe`. The tracker keeps, per container,
its process samples and its requests for the window (30 minutes, bounded), detects its log's
format, and every `every_s` seconds re-runs :func:`~incident_console.domain.leak.estimate_leaks`
for the containers that got new data. The reports are put in ``HostState.leaks`` (what the
detail, the OOM pop-up, `diagnose` and the runbook read); when a report names a route (or
names another one), a ``likely leak`` note is returned for the monitor to journal, which the
postmortem reads back.

Workers are matched to the requests they served by pid: the log's ``%(p)s`` is the pid inside
the container, the sampler's ``N`` line gives it for each process. Where the log carries no pid,
the container's worker processes are summed and a change of that set of pids starts a new unit.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from incident_console.domain.access_log import LogFormat, parse_access_line
from incident_console.domain.durations import format_bytes
from incident_console.domain.events import ContainerGone, ContainerProcesses, Event, LogLine, Note
from incident_console.domain.leak import LeakReport, estimate_leaks, leak_followup
from incident_console.monitor.state import HostState

__all__ = [
    "LEAK_NOTE",
    "LeakTracker",
    "leak_findings",
    "leak_followups",
    "likely_leak",
    "per_request_of_worst",
]

#: The journal note's `what` when a route is named (the postmortem looks for it).
LEAK_NOTE = "likely leak"
#: How much history the estimate rests on.
WINDOW_S = 1800.0
#: Bounds per container: process frames (every 5 s: 30 min) and requests kept.
FRAMES_KEPT = 400
REQUESTS_KEPT = 60_000
#: A worker that appears while the container is watched is left out for this long.
WARMUP_S = 30.0
#: A named route's estimate changing by more than this share is journaled again.
RENOTE_SHARE = 0.25


@dataclass(slots=True)
class _Container:
    frames: deque[ContainerProcesses] = field(default_factory=lambda: deque(maxlen=FRAMES_KEPT))
    #: (time, the worker's pid as a unit key or None, route).
    requests: deque[tuple[float, str | None, str]] = field(
        default_factory=lambda: deque(maxlen=REQUESTS_KEPT)
    )
    formats: Counter[str] = field(default_factory=Counter)
    lines: int = 0
    first_frame: float | None = None
    dirty: bool = False
    noted: tuple[str, float] | None = None  # the route last journaled and its figure


def _app_processes(frame: ContainerProcesses) -> list[tuple[int, int, int]]:
    """(pid, ns pid, rss) of the frame's most common process name (the workers and their
    master, not a healthcheck's short-lived `python3 -c`)."""
    names = Counter(p.name for p in frame.processes)
    if not names:
        return []
    name = names.most_common(1)[0][0]
    # The anonymous RSS where the sampler read it: a leak grows the heap, while the file-backed
    # part (the interpreter, its libraries) shrinks and grows back as the cgroup nears its
    # limit and reclaims page cache: noise, megabytes of it.
    return [
        (p.pid, p.ns_pid or p.pid, p.anon_bytes or p.rss_bytes)
        for p in frame.processes
        if p.name == name
    ]


class LeakTracker:
    """Runs the leak estimator over what a host's monitor sees.

    Args:
        state: the monitor's state (the reports go to ``state.leaks``).
        every_s: seconds between estimates of a container (by the events' clock).
        clock: the console's clock, to put log stamps (the server's clock) on the samples'
            clock; None takes the stamps as they are.
    """

    def __init__(
        self, state: HostState, *, every_s: float = 5.0, clock: Callable[[], float] | None = None
    ) -> None:
        self.state = state
        self.every_s = every_s
        self._clock = clock
        self._containers: dict[str, _Container] = {}
        self._last_run = 0.0
        #: console clock - log stamp, the smallest seen: the clocks' offset plus the least delay.
        self._offset: float | None = None

    def observe(self, event: Event) -> list[Event]:
        """Take one event; returns the notes to journal (a route newly named)."""
        if isinstance(event, ContainerProcesses):
            box = self._containers.setdefault(event.id, _Container())
            box.frames.append(event)
            if box.first_frame is None:
                box.first_frame = event.time
            box.dirty = True
        elif isinstance(event, LogLine):
            self._line(event)
        elif isinstance(event, ContainerGone):
            self._containers.pop(event.id, None)
            self.state.leaks.pop(event.id, None)
            return []
        else:
            return []
        if event.time - self._last_run < self.every_s:
            return []
        self._last_run = event.time
        return self.run(event.time)

    def _line(self, line: LogLine) -> None:
        box = self._containers.get(line.id)
        if box is None or box.first_frame is None:
            return  # no samples of it yet: the log's history has nothing to be fitted to
        box.lines += 1
        parsed = parse_access_line(line.text, self._hint(line.id))
        if parsed is None:
            return
        box.formats[parsed.format] += 1
        when = line.time
        if self._clock is not None:
            seen = self._clock() - when
            # A history replayed at start arrives late (large), a live line at once.
            if self._offset is None or seen < self._offset:
                self._offset = seen
            if abs(self._offset) > 1.0:  # the server's clock is off: align to the samples
                when += self._offset
        if when < box.first_frame:
            return
        unit = str(parsed.pid) if parsed.pid is not None else None
        box.requests.append((when, unit, parsed.route))
        box.dirty = True

    def _hint(self, cid: str) -> str:
        box = self._containers.get(cid)
        if box is None or not box.frames:
            return ""
        return " ".join(p.name for p in box.frames[-1].processes)

    def run(self, now: float) -> list[Event]:
        """Estimate every container with new data; the notes of routes newly named."""
        notes: list[Event] = []
        for cid, box in self._containers.items():
            if not box.dirty:
                continue
            box.dirty = False
            report = self.estimate(cid, now)
            if report is None:
                continue
            self.state.leaks[cid] = report
            note = self._note(cid, box, report, now)
            if note is not None:
                notes.append(note)
        return notes

    def estimate(self, cid: str, now: float) -> LeakReport | None:
        """The report of one container now (None: nothing seen of it)."""
        box = self._containers.get(cid)
        if box is None:
            return None
        fmt = box.formats.most_common(1)[0][0] if box.formats else LogFormat.NONE
        if not box.formats:
            if box.lines == 0:
                return None  # a container that logs nothing: nothing to say about its log
            return LeakReport(
                "not_enough_data",
                f"its log has no request lines ({box.lines} lines seen)",
                log_format=LogFormat.NONE,
            )
        since = now - WINDOW_S
        frames = [f for f in box.frames if f.time >= since]
        requests = [r for r in box.requests if r[0] >= since]
        with_pid = sum(1 for r in requests if r[1] is not None)
        if requests and with_pid * 2 >= len(requests):
            samples: dict[str, list[tuple[float, int]]] = {}
            born: dict[str, float] = {}
            first = box.frames[0].time if box.frames else 0.0
            for frame in box.frames:
                for _pid, ns_pid, _rss in _app_processes(frame):
                    born.setdefault(str(ns_pid), frame.time)
            for frame in frames:
                for _pid, ns_pid, rss in _app_processes(frame):
                    unit = str(ns_pid)
                    # A worker booted while we watched (a kill's or a recycle's replacement)
                    # grows as it warms up, with whatever requests it serves first.
                    if born[unit] > first and frame.time < born[unit] + WARMUP_S:
                        continue
                    samples.setdefault(unit, []).append((frame.time, rss))
            reqs: Sequence[tuple[float, str | None, str]] = requests  # None: not fitted
            units = "worker pid"
        else:
            samples, reqs = self._per_container(frames, requests)
            units = "container"
        return estimate_leaks(samples, reqs, units=units, log_format=fmt)

    @staticmethod
    def _per_container(
        frames: Iterable[ContainerProcesses], requests: list[tuple[float, str | None, str]]
    ) -> tuple[dict[str, list[tuple[float, int]]], list[tuple[float, str | None, str]]]:
        """The workers summed; a new set of pids (a kill, a recycle) is a new unit."""
        samples: dict[str, list[tuple[float, int]]] = {}
        spans: list[tuple[float, str]] = []  # (first frame time, unit)
        for frame in frames:
            procs = _app_processes(frame)
            unit = ",".join(str(p) for p in sorted(p for p, _n, _r in procs))
            if unit not in samples:
                spans.append((frame.time, unit))
            samples.setdefault(unit, []).append((frame.time, sum(r for _p, _n, r in procs)))
        reqs: list[tuple[float, str | None, str]] = []
        k = 0
        for t, _pid, route in requests:
            while k + 1 < len(spans) and spans[k + 1][0] < t:
                k += 1
            if spans:
                reqs.append((t, spans[k][1], route))
        return samples, reqs

    def _note(self, cid: str, box: _Container, report: LeakReport, now: float) -> Note | None:
        worst = report.worst
        if worst is None:
            return None
        if box.noted is not None:
            route, figure = box.noted
            if route == worst.route and abs(worst.bytes_per_request - figure) <= (
                RENOTE_SHARE * figure
            ):
                return None
        box.noted = (worst.route, worst.bytes_per_request)
        view = self.state.containers.get(cid)
        return Note(
            time=now,
            what=LEAK_NOTE,
            data={
                "container_id": cid,
                "container": view.info.name if view else "",
                "service": view.info.service if view else "",
                "summary": report.describe(),
                "route": worst.route,
                "bytes_per_request": round(worst.bytes_per_request),
                "requests": worst.requests,
                "named": [r.to_json() for r in report.named],
                "r2": round(report.r2, 3),
                "window_s": round(report.window_s, 1),
            },
        )


def likely_leak(state: HostState, container_id: str) -> str:
    """'likely leak: GET /x, ~1.0 MiB/request (...)' for a container, or '' when none named."""
    report = state.leaks.get(container_id)
    if report is None or report.worst is None:
        return ""
    return report.describe()


def leak_followups(state: HostState) -> list[str]:
    """The runbook's first follow-ups: find what each container's likely leak keeps."""
    out = []
    for report in state.leaks.values():
        worst = report.worst
        if worst is not None:
            out.append(leak_followup(worst.route, worst.bytes_per_request))
    return list(dict.fromkeys(out))


def leak_findings(state: HostState) -> list[tuple[str, str]]:
    """(severity, summary) of each container whose estimate names a route, for `diagnose`."""
    out = []
    for cid, report in sorted(state.leaks.items()):
        view = state.containers.get(cid)
        if view is None or view.gone or report.worst is None:
            continue
        out.append(("warning", f"{view.info.name}: {report.describe()}"))
    return out


def per_request_of_worst(state: HostState, ids: Iterable[str]) -> tuple[float, str] | None:
    """(bytes per request, words) of the likely leak among containers `ids` (the runbook's
    max-requests proposal), sized on the estimate plus two standard errors."""
    best = None
    for cid in ids:
        report = state.leaks.get(cid)
        worst = report.worst if report else None
        if report is None or worst is None:
            continue
        high = worst.bytes_per_request + 2 * worst.stderr_bytes
        if best is None or high > best[0]:
            words = (
                f"{format_bytes(round(worst.bytes_per_request))} a request of {worst.route}, "
                f"the likely leak (±{format_bytes(round(worst.stderr_bytes))}; "
                f"{report.evidence()}, per route)"
            )
            best = (high, words)
    return best

"""The monitor's leak tracker: samples and log lines in, HostState.leaks and a journal note out;
diagnose's line and JSON, the postmortem's likely cause and follow-ups, max-requests, the
sampler's pid inside the container."""

from __future__ import annotations

import random
from pathlib import Path

from incident_console.domain.access_log import LogFormat
from incident_console.domain.events import (
    ContainerInfo,
    ContainerProcesses,
    LogLine,
    OomConstraint,
    OomKill,
    ProcessRss,
)
from incident_console.domain.sampler import parse_frame
from incident_console.monitor.diagnosis import diagnose_state, diagnosis_json, scope_to_project
from incident_console.monitor.host_monitor import HostMonitor
from incident_console.monitor.journal import Journal
from incident_console.monitor.leaks import LEAK_NOTE, leak_followups, per_request_of_worst
from incident_console.report import render_report
from incident_console.report.journal_file import read_journal_file
from incident_console.runbook.recycling import measure
from incident_console.transport.local import LocalHost

MiB = 1024 * 1024
CID = "b" * 64
FRONT = "f" * 64
T0 = 1_800_000_000.0
MASTER = 4001
WORKERS = {4002: 7, 4003: 8}  # host pid -> pid inside the container (the log's %(p)s)
KEEPS = {"/api/v1/items": MiB, "/api/v1/orders": 0}


def _line(t: float, path: str, pid: int, cid: str = CID) -> LogLine:
    return LogLine(
        time=t,
        id=cid,
        container="icl-backend-1",
        text=f'172.22.0.5 - - [x] "GET {path} HTTP/1.1" 200 56 "-" "-" <{pid}>',
    )


def _feed(monitor: HostMonitor, seconds: float, leak: bool = True) -> None:
    """Two workers, 2 requests/s: 30% items (1 MiB each when `leak`), 70% orders."""
    rng = random.Random(3)
    monitor.record(
        ContainerInfo(
            time=T0, id=CID, name="icl-backend-1", state="running", project="icl",
            service="backend", memory_limit_bytes=256 * MiB, pid=MASTER,
        )
    )  # fmt: skip
    monitor.record(
        ContainerInfo(
            time=T0, id=FRONT, name="icl-frontend-1", state="running", project="icl",
            service="frontend",
        )
    )  # fmt: skip
    rss = dict.fromkeys(WORKERS, 30 * MiB)
    # The log's history (before the first sample) is not fitted.
    monitor.record(_line(T0 - 60, "/api/v1/items", 7))
    t = T0
    while t < T0 + seconds:
        procs = [ProcessRss(MASTER, "gunicorn", 25 * MiB, ns_pid=1)]
        procs += [ProcessRss(p, "gunicorn", rss[p], ns_pid=ns) for p, ns in WORKERS.items()]
        procs.append(ProcessRss(4999, "python3", 8 * MiB, ns_pid=90))  # a healthcheck
        monitor.record(ContainerProcesses(time=t, id=CID, processes=tuple(procs)))
        monitor.record(ContainerProcesses(time=t, id=FRONT, processes=()))
        monitor.record(LogLine(time=t, id=FRONT, container="icl-frontend-1", text="serving"))
        for _ in range(10):
            host_pid = rng.choice(list(WORKERS))
            path = "/api/v1/items" if rng.random() < 0.3 else "/api/v1/orders"
            if leak:
                rss[host_pid] += KEEPS[path]
            monitor.record(_line(t + rng.random() * 5, path, WORKERS[host_pid]))
        t += 5.0


def _monitor(tmp_path: Path) -> HostMonitor:
    monitor = HostMonitor(LocalHost(), journal=Journal(tmp_path / "j.jsonl"), sources=[])
    monitor.leaks._clock = None  # synthetic stamps: no clock alignment
    return monitor


def test_tracker_names_the_route_journals_it_and_everything_says_it(tmp_path: Path) -> None:
    monitor = _monitor(tmp_path)
    _feed(monitor, 240)
    report = monitor.state.leaks[CID]
    assert report.status == "leak", report.reason
    assert report.units == "worker pid"
    assert report.log_format == LogFormat.GUNICORN_PID
    worst = report.worst
    assert worst is not None and worst.route == "GET /api/v1/items"
    assert abs(worst.bytes_per_request - MiB) < 0.05 * MiB
    orders = next(r for r in report.routes if r.route == "GET /api/v1/orders")
    assert orders.bytes_per_request < 0.05 * worst.bytes_per_request and not orders.named
    # The frontend logs but serves no request lines: said so, no route named.
    front = monitor.state.leaks[FRONT]
    assert front.status == "not_enough_data" and "no request lines" in front.reason

    # diagnose: one line, and the JSON per container (scoped to the project too).
    state = scope_to_project(monitor.state, "icl")
    diagnosis = diagnose_state(state, now=T0 + 240)
    lines = [f.summary for f in diagnosis.findings if "likely leak" in f.summary]
    assert lines == [f"icl-backend-1: {report.describe()}"]
    assert "likely leak: GET /api/v1/items, ~1.0 MiB/request" in lines[0]
    doc = diagnosis_json(diagnosis, state)
    backend = next(c for c in doc["containers"] if c["name"] == "icl-backend-1")
    assert backend["leak"]["likely_leak"] == "GET /api/v1/items"
    assert backend["leak"]["routes"][0]["route"] == "GET /api/v1/items"

    # The runbook: the follow-up and max-requests sized on the route's own figure.
    assert leak_followups(monitor.state)[0].startswith("Find what GET /api/v1/items keeps")
    evidence = measure(monitor.state, [monitor.state.containers[CID]])
    assert evidence.per_request is not None
    assert abs(evidence.per_request - MiB) < 0.1 * MiB
    assert "GET /api/v1/items, the likely leak" in evidence.growth
    assert per_request_of_worst(monitor.state, [FRONT]) is None

    # The journal holds the note (once: the figure did not move); the postmortem reads it.
    monitor.record(
        OomKill(
            time=T0 + 241, pid=4002, process="gunicorn", container_id=CID,
            constraint=OomConstraint.LIMIT, anon_rss_bytes=200 * MiB, source="dmesg",
            raw=("Memory cgroup out of memory: Killed process 4002 (gunicorn)",),
        )
    )  # fmt: skip
    assert monitor.journal is not None
    monitor.journal.close()
    records = read_journal_file(tmp_path / "j.jsonl").records
    notes = [r for r in records if r.get("kind") == "note" and r.get("what") == LEAK_NOTE]
    assert len(notes) == 1
    assert notes[0]["data"]["route"] == "GET /api/v1/items"
    text = render_report(records)
    cause = next(line for line in text.splitlines() if line.startswith("- **Likely cause:**"))
    assert "likely leak: GET /api/v1/items, ~1.0 MiB/request" in cause
    assert "Find what GET /api/v1/items keeps" in text


def test_no_leak_names_nothing_and_journals_nothing(tmp_path: Path) -> None:
    monitor = _monitor(tmp_path)
    _feed(monitor, 240, leak=False)
    report = monitor.state.leaks[CID]
    assert report.status == "none", report.reason
    assert report.worst is None
    diagnosis = diagnose_state(monitor.state, now=T0 + 240)
    assert not [f for f in diagnosis.findings if "likely leak" in f.summary]
    assert monitor.journal is not None
    monitor.journal.close()
    records = read_journal_file(tmp_path / "j.jsonl").records
    assert not [r for r in records if r.get("what") == LEAK_NOTE]


def test_without_pids_the_container_is_the_unit(tmp_path: Path) -> None:
    monitor = _monitor(tmp_path)
    original = monitor.record

    def strip_pid(event: object) -> None:
        if isinstance(event, LogLine) and event.id == CID:
            event = LogLine(
                time=event.time, id=event.id, container=event.container,
                text=event.text.rsplit(" <", 1)[0],
            )  # fmt: skip
        original(event)  # type: ignore[arg-type]

    monitor.record = strip_pid  # type: ignore[method-assign]
    _feed(monitor, 300)
    report = monitor.state.leaks[CID]
    assert report.units == "container"
    assert report.worst is not None and report.worst.route == "GET /api/v1/items"
    assert abs(report.worst.bytes_per_request - MiB) < 0.1 * MiB


def test_sampler_n_line_gives_the_pid_inside_the_container() -> None:
    frame = parse_frame(
        [
            "T 6 100.0 v1",
            "P abc 4002 30720 gunicorn",
            "N abc 4002 7 20480",
            "P abc 4001 25600 gunicorn",
            "N abc 4001 4001 -",  # the same pid, RssAnon not read
            "P abc 4003 25600 gunicorn",
            "N abc 4003 9",  # no anon field (an older sampler)
            "N abc 9999 3 100",  # a pid with no P line: ignored
            "E",
        ]
    )
    assert frame.processes is not None
    procs = {p.pid: p for p in frame.processes["abc"]}
    assert (procs[4002].ns_pid, procs[4002].anon_bytes) == (7, 20480 * 1024)
    assert (procs[4001].ns_pid, procs[4001].anon_bytes) == (0, 0)
    assert (procs[4003].ns_pid, procs[4003].anon_bytes) == (9, 0)
    assert set(procs) == {4001, 4002, 4003}

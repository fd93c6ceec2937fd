"""For random journals, the postmortem's summary claims agree with its tables (hypothesis).

Journals of several compose projects: kills at random times and containers, each reported by
a random set of sources (kernel, docker's oom events, gunicorn's line), old replayed kills,
runbook steps in random states (passed, failed, skipped, refused, rolled back), restarts,
undos, health flaps, probes, samples and records of kinds the report does not know. The
report is rendered, its claims are parsed back from the text and checked against its own
tables and against what the journal was generated with.
"""

from __future__ import annotations

import calendar
import random
import re
import time
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from incident_console.report import render_report

T0 = float(calendar.timegm((2026, 12, 1, 17, 0, 0)))
MIB = 1024 * 1024
PROJECTS = ("alpha", "bravo", "charlie")
SERVICES = ("backend", "web")
#: Kills of one container are at least this far apart: closer ones are one kill by design.
SLOT_S = 20
STATES = ("passed", "failed", "skipped", "refused", "rolled_back")
KINDS = ("diagnose", "remediate", "verify")
ACTIONS = ("run", "compose_set", "recreate", "restart", "wait")


@dataclass(frozen=True)
class KillSpec:
    """One generated kill: the truth the report is checked against."""

    slot: int
    project: str
    service: str
    kernel: bool
    docker_events: int
    gunicorn: bool
    replayed: bool

    @property
    def container(self) -> str:
        return f"{self.project}_{self.service}_1"

    @property
    def time(self) -> int:
        return (
            int(T0 - 7200 + self.slot * SLOT_S) if self.replayed else int(T0 + self.slot * SLOT_S)
        )


def cid(container: str) -> str:
    return (container.encode().hex() * 8)[:64]


kill_specs = st.builds(
    KillSpec,
    slot=st.integers(0, 90),
    project=st.sampled_from(PROJECTS),
    service=st.sampled_from(SERVICES),
    kernel=st.booleans(),
    docker_events=st.integers(0, 12),
    gunicorn=st.booleans(),
    replayed=st.booleans(),
    # A kill read back at start is known from the kernel's ring buffer alone.
).filter(lambda k: k.kernel if k.replayed else (k.kernel or k.docker_events or k.gunicorn))

step_specs = st.tuples(
    st.sampled_from(KINDS),
    st.sampled_from(ACTIONS),
    st.sampled_from(STATES),
    st.integers(0, 1800),  # start, seconds after T0
    st.integers(1, 300),  # duration
)


def _kill_records(k: KillSpec, pid: int) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    c = k.container
    if k.kernel:
        records.append({"kind": "oom_kill", "host": "lab", "time": k.time, "pid": pid,
                        "process": "gunicorn", "constraint": "limit",
                        "anon_rss_bytes": 200 * MIB, "container_id": cid(c), "container": c,
                        "service": k.service, "source": "dmesg", "replayed": k.replayed})  # fmt: skip
    if not k.replayed:
        for n in range(k.docker_events):
            records.append({"kind": "container_event", "host": "lab", "time": k.time + 0.15 * n,
                            "id": cid(c), "name": c, "service": k.service, "action": "oom"})  # fmt: skip
        if k.gunicorn:
            records.append({"kind": "log", "host": "lab", "time": k.time + 0.5, "id": cid(c),
                            "container": c, "signal": "worker_killed",
                            "text": f"Worker with pid {pid % 100} was terminated due to signal 9"})  # fmt: skip
    return records


def _step_records(i: int, spec: tuple[str, str, str, int, int]) -> list[dict[str, Any]]:
    kind, action, state, start, took = spec
    base = {"kind": "runbook_step", "host": "lab", "who": "oncall", "runbook": "rb",
            "step": f"s{i}", "title": f"step {i}", "step_kind": kind, "action": action,
            "checks": [], "exit_status": None, "output": {}}  # fmt: skip
    t0, t1 = T0 + start, T0 + start + took
    if state == "skipped":
        return [{**base, "state": "skipped", "verdict": "skipped by the operator",
                 "started": None, "finished": t1, "ts": t1}]  # fmt: skip
    if state == "refused":
        return [{**base, "state": "failed", "verdict": "needs health_url: not discovered",
                 "started": None, "finished": None, "ts": t0}]  # fmt: skip
    running = {**base, "state": "running", "verdict": "", "started": t0, "finished": None, "ts": t0}
    verdict = "passed" if state == "rolled_back" else state
    done = {**base, "state": verdict, "verdict": verdict, "started": t0, "finished": t1, "ts": t1}
    records = [running, done]
    if state == "rolled_back":
        change = {"path": f"/srv/f{i}.yml", "backup": f"/srv/f{i}.bak"}
        done["change"] = change
        undo = t1 + 60
        records.append({**done, "state": "rolled_back", "verdict": "restored", "finished": undo,
                        "ts": undo})  # fmt: skip
        records.append({"kind": "file_restore", "host": "lab", **change, "time": undo})
    return records


def _door_records(n: int, t: float, refused: bool, what: str) -> list[dict[str, Any]]:
    """A change through the one door: intent, then refusal or result (and a restart's twin)."""
    kind = "command" if what == "undo" else what
    text = {"command": "docker-compose -p alpha up -d backend", "write": "write /srv/a.yml",
            "restart": "restart bravo_backend_1", "undo": "cp -p -- /srv/a.bak /srv/a.yml"}[what]  # fmt: skip
    base = {"kind": "change", "host": "lab", "who": "oncall", "change_id": f"c{n}",
            "change": kind, "what": text}  # fmt: skip
    why = "undo: restore /srv/a.yml" if what == "undo" else ""
    records = [{**base, "phase": "intent", "why": why, "ts": t}]
    if refused:
        return [*records, {**base, "phase": "refused", "reason": "read-only", "ts": t}]
    records.append({**base, "phase": "result", "ok": True, "duration_s": 1.0, "ts": t + 1})
    if what == "restart":
        records.append({"kind": "action", "host": "lab", "what": "restart container",
                        "who": "oncall", "container": "bravo_backend_1", "started": t,
                        "duration_s": 1.0, "error": "", "change_id": f"c{n}"})  # fmt: skip
    return records


@dataclass(frozen=True)
class Journal:
    """A generated journal and the truth it was generated from."""

    records: list[dict[str, Any]]
    kills: list[KillSpec]
    acted: set[str]  # projects restarted by the operator


@st.composite
def journals(draw: st.DrawFn) -> Journal:
    kills = draw(
        st.lists(kill_specs, max_size=10, unique_by=lambda k: (k.slot, k.container, k.replayed))
    )
    steps = draw(st.lists(step_specs, max_size=8))
    restarts = draw(
        st.lists(st.tuples(st.integers(0, 1800), st.sampled_from(PROJECTS)), max_size=3)
    )
    undos = draw(st.lists(st.integers(0, 1800), max_size=2))
    health = draw(st.lists(st.tuples(st.integers(0, 1800), st.sampled_from(PROJECTS),
                                     st.sampled_from(("healthy", "unhealthy", "starting"))),
                           max_size=8))  # fmt: skip
    probes = draw(st.lists(st.tuples(st.integers(0, 1800), st.sampled_from((200, 502, None))),
                           max_size=6))  # fmt: skip
    # Changes through the one door: (time, refused, what it is).
    changes = draw(st.lists(st.tuples(st.integers(0, 1800), st.booleans(),
                                      st.sampled_from(("command", "write", "restart", "undo"))),
                            max_size=4))  # fmt: skip
    removed = draw(st.sets(st.sampled_from(PROJECTS)))  # no inspect record: project from names
    samples_until = draw(st.integers(0, 2000))
    records: list[dict[str, Any]] = []
    for project in PROJECTS:
        for service in SERVICES:
            name = f"{project}_{service}_1"
            if project not in removed:
                records.append({"kind": "container", "host": "lab", "time": T0, "id": cid(name),
                                "name": name, "project": project, "service": service,
                                "memory_limit_bytes": 256 * MIB})  # fmt: skip
    for t in range(0, samples_until, 10):
        for project in PROJECTS:
            name = f"{project}_backend_1"
            records.append({"kind": "sample", "host": "lab", "time": T0 + t, "id": cid(name),
                            "memory_used_bytes": (100 + t % 150) * MIB,
                            "memory_limit_bytes": 256 * MIB, "cpu_percent": 3.0})  # fmt: skip
    for n, k in enumerate(kills):
        records += _kill_records(k, 10_000 + n)
    for i, spec in enumerate(steps):
        records += _step_records(i, spec)
    for t, project in restarts:
        records.append({"kind": "action", "host": "lab", "what": "restart container",
                        "who": "oncall", "container": f"{project}_backend_1", "started": T0 + t,
                        "duration_s": 2.0, "error": ""})  # fmt: skip
    for t in undos:
        records.append({"kind": "file_restore", "host": "lab", "path": "/srv/x.yml",
                        "backup": "/srv/x.bak", "time": T0 + t})  # fmt: skip
    for t, project, new in health:
        name = f"{project}_backend_1"
        records.append({"kind": "health", "host": "lab", "time": T0 + t, "id": cid(name),
                        "name": name, "service": "backend", "old": "", "new": new})  # fmt: skip
    for t, status in probes:
        records.append({"kind": "probe", "host": "lab", "time": T0 + t, "url": "http://x/h",
                        "status": status, "latency_ms": 3.0})  # fmt: skip
    door_restarts: list[str] = []
    for n, (t, refused, what) in enumerate(changes):
        records += _door_records(n, T0 + t, refused, what)
        if what == "restart" and not refused:
            door_restarts.append("bravo")
    records.append({"kind": "mystery", "host": "lab", "time": T0 + 7, "payload": [1, 2]})
    random.Random(len(records)).shuffle(records)
    # The projects the operator worked on, as far as the journal can tell: a restarted
    # container is known by its inspect record, or by a kill or health record naming it.
    named = {k.container for k in kills} | {f"{p}_backend_1" for _, p, _ in health}
    restarted = [p for _, p in restarts] + door_restarts
    acted = {p for p in restarted if p not in removed or f"{p}_backend_1" in named}
    return Journal(records, kills, acted)


def _epoch(text: str) -> int:
    return calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%SZ"))


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


_STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(journals())
def test_summary_agrees_with_tables(journal: Journal) -> None:
    records, specs = journal.records, journal.kills
    text = render_report(records)
    summary = _section(text, "Summary")
    table = _section(text, "OOM kills").split("\n### Other projects")[0]
    rows = [line.split(" | ") for line in table.splitlines() if re.match(r"\| \d{4}-", line)]
    kill_times = [_epoch(row[0][2:].removesuffix(" (replayed)")) for row in rows]

    # The affected project: one the operator worked on if any was hit, else the most kills
    # seen live (a tie may go either way).
    named = re.search(r"^Project `(\w+)`;", table, re.M)
    if specs:
        assert named, table
        project = named[1]
        live = {k.project: sum(1 for j in specs if j.project == k.project and not j.replayed)
                for k in specs}  # fmt: skip
        pool = [p for p in live if p in journal.acted] or list(live)
        assert project in pool and live[project] == max(live[p] for p in pool)
        ours = [k for k in specs if k.project == project]
        # One row per kill, however many sources reported it.
        assert len(rows) == len(ours), (rows, ours)
        assert sorted(kill_times) == sorted(k.time for k in ours)
        assert all(row[1].startswith(f"{project}_") for row in rows)
        assert (
            f"- **What happened:** {len(ours)} OOM kill{'s' if len(ours) != 1 else ''} " in summary
        )
        others = {k.container for k in specs if k.project != project}
        event(f"{len({k.project for k in specs})} project(s) with kills")
    else:
        assert not rows
        others = set()

    # "no OOM kill since X" only when no kill is after remediation; else the count and times.
    after_rows = [
        t for t, row in zip(kill_times, rows, strict=True) if row[-1] == "after remediation |"
    ]
    outcome = re.search(r"^- \*\*Outcome:\*\* (.*)$", summary, re.M)
    remediation = re.search(rf"^- \*\*Remediation:\*\* .*?({_STAMP}) to ({_STAMP})", summary, re.M)
    if remediation is None:
        assert "- **Remediation:** none recorded in the journal." in summary
        assert outcome is None and not after_rows
    else:
        assert outcome is not None, summary
        # Never a restart (by hand, through the door, or a restart step) nor an undo's copy.
        line = remediation[0].split(";")[0]
        assert "restart" not in line and "cp -p" not in line, line
        steps_named = re.findall(r"`(s\d+)` \((\w+)\)", line)
        assert all(state in ("passed", "failed") for _, state in steps_named), line
        done = _epoch(remediation[2])
        since = re.match(rf"no OOM kill since ({_STAMP})", outcome[1])
        counted = re.match(
            rf"\*\*(\d+) OOM kills? after remediation\*\* at ((?:{_STAMP}(?:, )?)+)", outcome[1]
        )
        assert (since is None) != (counted is None), outcome[1]
        event("kills after remediation" if counted else "no kill after remediation")
        if since is not None:
            assert not after_rows and _epoch(since[1]) == done
            assert all(t < done for t in kill_times)
        else:
            assert counted is not None
            assert int(counted[1]) == len(after_rows) > 0
            assert [_epoch(s) for s in counted[2].split(", ")] == after_rows
            assert all(t >= done for t in after_rows)

    # The impact window contains every kill of the table and names no other project's container.
    impact = re.search(r"^- \*\*Impact window:\*\* (.*)$", summary, re.M)
    assert impact is not None
    bounds = re.match(rf"({_STAMP}) to ({_STAMP})|at ({_STAMP})", impact[1])
    if rows:
        assert bounds is not None, impact[1]
        first, last = (bounds[1], bounds[2]) if bounds[1] else (bounds[3], bounds[3])
        assert all(_epoch(first) <= t <= _epoch(last) for t in kill_times)
    assert not any(name in impact[1] for name in others), (impact[1], others)
    kills_and_health = [
        line
        for line in _section(text, "Timeline (UTC)").splitlines()
        if "**OOM kill**" in line or " → " in line or "health" in line
    ]
    assert not any(name in line for line in kills_and_health for name in others)

    # Skipped and refused steps are not counted as run: the summary agrees with the steps table.
    steps = _section(text, "Runbook steps")
    results = [line.split(" | ")[3] for line in steps.splitlines() if re.match(r"\| \d+ \|", line)]
    ran = [r for r in results if r.split(",")[0] in ("passed", "failed")]
    runbook = re.search(
        r"^- \*\*Runbook:\*\* rb: (\d+) steps? run \((\d+) passed, (\d+) failed\)(.*)$",
        summary,
        re.M,
    )
    if results:
        assert runbook is not None, summary
        assert int(runbook[1]) == len(ran)
        assert int(runbook[2]) == sum(r.startswith("passed") for r in ran)
        skipped = sum(r == "skipped" for r in results)
        assert (f"{skipped} skipped" in runbook[4]) == bool(skipped)

    # A pure function of the journal: any order of the same records, the same bytes.
    assert render_report(list(reversed(records))) == text

"""The facts of an incident, read back from its journal records (pure: no I/O, no clock).

`report.py` renders these as Markdown. Everything here is a function of the records alone, so
the same journal always gives the same facts in the same order.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

#: A memory limit at or above this is docker's "no limit" (the cgroup's page-counter maximum).
NO_LIMIT_BYTES = 1 << 60
#: Health or state values that mean users are affected, and those that mean recovered.
BAD_STATES = ("unhealthy", "exited", "dead", "restarting")
GOOD_STATES = ("healthy", "running")


def when(record: dict[str, Any]) -> float:
    """The time a record is about: the event's time, a command's start, else when written.

    A runbook step is placed when it finished (its verdict), or when it started if it has not.
    """
    keys = ("finished", "started", "ts") if record.get("kind") == "runbook_step" else ()
    for key in (*keys, "time", "started", "ts"):
        value = record.get(key)
        if isinstance(value, int | float):
            return float(value)
    return 0.0


@dataclass(frozen=True, slots=True)
class Kill:
    """One OOM kill, attributed."""

    time: float
    container_id: str
    container: str
    service: str
    process: str
    pid: int
    anon_rss_bytes: int | None
    constraint: str  # limit, global, unknown
    limit_bytes: int  # the container's memory limit when known, else 0
    replayed: bool
    host: str


@dataclass(slots=True)
class StepRun:
    """One attempt at a runbook step: its last record, and the commands run meanwhile."""

    record: dict[str, Any]
    commands: list[dict[str, Any]] = field(default_factory=list)

    @property
    def started(self) -> float:
        value = self.record.get("started")
        return float(value) if isinstance(value, int | float) else when(self.record)

    @property
    def finished(self) -> float | None:
        value = self.record.get("finished")
        return float(value) if isinstance(value, int | float) else None


@dataclass(slots=True)
class Facts:
    """What the journal says happened."""

    records: list[dict[str, Any]]
    hosts: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # container id -> name
    services: dict[str, str] = field(default_factory=dict)  # container id -> service
    limits: dict[str, int] = field(default_factory=dict)  # container id -> limit bytes
    kills: list[Kill] = field(default_factory=list)
    #: Memory samples per container name: (time, used bytes, limit bytes).
    memory: dict[str, list[tuple[float, int, int]]] = field(default_factory=dict)
    steps: list[StepRun] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    runbooks: list[str] = field(default_factory=list)
    followups: list[str] = field(default_factory=list)
    #: When remediation began (the first remediate step or restart), or None.
    remediation_at: float | None = None
    #: When the last remediate step (or restart) ended: the fix is in effect from then.
    remediation_done: float | None = None
    start: float = 0.0
    end: float = 0.0
    #: Containers the commands run worked on (named in an argv, or of the compose project
    #: given with -p): the incident's own, on a host that may run other stacks too.
    focus: set[str] = field(default_factory=set)

    def label(self, container_id: str, fallback: str = "") -> str:
        """The container name (compose keeps it across a recreate) a container id stands for."""
        return self.names.get(container_id) or fallback or container_id[:12]


def gather(records: list[dict[str, Any]]) -> Facts:
    """Read journal records into Facts. Records may come in any order; they are sorted."""
    ordered = sorted(
        (r for r in records if isinstance(r, dict)),
        # A total order (ties broken by the record's text): any order in, the same order out.
        key=lambda r: (when(r), str(r.get("kind", "")), json.dumps(r, sort_keys=True, default=str)),
    )
    facts = Facts(records=ordered)
    if ordered:
        facts.start, facts.end = when(ordered[0]), when(ordered[-1])
    hosts: dict[str, None] = {}
    attempts: dict[tuple[str, str, float], dict[str, Any]] = {}
    for record in ordered:
        kind = record.get("kind")
        host = record.get("host")
        if isinstance(host, str) and host:
            hosts.setdefault(host)
        if kind == "container":
            cid = str(record.get("id", ""))
            facts.names[cid] = str(record.get("name", "")) or facts.names.get(cid, "")
            if record.get("service"):
                facts.services[cid] = str(record["service"])
            limit = record.get("memory_limit_bytes")
            if isinstance(limit, int) and 0 < limit < NO_LIMIT_BYTES:
                facts.limits[cid] = limit
        elif kind == "sample":
            _add_sample(facts, record)
        elif kind == "oom_kill":
            facts.kills.append(_kill(facts, record))
        elif kind == "runbook_step":
            key = (str(record.get("runbook", "")), str(record.get("step", "")), _started(record))
            attempts[key] = record  # the last record of an attempt carries its verdict
        elif kind == "runbook":
            name = str(record.get("runbook") or record.get("name") or "")
            if name and name not in facts.runbooks:
                facts.runbooks.append(name)
            for item in record.get("followups") or []:
                if isinstance(item, str) and item not in facts.followups:
                    facts.followups.append(item)
        elif kind == "command":
            facts.commands.append(record)
    facts.hosts = list(hosts)
    facts.steps = [StepRun(r) for r in sorted(attempts.values(), key=_started)]
    for run in facts.steps:
        name = str(run.record.get("runbook", ""))
        if name and name not in facts.runbooks:
            facts.runbooks.append(name)
        end = run.finished if run.finished is not None else facts.end
        run.commands = [c for c in facts.commands if run.started <= when(c) <= end]
    facts.remediation_at, facts.remediation_done = _remediation_times(facts)
    facts.focus = _focus(facts)
    return facts


def _started(record: dict[str, Any]) -> float:
    value = record.get("started")
    return float(value) if isinstance(value, int | float) else when(record)


def _add_sample(facts: Facts, record: dict[str, Any]) -> None:
    cid = str(record.get("id", ""))
    used = record.get("memory_used_bytes")
    if not isinstance(used, int):
        return
    limit = record.get("memory_limit_bytes")
    limit = limit if isinstance(limit, int) and 0 < limit < NO_LIMIT_BYTES else 0
    if limit:
        facts.limits.setdefault(cid, limit)
    # Keyed by name: a recreated container (new id, same compose name) continues the line,
    # while same-named services of other compose projects on the host stay apart.
    facts.memory.setdefault(facts.label(cid), []).append((when(record), used, limit))


def _kill(facts: Facts, record: dict[str, Any]) -> Kill:
    cid = str(record.get("container_id", ""))
    rss = record.get("anon_rss_bytes")
    return Kill(
        time=when(record),
        container_id=cid,
        container=str(record.get("container") or facts.names.get(cid, "") or cid[:12]),
        service=str(record.get("service") or facts.services.get(cid, "")),
        process=str(record.get("process", "")),
        pid=int(record.get("pid") or 0),
        anon_rss_bytes=rss if isinstance(rss, int) else None,
        constraint=str(record.get("constraint") or "unknown"),
        limit_bytes=facts.limits.get(cid, 0),
        replayed=bool(record.get("replayed")),
        host=str(record.get("host", "")),
    )


def _focus(facts: Facts) -> set[str]:
    names = {name for name in facts.names.values() if name}
    focus: set[str] = set()
    for command in facts.commands:
        argv = [str(a) for a in command.get("argv") or []]
        text = " ".join(argv)
        focus.update(name for name in names if name in text)
        projects = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("-p", "--project-name")]
        for project in projects:
            focus.update(n for n in names if n.startswith((f"{project}_", f"{project}-")))
    return focus


def _remediation_times(facts: Facts) -> tuple[float | None, float | None]:
    runs = [
        run
        for run in facts.steps
        if run.record.get("step_kind") == "remediate"
        and run.record.get("state") not in ("skipped", "pending")
    ]
    starts = [run.started for run in runs]
    ends = [run.finished if run.finished is not None else run.started for run in runs]
    for record in facts.records:
        if record.get("kind") == "action" and "restart" in str(record.get("what", "")):
            starts.append(when(record))
            took = record.get("duration_s")
            ends.append(when(record) + (took if isinstance(took, int | float) else 0.0))
    if not starts:
        return None, None
    return min(starts), max(ends)


@dataclass(frozen=True, slots=True)
class Window:
    """When users were affected, as far as probes and health checks saw."""

    start: float | None
    end: float | None  # None: still affected when the journal ends
    evidence: tuple[str, ...]


def impact_window(facts: Facts) -> Window:
    """From the first failed probe or unhealthy state to the last recovery (None if none)."""
    bad_since: dict[str, float] = {}
    start: float | None = None
    end: float | None = None
    evidence: list[str] = []
    counts: dict[str, int] = defaultdict(int)
    for record in facts.records:
        kind = record.get("kind")
        if kind == "probe":
            key = f"probe {record.get('url', '')}"
            status = record.get("status")
            bad = not (isinstance(status, int) and 200 <= status < 400)
        elif kind == "health":
            key = f"health {record.get('service') or record.get('name', '')}"
            new = record.get("new")
            if new not in BAD_STATES and new not in GOOD_STATES:
                continue  # "starting" says nothing yet
            bad = new in BAD_STATES
        else:
            continue
        t = when(record)
        if bad:
            counts[key] += 1
            if key not in bad_since:
                bad_since[key] = t
                start = t if start is None else min(start, t)
        elif key in bad_since:
            del bad_since[key]
            end = t if end is None else max(end, t)
    for key, n in sorted(counts.items()):
        evidence.append(f"{key}: {n} failed" if key.startswith("probe") else f"{key}: unhealthy")
    if start is None:
        return Window(None, None, ())
    return Window(start, None if bad_since else end, tuple(evidence))

"""The facts of an incident, as frozen values: what every section of the postmortem reads.

:func:`incident_console.report.facts.derive_facts` builds one :class:`IncidentFacts` from the
journal's records; the renderer only formats it. No section looks at the records itself, so two
sections cannot tell different stories (the summary's "no OOM kill since" and the kill table
read the same kill list).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Fewer samples than this in a period draw no chart: the journal keeps one sample per
#: container every 10 s, so six are a minute, the least a trend can be read from.
MIN_CHART_SAMPLES = 6


def when(record: dict[str, Any]) -> float:
    """The time a record is about: the event's time, a command's start, else when written.

    A runbook step is placed when it finished (its verdict), or when it started if it has not.
    """
    keys = ("finished", "started", "ts") if record.get("kind") == "runbook_step" else ()
    for key in (*keys, "time", "started", "ts"):
        value = record.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return 0.0


@dataclass(frozen=True, slots=True)
class Kill:
    """One OOM kill, however many sources reported it (kernel, docker, gunicorn)."""

    time: float
    host: str
    container_id: str
    container: str
    service: str
    project: str
    process: str
    pid: int
    anon_rss_bytes: int | None
    constraint: str  # limit, global, unknown
    limit_bytes: int  # the container's memory limit when known, else 0
    replayed: bool  # read back from the kernel's ring buffer at start, not seen live
    sources: tuple[str, ...]  # kernel, docker, gunicorn, memory.events: who reported it
    reports: int  # how many journal records told of it
    #: What ran out and who grew, in domain.oom_scope's words ("the server ran out of memory;
    #: no container has a limit; culprit backend (+310 MiB in 5m)"); '' when no kernel record.
    scope_text: str = ""
    scope: str = ""  # container-limit, shared-limit, host; '' unknown


@dataclass(frozen=True, slots=True)
class Check:
    """One check of a runbook step, as the step's record gives it."""

    name: str
    status: str
    detail: str


@dataclass(frozen=True, slots=True)
class StepRun:
    """One attempt at a runbook step, from its records (running, verdict, maybe rolled back)."""

    runbook: str
    step: str
    title: str
    kind: str  # diagnose, remediate, verify
    action: str
    #: The verdict's state: passed, failed, skipped, pending (never run), running (no verdict).
    #: A rolled-back step keeps the state it had before the undo, and `undone_at` says when.
    state: str
    verdict: str
    who: str
    started: float | None  # None: refused or skipped before it started
    finished: float | None
    undone_at: float | None
    exit_status: int | None
    checks: tuple[Check, ...]
    change: tuple[str, str] | None  # (path, backup) of the file it changed
    commands: tuple[dict[str, Any], ...]  # the commands run while it ran

    @property
    def ran(self) -> bool:
        """It started and reached a verdict (a skipped or refused step did not run)."""
        return self.started is not None and self.state in ("passed", "failed")

    @property
    def refused(self) -> bool:
        """Refused before it started (a missing variable, read-only)."""
        return self.started is None and self.state == "failed"

    @property
    def is_restart(self) -> bool:
        """A step that only restarts a container: a restart, not remediation."""
        return self.action == "restart"

    @property
    def result(self) -> str:
        """The state as the report prints it."""
        if self.refused:
            return "refused"
        return f"{self.state}, undone" if self.undone_at is not None else self.state


@dataclass(frozen=True, slots=True)
class Remediation:
    """A change meant to fix the incident: a remediate step that ran, or a recorded change."""

    what: str
    started: float
    finished: float
    state: str  # passed, failed, done (a recorded change)
    undone_at: float | None


@dataclass(frozen=True, slots=True)
class Restart:
    """A container restart (by hand, by watch, or a restart step): recorded, not remediation."""

    time: float
    target: str
    who: str
    error: str


@dataclass(frozen=True, slots=True)
class Undo:
    """A change reverted (a file restored from its backup, a step rolled back)."""

    time: float
    what: str


@dataclass(frozen=True, slots=True)
class Window:
    """When the affected project was in trouble: its kills, unhealthy states, failed probes."""

    start: float | None
    #: The last kill or bad sign, or the recovery from it; the journal's end if still bad.
    end: float | None
    #: A probe or health check was still failing when the journal ends.
    still_affected: bool
    evidence: tuple[str, ...]
    #: The containers named in the evidence (all of the affected project).
    containers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MemoryPeriod:
    """The memory samples of the charted containers over one period of the incident."""

    title: str
    start: float
    end: float
    #: Per container name: (time, used bytes, limit bytes or 0), in time order.
    series: tuple[tuple[str, tuple[tuple[float, int, int], ...]], ...]

    @property
    def samples(self) -> int:
        """The most samples any one charted container has in this period."""
        return max((len(points) for _, points in self.series), default=0)


@dataclass(frozen=True, slots=True)
class OtherProject:
    """A compose project on the same host whose kills are not this incident's."""

    name: str
    kills: tuple[Kill, ...]


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One line of the timeline: an event, or several identical ones folded."""

    time: float
    host: str
    text: str
    count: int = 1
    until: float | None = None  # the last folded event's time


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    """Everything the postmortem says, derived once from the journal."""

    records: int
    skipped_lines: int
    start: float
    end: float
    hosts: tuple[str, ...]
    project: str  # the affected compose project ('' when unknown)
    project_reason: str  # why it is the one: "the operator worked on it", "most OOM kills", ...
    kills: tuple[Kill, ...]  # the affected project's kills, one per kill, in time order
    other_projects: tuple[OtherProject, ...]
    window: Window
    remediation: tuple[Remediation, ...]
    remediation_at: float | None  # the first remediation's start
    remediation_done: float | None  # the last remediation's end: in effect from then
    kills_after: tuple[Kill, ...]  # kills at or after remediation_done
    restarts: tuple[Restart, ...]
    undos: tuple[Undo, ...]
    steps: tuple[StepRun, ...]
    failed_verifications: tuple[StepRun, ...]  # verify steps (the watch) that failed
    runbooks: tuple[str, ...]
    followups: tuple[str, ...]
    other_commands: tuple[dict[str, Any], ...]  # commands run outside any runbook step
    charted: tuple[str, ...]  # the containers the memory charts show
    memory: tuple[MemoryPeriod, ...]
    timeline: tuple[TimelineRow, ...]
    timeline_hidden: int  # rows beyond the timeline's cap, counted not listed
    #: The console's last 'likely leak' estimate of the affected project ('' when none).
    likely_leak: str = ""

    @property
    def steps_run(self) -> tuple[StepRun, ...]:
        """The steps that started and reached a verdict."""
        return tuple(s for s in self.steps if s.ran)

    def phase(self, kill: Kill) -> str:
        """Where a kill falls against remediation (the kill table's column; `kills_after` agrees)."""
        if self.remediation_done is None or self.remediation_at is None:
            return "-"
        if kill.time >= self.remediation_done:
            return "after remediation"
        return "during remediation" if kill.time >= self.remediation_at else "before remediation"

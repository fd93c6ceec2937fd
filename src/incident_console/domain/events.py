"""The facts a host produces, as plain frozen dataclasses.

Sources turn a host into these; HostMonitor folds them into HostState and writes each to the
journal (``to_record``); the UI, `diagnose`, the runbook and `report` read them back. No I/O here.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar


class OomConstraint(enum.StrEnum):
    """Which memory ran out: a cgroup's limit, or the whole host."""

    LIMIT = "limit"
    GLOBAL = "global"
    UNKNOWN = "unknown"


class LogSignal(enum.StrEnum):
    """What a log line tells the on-call engineer at a glance."""

    WORKER_KILLED = "worker_killed"  # gunicorn: "was sent SIGKILL! Perhaps out of memory?"
    WORKER_TIMEOUT = "worker_timeout"  # gunicorn: "WORKER TIMEOUT"
    WORKER_BOOT = "worker_boot"  # gunicorn: "Booting worker with pid"
    WORKER_RECYCLE = "worker_recycle"  # gunicorn: "Autorestarting worker after current request."
    TRACEBACK = "traceback"
    ERROR = "error"  # ERROR / CRITICAL


@dataclass(frozen=True, slots=True)
class Event:
    """Base of everything that happens on a host. `time` is epoch seconds (UTC)."""

    KIND: ClassVar[str] = "event"
    time: float

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict with a 'kind' key, for the journal."""
        record: dict[str, Any] = {"kind": self.KIND}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, enum.Enum):
                value = value.value
            elif isinstance(value, tuple):
                value = [v.to_record() if isinstance(v, Event) else v for v in value]
            record[f.name] = value
        return record


@dataclass(frozen=True, slots=True)
class ContainerInfo(Event):
    """A container as docker inspect describes it (the slow-changing facts)."""

    KIND: ClassVar[str] = "container"
    id: str
    name: str
    image: str = ""
    state: str = ""  # running, exited, restarting, ...
    health: str = ""  # healthy, unhealthy, starting, '' (no healthcheck)
    failing_streak: int = 0
    last_probe_output: str = ""
    restarts: int = 0
    started_at: float | None = None
    created_at: float | None = None
    memory_limit_bytes: int = 0  # HostConfig.Memory; 0 = none
    memory_reservation_bytes: int = 0
    restart_policy: str = ""
    project: str = ""  # com.docker.compose.project
    service: str = ""  # com.docker.compose.service
    working_dir: str = ""  # com.docker.compose.project.working_dir
    config_files: tuple[str, ...] = ()  # com.docker.compose.project.config_files
    environment: tuple[str, ...] = ()  # KEY=VALUE, secrets already redacted
    command: tuple[str, ...] = ()
    cgroup_path: str = ""  # where its memory/cpu files are on the host, when known
    pid: int = 0  # State.Pid: its main process on the host (gunicorn's master when exec'd)
    #: Published ports: ("8000/tcp", host ip, host port), from NetworkSettings.Ports.
    ports: tuple[tuple[str, str, str], ...] = ()
    healthcheck: tuple[str, ...] = ()  # Config.Healthcheck.Test, e.g. ("CMD", "curl", URL)
    cgroup_parent: str = ""  # HostConfig.CgroupParent ('' = docker's default)
    env_file: str = ""  # com.docker.compose.project.environment_file (compose v2)


@dataclass(frozen=True, slots=True)
class ContainerGone(Event):
    """A container was removed."""

    KIND: ClassVar[str] = "container_gone"
    id: str
    name: str = ""
    service: str = ""  # com.docker.compose.service, when the event said (destroy events do)
    project: str = ""  # com.docker.compose.project


@dataclass(frozen=True, slots=True)
class ContainerSample(Event):
    """One second of a container's resource use."""

    KIND: ClassVar[str] = "sample"
    id: str
    memory_used_bytes: int  # usage - inactive_file, as `docker stats`
    memory_limit_bytes: int  # 0 or a huge number = no limit
    cpu_percent: float  # of one core, as `docker stats`
    swap_used_bytes: int | None = None
    #: Kills in its cgroup (memory.events / memory.oom_control oom_kill) as last read, every
    #: 5th second; a count that holds where the kernel log is closed. None: not readable.
    oom_kill_count: int | None = None
    #: cgroup v2 only, read every 5th second: memory.peak (its high-water mark since it was
    #: created) and memory.pressure `some avg10` (% of the last 10 s its tasks stalled on
    #: memory). None on v1, or where the kernel has no such file.
    memory_peak_bytes: int | None = None
    memory_pressure_some: float | None = None


@dataclass(frozen=True, slots=True)
class HostMemory(Event):
    """The host's memory, from /proc/meminfo and /proc/pressure/memory."""

    KIND: ClassVar[str] = "host_memory"
    total_bytes: int
    available_bytes: int
    swap_total_bytes: int
    swap_free_bytes: int
    psi_some_avg10: float | None = None
    psi_full_avg10: float | None = None


@dataclass(frozen=True, slots=True)
class ProcessRss:
    """One process inside a container."""

    pid: int
    name: str
    rss_bytes: int
    #: The pid inside the container's pid namespace (what its own logs say), 0: the same.
    ns_pid: int = 0
    #: RssAnon: the anonymous part of the RSS, which a leak grows (0: not read).
    anon_bytes: int = 0


@dataclass(frozen=True, slots=True)
class ContainerProcesses(Event):
    """The RSS of every process of a container (every 5 s), to see which worker grows."""

    KIND: ClassVar[str] = "processes"
    id: str
    processes: tuple[ProcessRss, ...]

    def to_record(self) -> dict[str, Any]:
        return {
            "kind": self.KIND,
            "time": self.time,
            "id": self.id,
            "processes": [dataclasses.asdict(p) for p in self.processes],
        }


@dataclass(frozen=True, slots=True)
class OomKill(Event):
    """One kernel OOM kill, attributed to the container and compose service it hit."""

    KIND: ClassVar[str] = "oom_kill"
    pid: int
    process: str
    constraint: OomConstraint = OomConstraint.UNKNOWN
    anon_rss_bytes: int | None = None
    total_vm_bytes: int | None = None
    container_id: str = ""
    container: str = ""
    service: str = ""
    memcg: str = ""  # oom_memcg (limit) or task_memcg
    source: str = ""  # dmesg, journalctl, docker-events, memory.events, memory.oom_control
    raw: tuple[str, ...] = ()  # the kernel lines, as printed
    replayed: bool = False  # read back from the ring buffer at start, not seen live
    detail: str = ""  # what is not known and why (a counter's kill: "pid unknown: ...")
    #: Which limit ran out (domain.oom_scope): container-limit, shared-limit, host; '' unknown.
    scope: str = ""
    task_memcg: str = ""  # the victim's memory cgroup, as the kernel printed it
    oom_memcg: str = ""  # the cgroup whose limit ran out ('' for the host)
    project: str = ""  # the victim's com.docker.compose.project
    #: For shared-limit and host kills: the container that grew most before the kill.
    culprit_id: str = ""
    culprit: str = ""  # its name (or service)
    culprit_growth_bytes: int | None = None
    culprit_window_s: float | None = None  # over how long that growth was measured
    sharing: int | None = None  # containers under the limit that ran out (None: unknown)
    any_limit: bool | None = None  # whether any container had a limit (None: unknown)


@dataclass(frozen=True, slots=True)
class HealthChange(Event):
    """A container's health or state changed (docker events)."""

    KIND: ClassVar[str] = "health"
    id: str
    name: str
    service: str
    old: str
    new: str
    failing_streak: int = 0
    output: str = ""


@dataclass(frozen=True, slots=True)
class ContainerEvent(Event):
    """A lifecycle event: start, die, restart, oom, create, destroy, kill, stop."""

    KIND: ClassVar[str] = "container_event"
    id: str
    name: str
    service: str
    action: str
    exit_code: int | None = None


@dataclass(frozen=True, slots=True)
class LogLine(Event):
    """One line a container logged, stripped of control sequences (it is data)."""

    KIND: ClassVar[str] = "log"
    id: str
    container: str
    text: str
    stream: str = "stdout"
    signal: LogSignal | None = None


@dataclass(frozen=True, slots=True)
class ProbeResult(Event):
    """One HTTP probe from the console's side."""

    KIND: ClassVar[str] = "probe"
    url: str
    status: int | None  # None: no answer
    latency_ms: float | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 400


@dataclass(frozen=True, slots=True)
class SourceStatus(Event):
    """Which method a source uses, or why it cannot run (shown in the header and panes)."""

    KIND: ClassVar[str] = "source"
    source: str  # stats, kernel_log, docker_events, logs, probes
    method: str  # awk-sampler, sh-sampler, docker-api, dmesg, journalctl, docker-events, none
    ok: bool = True
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LinkChange(Event):
    """The host's connection state changed."""

    KIND: ClassVar[str] = "link"
    state: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Note(Event):
    """Anything else worth keeping in the journal: a command run, a runbook step, a user note."""

    KIND: ClassVar[str] = "note"
    what: str
    data: dict[str, Any] = field(default_factory=dict)


def _event_kinds() -> dict[str, type[Event]]:
    # Named, not found through Event.__subclasses__(): dataclass(slots=True) makes a second
    # class, and the first one (which compares unequal) can still be listed there.
    classes: tuple[type[Event], ...] = (
        ContainerInfo, ContainerGone, ContainerSample, HostMemory, ContainerProcesses, OomKill,
        HealthChange, ContainerEvent, LogLine, ProbeResult, SourceStatus, LinkChange, Note,
    )  # fmt: skip
    return {cls.KIND: cls for cls in classes}


def event_from_record(record: dict[str, Any]) -> Event:
    """The Event that `to_record()` gave `record` (keys it does not know, like 'host', are left).

    Raises:
        ValueError: an unknown kind, or a field missing or of the wrong shape.
    """
    cls = _EVENT_KINDS.get(str(record.get("kind")))
    if cls is None:
        raise ValueError(f"not an event record: kind {record.get('kind')!r}")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in record:
            continue
        value = record[f.name]
        kind = str(f.type)  # annotations are strings here (from __future__ import annotations)
        if f.name == "processes" and cls is ContainerProcesses:
            value = tuple(ProcessRss(**p) for p in value)
        elif kind.startswith("tuple") and isinstance(value, list):
            value = tuple(value)
        elif kind == "OomConstraint":
            value = OomConstraint(value)
        elif kind.startswith("LogSignal"):
            value = LogSignal(value) if value is not None else None
        values[f.name] = value
    try:
        return cls(**values)
    except TypeError as exc:
        raise ValueError(f"{cls.KIND} record: {exc}") from None


_EVENT_KINDS = _event_kinds()

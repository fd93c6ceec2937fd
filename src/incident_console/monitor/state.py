"""HostState: everything known about one host now, in bounded buffers.

HostMonitor folds each event into it with :meth:`HostState.apply`; readers (the UI, `diagnose`,
runbook checks) take what they need. Memory stays flat however long it runs: every history is a
deque with a maximum length.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from dataclasses import dataclass, field

from incident_console.domain.events import (
    ContainerEvent,
    ContainerGone,
    ContainerInfo,
    ContainerProcesses,
    ContainerSample,
    Event,
    HealthChange,
    HostMemory,
    LinkChange,
    LogLine,
    OomKill,
    ProbeResult,
    SourceStatus,
)
from incident_console.domain.leak import LeakReport
from incident_console.domain.oom_history import is_history_kill, same_kill

#: One sample a second: 30 minutes of history per container (the seed's watch window).
SAMPLE_HISTORY = 1800
HOST_HISTORY = 1800
OOM_HISTORY = 500
EVENT_HISTORY = 500
LOG_HISTORY = 5000
PROBE_HISTORY = 600
#: Process RSS frames kept per container (every 5 s: 10 minutes), for each worker's growth rate.
PROCESS_HISTORY = 120
#: Removed containers kept (with their samples) for the detail view and OOM attribution; the
#: oldest go beyond this, or a watch that recreates containers for days would grow without end.
GONE_KEPT = 50
#: Names of containers seen (a few dozen bytes each), for kills of long-removed containers.
NAMES_KEPT = 2000


@dataclass(frozen=True, slots=True)
class ContainerName:
    """What a container was called, remembered after it is gone (and its view forgotten)."""

    name: str
    service: str = ""
    project: str = ""
    removed: bool = False


@dataclass(slots=True)
class ContainerView:
    """One container: its inspect facts, its recent samples and events."""

    info: ContainerInfo
    samples: deque[ContainerSample] = field(default_factory=lambda: deque(maxlen=SAMPLE_HISTORY))
    processes: ContainerProcesses | None = None
    process_history: deque[ContainerProcesses] = field(
        default_factory=lambda: deque(maxlen=PROCESS_HISTORY)
    )
    #: Peak RSS seen per pid (bounded: pids of dead workers are dropped past 64 entries).
    peak_rss: dict[int, int] = field(default_factory=dict)
    health_log: deque[HealthChange] = field(default_factory=lambda: deque(maxlen=100))
    events: deque[ContainerEvent] = field(default_factory=lambda: deque(maxlen=100))
    health_since: float | None = None
    oom_kills: int = 0
    last_oom: float | None = None
    gone: bool = False

    @property
    def latest(self) -> ContainerSample | None:
        return self.samples[-1] if self.samples else None


@dataclass(slots=True)
class HostState:
    """Everything known about one host, bounded."""

    name: str
    link: str = "connecting"
    link_reason: str = ""
    link_since: float = field(default_factory=time.time)
    containers: dict[str, ContainerView] = field(default_factory=dict)
    memory: deque[HostMemory] = field(default_factory=lambda: deque(maxlen=HOST_HISTORY))
    oom_kills: deque[OomKill] = field(default_factory=lambda: deque(maxlen=OOM_HISTORY))
    events: deque[ContainerEvent] = field(default_factory=lambda: deque(maxlen=EVENT_HISTORY))
    logs: deque[LogLine] = field(default_factory=lambda: deque(maxlen=LOG_HISTORY))
    probes: dict[str, deque[ProbeResult]] = field(default_factory=dict)
    sources: dict[str, SourceStatus] = field(default_factory=dict)
    #: Every container id seen -> its name (inventory, docker events, destroy history): an
    #: OOM kill of a container removed long ago still says which one it was.
    names: dict[str, ContainerName] = field(default_factory=dict)
    #: Bumped on every apply, so a reader can tell cheaply whether anything changed.
    version: int = 0
    #: Container id -> what each route keeps per request (monitor/leaks.py writes it). Derived
    #: from the events, not one of them: a serve viewer derives its own from the events it
    #: was sent, so two states that saw the same events compare equal whatever it says.
    leaks: dict[str, LeakReport] = field(default_factory=dict, compare=False)

    def apply(self, event: Event) -> None:
        """Fold one event into the state."""
        self.version += 1
        match event:
            case ContainerSample():
                view = self.containers.get(event.id)
                if view is not None:
                    view.samples.append(event)
            case HostMemory():
                self.memory.append(event)
            case ContainerInfo():
                self._remember(event.id, event.name, event.service, event.project)
                self._apply_info(event)
            case ContainerGone():
                view = self.containers.get(event.id)
                if view is not None:
                    info = view.info
                    self._remember(event.id, info.name, info.service, info.project, True)
                    view.gone = True
                    self._forget_old_gone()
                else:
                    self._remember(event.id, event.name, event.service, event.project, True)
            case ContainerProcesses():
                self._apply_processes(event)
            case OomKill():
                if not self._apply_kill(event):
                    return
                view = self.containers.get(event.container_id)
                if view is not None:
                    view.oom_kills += 1
                    view.last_oom = event.time
            case HealthChange():
                view = self.containers.get(event.id)
                if view is not None:
                    view.health_log.append(event)
                    view.health_since = event.time
            case ContainerEvent():
                self._remember(event.id, event.name, event.service)
                self.events.append(event)
                view = self.containers.get(event.id)
                if view is not None:
                    view.events.append(event)
            case LogLine():
                self.logs.append(event)
            case ProbeResult():
                history = self.probes.setdefault(event.url, deque(maxlen=PROBE_HISTORY))
                history.append(event)
            case SourceStatus():
                self.sources[event.source] = event
            case LinkChange():
                self.link = event.state
                self.link_reason = event.reason
                self.link_since = event.time
            case _:
                pass

    def _apply_kill(self, kill: OomKill) -> bool:
        """Keep one record per kill across docker's history and the others (True: a new kill).

        A record from docker's event history (no pid) gives way to another source's record of
        the same kill, whichever arrives first.
        """
        for i, known in enumerate(self.oom_kills):
            if not same_kill(kill, known):
                continue
            if is_history_kill(kill) and not is_history_kill(known):
                return False
            if is_history_kill(known) and not is_history_kill(kill):
                self.oom_kills[i] = self._named(kill)
                return False
        self.oom_kills.append(self._named(kill))
        return True

    def _remember(
        self, cid: str, name: str, service: str = "", project: str = "", removed: bool = False
    ) -> None:
        """Note what `cid` is called; name kills of it that were attributed by id only."""
        if not cid or not name or name == cid[:12]:
            return  # an event that knew no better than the id
        known = self.names.get(cid)
        entry = ContainerName(
            name,
            service or (known.service if known else ""),
            project or (known.project if known else ""),
            removed or (known.removed if known else False),
        )
        if entry == known:
            return
        self.names[cid] = entry
        if len(self.names) > NAMES_KEPT:
            del self.names[next(iter(self.names))]  # the oldest seen
        if known is None or not known.name:
            # A kill replayed from the kernel log before the inventory (or the destroy
            # history) said whose it was: name it now.
            for i, kill in enumerate(self.oom_kills):
                if kill.container_id == cid and not kill.container:
                    self.oom_kills[i] = self._named(kill)

    def _named(self, kill: OomKill) -> OomKill:
        if kill.container or not kill.container_id:
            return kill
        known = self.names.get(kill.container_id)
        if known is None:
            return kill
        return dataclasses.replace(
            kill, container=known.name, service=kill.service or known.service
        )

    def container_name(self, cid: str) -> ContainerName | None:
        """What `cid` was called, whether it is still there or long removed (None: never seen)."""
        view = self.containers.get(cid)
        if view is not None:
            return ContainerName(
                view.info.name, view.info.service, view.info.project, removed=view.gone
            )
        return self.names.get(cid)

    def _apply_info(self, info: ContainerInfo) -> None:
        view = self.containers.get(info.id)
        if view is None:
            view = ContainerView(info=info, health_since=info.started_at or info.time)
            # Kills the kernel log replayed before the inventory named this container.
            kills = [k.time for k in self.oom_kills if k.container_id == info.id]
            view.oom_kills, view.last_oom = len(kills), max(kills, default=None)
            self.containers[info.id] = view
            return
        if view.info.health != info.health:
            view.health_since = info.time
        view.info = info
        view.gone = False

    def _forget_old_gone(self) -> None:
        gone = [cid for cid, view in self.containers.items() if view.gone]
        for cid in gone[: max(0, len(gone) - GONE_KEPT)]:  # oldest first (insertion order)
            del self.containers[cid]

    def _apply_processes(self, event: ContainerProcesses) -> None:
        view = self.containers.get(event.id)
        if view is None:
            return
        view.processes = event
        view.process_history.append(event)
        for proc in event.processes:
            view.peak_rss[proc.pid] = max(view.peak_rss.get(proc.pid, 0), proc.rss_bytes)
        if len(view.peak_rss) > 64:
            live = {p.pid for p in event.processes}
            for pid in sorted(view.peak_rss, key=view.peak_rss.__getitem__):
                if len(view.peak_rss) <= 64:
                    break
                if pid not in live:
                    del view.peak_rss[pid]

    # Readers -----------------------------------------------------------------------------

    @property
    def is_live(self) -> bool:
        """False while the link is stale or down: numbers shown must say they are old."""
        return self.link == "connected"

    def container_by_name(self, name: str) -> ContainerView | None:
        for view in self.containers.values():
            if view.info.name == name or view.info.id.startswith(name):
                return view
        return None

    def service_containers(self, service: str) -> list[ContainerView]:
        return [v for v in self.containers.values() if v.info.service == service and not v.gone]

    def oom_kills_since(self, since: float) -> list[OomKill]:
        return [k for k in self.oom_kills if k.time >= since]

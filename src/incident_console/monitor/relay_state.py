"""A HostState as JSON-ready data and back: what a viewer of a shared collection starts from.

`serve` runs one HostMonitor per host and every browser's console is a view of it (see
:mod:`incident_console.monitor.relay`). A viewer that connects gets the state as it is now
(this snapshot, bounded like the state itself), then every event after it, folded in by the
same :meth:`HostState.apply`: the two stay the same state.
"""

from __future__ import annotations

from collections import deque
from typing import Any, TypeVar

from incident_console.domain.events import (
    ContainerEvent,
    ContainerInfo,
    ContainerProcesses,
    ContainerSample,
    Event,
    HealthChange,
    HostMemory,
    LogLine,
    OomKill,
    ProbeResult,
    SourceStatus,
    event_from_record,
)
from incident_console.monitor.state import PROBE_HISTORY, ContainerName, ContainerView, HostState

E = TypeVar("E", bound=Event)


def _records(events: Any) -> list[dict[str, Any]]:
    return [e.to_record() for e in events]


def _events(records: Any, kind: type[E]) -> list[E]:
    found = []
    for record in records or []:
        event = event_from_record(record)
        if not isinstance(event, kind):
            raise ValueError(f"snapshot: a {event.KIND} record where a {kind.KIND} belongs")
        found.append(event)
    return found


def _refill(target: deque[Any], items: list[Any]) -> deque[Any]:
    target.clear()
    target.extend(items)  # the deque's maxlen keeps the newest, as apply() would have
    return target


def state_snapshot(state: HostState) -> dict[str, Any]:
    """Everything `state` holds, as JSON-ready data (one call, no await: nothing moves)."""
    return {
        "name": state.name,
        "link": state.link,
        "link_reason": state.link_reason,
        "link_since": state.link_since,
        "version": state.version,
        "containers": [
            {
                "info": view.info.to_record(),
                "samples": _records(view.samples),
                "processes": view.processes.to_record() if view.processes else None,
                "process_history": _records(view.process_history),
                "peak_rss": [[pid, rss] for pid, rss in view.peak_rss.items()],
                "health_log": _records(view.health_log),
                "events": _records(view.events),
                "health_since": view.health_since,
                "oom_kills": view.oom_kills,
                "last_oom": view.last_oom,
                "gone": view.gone,
            }
            for view in state.containers.values()
        ],
        "memory": _records(state.memory),
        "oom_kills": _records(state.oom_kills),
        "events": _records(state.events),
        "logs": _records(state.logs),
        "probes": {url: _records(history) for url, history in state.probes.items()},
        "sources": [status.to_record() for status in state.sources.values()],
        "names": [[cid, n.name, n.service, n.project, n.removed] for cid, n in state.names.items()],
    }


def state_from_snapshot(data: dict[str, Any]) -> HostState:
    """The HostState that :func:`state_snapshot` described.

    Raises:
        ValueError: the data is not a snapshot (a key missing, a record of the wrong kind).
    """
    try:
        state = HostState(name=str(data["name"]))
        state.link = str(data["link"])
        state.link_reason = str(data["link_reason"])
        state.link_since = float(data["link_since"])
        state.version = int(data["version"])
        for item in data["containers"]:
            (info,) = _events([item["info"]], ContainerInfo)
            view = ContainerView(info=info)
            _refill(view.samples, _events(item["samples"], ContainerSample))
            processes = item["processes"]
            view.processes = _events([processes], ContainerProcesses)[0] if processes else None
            _refill(view.process_history, _events(item["process_history"], ContainerProcesses))
            view.peak_rss = {int(pid): int(rss) for pid, rss in item["peak_rss"]}
            _refill(view.health_log, _events(item["health_log"], HealthChange))
            _refill(view.events, _events(item["events"], ContainerEvent))
            view.health_since = item["health_since"]
            view.oom_kills = int(item["oom_kills"])
            view.last_oom = item["last_oom"]
            view.gone = bool(item["gone"])
            state.containers[info.id] = view
        _refill(state.memory, _events(data["memory"], HostMemory))
        _refill(state.oom_kills, _events(data["oom_kills"], OomKill))
        _refill(state.events, _events(data["events"], ContainerEvent))
        _refill(state.logs, _events(data["logs"], LogLine))
        for url, history in data["probes"].items():
            state.probes[str(url)] = deque(_events(history, ProbeResult), maxlen=PROBE_HISTORY)
        for status in _events(data["sources"], SourceStatus):
            state.sources[status.source] = status
        for cid, name, service, project, removed in data["names"]:
            state.names[str(cid)] = ContainerName(
                str(name), str(service), str(project), bool(removed)
            )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ValueError(f"not a host state snapshot: {type(exc).__name__}: {exc}") from None
    return state

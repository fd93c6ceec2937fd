"""OOM kills from docker's event history: what happened before the console connected.

Docker remembers its last 256 events. At start the docker events source asks for the
container `oom`, `die` and `kill` events of a window before it connected; this module turns
them into :class:`OomKill` records (pure, no I/O). They are history (``replayed``): the
console lists them and never pops them up as news.

Rules, measured on docker 20.10 / cgroup v1 (an OOM-killed main process gives ``oom`` then
``die`` exitCode 137, 75 ms apart):
    - A burst of ``oom`` events of one container (each within BURST_S of the last) is one
      kill: cgroup v1 sends the limit notification several times per kill. A ``die`` 137 in
      the burst is the same kill.
    - A ``die`` 137 with no ``oom`` is a SIGKILL; it is a kill record only when no ``kill``
      event (``docker kill``, ``docker stop``'s SIGKILL after its timeout) came before it
      within STOP_WINDOW_S. On v1 a host-wide OOM sends no ``oom`` event: this is how it shows.
    - v1's ``oom`` is the cgroup's own limit notification (a limit kill); on v2 containerd
      reports any kill in the cgroup (the limit or the host), so the constraint is unknown.
    - The process and pid are never in docker's events: the record says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from incident_console.domain.events import OomConstraint, OomKill

#: The source of a record made from docker's event history.
HISTORY_SOURCE = "docker-events"
#: `oom` events of one container this close (seconds) to the previous are the same kill.
BURST_S = 2.0
#: A `die` 137 this soon after a `kill` event of the container was docker's SIGKILL, not OOM.
STOP_WINDOW_S = 60.0
#: Two records of one container this close in time are one kill (docker stamps its events
#: itself; the kernel's stamps are placed from the boot time: a second or two apart).
MATCH_S = 5.0
#: The actions the history is asked for.
HISTORY_ACTIONS = ("oom", "die", "kill")

_UNKNOWN = "process and pid unknown: from docker's event history"


@dataclass(slots=True)
class _Open:
    kill: OomKill
    last: float
    ooms: int


def event_time(event: Mapping[str, Any]) -> float | None:
    """Epoch seconds of a docker event (timeNano first), None when it has no usable stamp."""
    try:
        nano = event.get("timeNano")
        if nano:
            return int(nano) / 1e9
        stamp = event.get("time")
        return float(stamp) if stamp is not None else None
    except (TypeError, ValueError):
        return None


def _exit_code(attributes: Mapping[str, Any]) -> int | None:
    try:
        return int(str(attributes.get("exitCode")))
    except (TypeError, ValueError):
        return None


def history_kills(
    events: Iterable[Mapping[str, Any]],
    cgroup_version: str,
    *,
    service_label: str = "com.docker.compose.service",
) -> list[OomKill]:
    """The OOM kills docker's past container events tell of, oldest first. Never raises.

    Args:
        events: docker event documents (the API's dicts), in any order.
        cgroup_version: "1" or "2" (docker info CgroupVersion): what an `oom` event means.
        service_label: the compose service label (attributes carry the container's labels).
    """
    parsed: list[tuple[float, str, str, Mapping[str, Any]]] = []
    for event in events:
        if not isinstance(event, Mapping):
            continue
        actor = event.get("Actor")
        actor = actor if isinstance(actor, Mapping) else {}
        attributes = actor.get("Attributes")
        attributes = attributes if isinstance(attributes, Mapping) else {}
        cid = str(actor.get("ID") or event.get("id") or "")
        action = str(event.get("Action") or event.get("status") or "")
        when = event_time(event)
        if cid and when is not None and action in HISTORY_ACTIONS:
            parsed.append((when, action, cid, attributes))
    parsed.sort(key=lambda item: item[0])
    constraint = OomConstraint.LIMIT if cgroup_version != "2" else OomConstraint.UNKNOWN
    out: list[OomKill] = []
    open_: dict[str, _Open] = {}  # container -> its kill whose burst may still grow
    stopped: dict[str, float] = {}  # container -> its last `kill` event
    for when, action, cid, attributes in parsed:
        current = open_.get(cid)
        if current is not None and when - current.last > BURST_S:
            current = None
            del open_[cid]
        if action == "kill":
            stopped[cid] = when
        elif action == "oom":
            if current is not None:
                current.last, current.ooms = when, current.ooms + 1
                continue
            kill = _record(when, cid, attributes, constraint, service_label)
            out.append(kill)
            open_[cid] = _Open(kill, when, 1)
        elif action == "die" and _exit_code(attributes) == 137:
            if current is not None:
                continue  # the oom burst's own kill: the main process died of it
            if when - stopped.get(cid, float("-inf")) <= STOP_WINDOW_S:
                continue  # docker kill / docker stop sent that SIGKILL
            why = f"{_UNKNOWN} (exit 137, no docker kill or stop before it)"
            out.append(_record(when, cid, attributes, OomConstraint.UNKNOWN, service_label, why))
    return out


def _record(
    when: float,
    cid: str,
    attributes: Mapping[str, Any],
    constraint: OomConstraint,
    service_label: str,
    detail: str = _UNKNOWN,
) -> OomKill:
    return OomKill(
        time=when,
        pid=0,
        process="",
        constraint=constraint,
        container_id=cid,
        container=str(attributes.get("name") or "").lstrip("/"),
        service=str(attributes.get(service_label) or ""),
        source=HISTORY_SOURCE,
        replayed=True,
        detail=detail,
    )


def is_history_kill(kill: OomKill) -> bool:
    """True for a record made from docker's event history (no pid, no process)."""
    return kill.source == HISTORY_SOURCE and kill.replayed


def same_kill(a: OomKill, b: OomKill, window: float = MATCH_S) -> bool:
    """Whether two records of one container, from different sources, report one kill."""
    return (
        bool(a.container_id) and a.container_id == b.container_id and abs(a.time - b.time) <= window
    )


def new_history(kills: Iterable[OomKill], known: Iterable[OomKill]) -> list[OomKill]:
    """The history records no other record (kernel log, cgroup counters) already reports."""
    seen = list(known)
    return [k for k in kills if not any(same_kill(k, other) for other in seen)]

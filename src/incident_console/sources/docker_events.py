"""Containers, their health and lifecycle: one inventory, then ONE docker events stream.

The inventory is `containers.list(all=True)` + inspect; after that nothing polls: docker's
event stream (read in a worker thread, handed to the loop with call_soon_threadsafe) says what
changed, and only the container an event names is inspected again. When the stream breaks
(dockerd restart, link drop) we re-list and resume with `since=` the last event's time.

At the first inventory docker's event history (it keeps its last 256 events) is read twice:
for the names of containers removed before we started, and for the OOM kills of the `since`
window before we connected (domain/oom_history.py), listed as history, never as news.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from incident_console.domain.events import (
    ContainerEvent,
    ContainerGone,
    ContainerInfo,
    HealthChange,
    SourceStatus,
)
from incident_console.domain.oom_history import (
    HISTORY_ACTIONS,
    event_time,
    history_kills,
    new_history,
)
from incident_console.sources.base import Backoff, Emit, Source, one_line
from incident_console.sources.inventory import (
    LABEL_PROJECT,
    LABEL_SERVICE,
    ContainerDirectory,
    container_info,
)
from incident_console.transport.base import Host, TransportError

if TYPE_CHECKING:
    import docker

    from incident_console.monitor.state import HostState

#: Inspects in flight at once when taking the inventory (docker-py pools 10 connections).
INSPECT_WORKERS = 8

#: The lifecycle actions we report as ContainerEvent.
LIFECYCLE = frozenset({"die", "oom", "start", "restart", "create", "destroy", "kill", "stop"})
#: Actions after which the container's inspect facts changed.
REINSPECT = frozenset({"start", "restart", "create", "die", "stop", "oom"})

_END = object()  # the events thread's stream ended

#: The window of past OOM kills asked of docker's history when the console gives none.
DEFAULT_HISTORY_S = 3600.0
#: How long the history's kills wait for the kernel log's replay (the kernel's record of a
#: kill has its pid and process: it wins), and how quiet the replay must have gone.
KERNEL_SETTLE_S = 15.0
KERNEL_QUIET_S = 2.0


class DockerEventsSource(Source):
    """Inventory + docker events -> ContainerInfo, HealthChange, ContainerEvent, ContainerGone."""

    name = "docker_events"

    def __init__(
        self,
        retry_max: float = 15.0,
        since: float | None = None,
        settle_s: float = KERNEL_SETTLE_S,
    ) -> None:
        """Args:
        retry_max: the longest wait between reconnection attempts.
        since: the start of the window of past OOM kills read from docker's history
            (None: the last DEFAULT_HISTORY_S before the source started).
        settle_s: at most this long the history's kills wait for the kernel log's replay.
        """
        self.retry_max = retry_max
        self.history_since = since
        self.settle_s = settle_s
        self._cgroup: tuple[str, str] | None = None
        self._since: float | None = None
        self._history: asyncio.Task[None] | None = None

    async def run(self, host: Host, state: HostState, emit: Emit) -> None:
        """Keep an inventory and one event stream going; re-list after every break."""
        try:
            await self._run(host, state, emit)
        finally:
            if self._history is not None:
                self._history.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._history

    async def _run(self, host: Host, state: HostState, emit: Emit) -> None:
        backoff = Backoff(first=1.0, most=self.retry_max)
        while True:
            try:
                client = await host.docker()
                await self._inventory(client, state, emit)
                emit(
                    SourceStatus(
                        time=time.time(),
                        source=self.name,
                        method="docker-events",
                        detail=(
                            f"{len(ContainerDirectory(state).refs())} containers;"
                            " following docker events"
                        ),
                    )
                )
                backoff.reset()
                await self._follow(client, state, emit)
                why = "docker event stream ended"
            except (TransportError, OSError) as exc:
                why = one_line(exc)
            except Exception as exc:  # noqa: BLE001 - docker SDK errors (APIError, ...) vary
                why = f"docker: {one_line(exc)}"
            wait = backoff.next()
            emit(
                SourceStatus(
                    time=time.time(),
                    source=self.name,
                    method="docker-events",
                    ok=False,
                    detail=f"{why}; retrying in {wait:.0f} s",
                )
            )
            await asyncio.sleep(wait)

    async def _inventory(self, client: docker.DockerClient, state: HostState, emit: Emit) -> None:
        if self._cgroup is None:
            with contextlib.suppress(Exception):
                info = await asyncio.to_thread(client.info)
                self._cgroup = (
                    str(info.get("CgroupVersion") or "1"),
                    str(info.get("CgroupDriver") or "cgroupfs"),
                )
        first = self._since is None
        if self._since is None:
            self._since = time.time()
        docs = await asyncio.to_thread(_list_and_inspect, client)
        now = time.time()
        seen = set()
        for doc in docs:
            info = container_info(doc, now, self._cgroup)
            seen.add(info.id)
            emit(info)
        for cid, ref in ContainerDirectory(state).refs().items():
            if cid not in seen and not ref.gone:
                emit(ContainerGone(time=now, id=cid, name=ref.name))
        if first and self._since is not None:
            # After the rows, not before: the names are for the OOM feed's old kills.
            await self._removed_before(client, emit, self._since)
            # Its own task: it waits for the kernel log's replay, the rows must not.
            self._history = asyncio.create_task(
                self._past_kills(client, state, emit, self._since), name="docker-oom-history"
            )

    async def _past_kills(
        self, client: docker.DockerClient, state: HostState, emit: Emit, until: float
    ) -> None:
        """The OOM kills of the window before we connected, from docker's event history,
        less those the kernel log (or the cgroups' counters) already reported."""
        since = self.history_since
        if since is None:
            since = until - DEFAULT_HISTORY_S
        try:
            events = await asyncio.to_thread(_kill_history, client, since, until)
        except Exception:  # noqa: BLE001 - an engine without history: nothing to add
            return
        version = self._cgroup[0] if self._cgroup else "1"
        kills = history_kills(events, version, service_label=LABEL_SERVICE)
        if not kills:
            return
        await _kernel_settled(state, self.settle_s)
        for kill in new_history(kills, list(state.oom_kills)):
            emit(kill)

    async def _removed_before(self, client: docker.DockerClient, emit: Emit, until: float) -> None:
        """The containers removed before we started, from docker's event history (it keeps
        only its last 256 events): the kernel log replays kills of containers the inventory
        never sees, and a bare id is no use to the engineer."""
        try:
            events = await asyncio.to_thread(_destroy_history, client, until)
        except Exception:  # noqa: BLE001 - an engine without history: kills stay by id
            return
        for event in events:
            actor = event.get("Actor") or {}
            attributes: Mapping[str, Any] = actor.get("Attributes") or {}
            cid = str(actor.get("ID") or event.get("id") or "")
            name = str(attributes.get("name") or "")
            if cid and name:
                emit(
                    ContainerGone(
                        time=_event_time(event),
                        id=cid,
                        name=name,
                        service=str(attributes.get(LABEL_SERVICE) or ""),
                        project=str(attributes.get(LABEL_PROJECT) or ""),
                    )
                )

    async def _follow(self, client: docker.DockerClient, state: HostState, emit: Emit) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        # The stream resumes just before the last event seen; duplicates are harmless
        # (a repeated inspect), gaps are not.
        since = int(self._since) if self._since else None
        stream = await asyncio.to_thread(
            client.api.events, decode=True, filters={"type": "container"}, since=since
        )

        def pump() -> None:
            try:
                for event in stream:
                    loop.call_soon_threadsafe(queue.put_nowait, event)
            except Exception as exc:  # noqa: BLE001 - the socket closed under us
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _END)

        # A dedicated thread: a stream held for hours must not occupy the loop's small executor.
        threading.Thread(target=pump, name="docker-events", daemon=True).start()
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, Exception):
                    raise item
                if isinstance(item, Mapping):
                    await self._handle(client, state, emit, item)
        finally:
            with contextlib.suppress(Exception):
                stream.close()

    async def _handle(
        self, client: docker.DockerClient, state: HostState, emit: Emit, event: Mapping[str, Any]
    ) -> None:
        action = str(event.get("Action") or event.get("status") or "")
        actor = event.get("Actor") or {}
        attributes: Mapping[str, Any] = actor.get("Attributes") or {}
        cid = str(actor.get("ID") or event.get("id") or "")
        when = _event_time(event)
        self._since = max(self._since or 0.0, when)
        ref = ContainerDirectory(state).get(cid)
        name = str(attributes.get("name") or (ref.name if ref else cid[:12]))
        service = str(attributes.get(LABEL_SERVICE) or (ref.service if ref else ""))
        if action.startswith("health_status"):
            new = action.partition(":")[2].strip()
            old = ref.health if ref else ""
            info = await self._inspect(client, cid, when)
            if info is not None:
                emit(info)
            emit(
                HealthChange(
                    time=when,
                    id=cid,
                    name=name,
                    service=service,
                    old=old,
                    new=new,
                    failing_streak=info.failing_streak if info else 0,
                    output=info.last_probe_output if info else "",
                )
            )
            return
        if action not in LIFECYCLE:
            return  # exec_*, attach, resize, ...: not the on-call engineer's business
        exit_code = None
        if action == "die":
            with contextlib.suppress(TypeError, ValueError):
                exit_code = int(str(attributes.get("exitCode")))
        emit(
            ContainerEvent(
                time=when, id=cid, name=name, service=service, action=action, exit_code=exit_code
            )
        )
        if action == "destroy":
            project = str(attributes.get(LABEL_PROJECT) or (ref.project if ref else ""))
            emit(ContainerGone(time=when, id=cid, name=name, service=service, project=project))
        elif action in REINSPECT:
            info = await self._inspect(client, cid, when)
            if info is not None:
                emit(info)

    async def _inspect(
        self, client: docker.DockerClient, cid: str, when: float
    ) -> ContainerInfo | None:
        doc = await asyncio.to_thread(_inspect, client, cid)
        return container_info(doc, when, self._cgroup) if doc is not None else None


async def _kernel_settled(state: HostState, limit_s: float) -> None:
    """Wait (at most `limit_s`) until the kernel log has replayed its history: it said it is
    closed, or its kill records stopped arriving for KERNEL_QUIET_S."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    count, quiet_since = len(state.oom_kills), loop.time()
    while loop.time() < deadline:
        kernel = state.sources.get("kernel_log")
        if kernel is not None and not kernel.ok:
            return  # closed: no replay is coming
        if len(state.oom_kills) != count:
            count, quiet_since = len(state.oom_kills), loop.time()
        elif kernel is not None and loop.time() - quiet_since >= KERNEL_QUIET_S:
            return
        await asyncio.sleep(0.25)


def _kill_history(client: docker.DockerClient, since: float, until: float) -> list[dict[str, Any]]:
    """Docker's remembered oom, die and kill events between `since` and `until` (it ends)."""
    # Whole seconds (the engine reads a fraction as nanoseconds), `until` rounded up (a kill in
    # the second we connected would be in neither this read nor, as a kill, the live stream),
    # and what came after `until` itself dropped: that is news, not history (and what came
    # before `since` itself, which the whole second let in).
    stream = client.api.events(
        since=int(since),
        until=math.ceil(until),
        filters={"type": "container", "event": list(HISTORY_ACTIONS)},
        decode=True,
    )
    try:
        return [
            event
            for event in stream
            if isinstance(event, dict) and since <= (event_time(event) or until) <= until
        ]
    finally:
        with contextlib.suppress(Exception):
            stream.close()


def _event_time(event: Mapping[str, Any]) -> float:
    try:
        nano = event.get("timeNano")
        if nano:
            return int(nano) / 1e9
        return float(event.get("time") or time.time())
    except (TypeError, ValueError):
        return time.time()


def _destroy_history(client: docker.DockerClient, until: float) -> list[dict[str, Any]]:
    """Docker's remembered `destroy` events up to `until` (a bounded read: it ends)."""
    # `until` in the past: the daemon answers from its buffer at once (in the future it
    # would hold the request open until then).
    stream = client.api.events(
        since=0,
        until=until,
        filters={"type": "container", "event": "destroy"},
        decode=True,
    )
    try:
        return [event for event in stream if isinstance(event, dict)]
    finally:
        with contextlib.suppress(Exception):
            stream.close()


def _inspect(client: docker.DockerClient, cid: str) -> dict[str, Any] | None:
    """Inspect one container in a worker thread; None when it vanished meanwhile (normal)."""
    import docker.errors

    try:
        doc: dict[str, Any] = client.api.inspect_container(cid)
    except docker.errors.NotFound:
        return None
    return doc


def _list_and_inspect(client: docker.DockerClient) -> list[dict[str, Any]]:
    """Every container's inspect document (those that vanish mid-way are skipped).

    The inspects go INSPECT_WORKERS at a time: one after another, each waits a round trip
    (over SSH, plus 40 ms now and then while OpenSSH still sends with Nagle's algorithm),
    and the console has no rows until the last one: 54 containers took 0.59-0.87 s on
    loopback, and would take seconds over a VPN.
    """
    ids = [str(summary.get("Id") or "") for summary in client.api.containers(all=True, trunc=False)]
    if not ids:
        return []
    with ThreadPoolExecutor(min(INSPECT_WORKERS, len(ids)), "inspect") as pool:
        docs = pool.map(functools.partial(_inspect, client), ids)
        return [doc for doc in docs if doc is not None]

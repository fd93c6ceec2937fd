"""One collection per host, many viewers: the relay between `serve` and each browser's console.

`serve` runs one HostMonitor per host (one SSH connection, one sampler on the server, however
many people look) and a :class:`RelayServer` on a unix socket (0600, in a private folder). Each
browser session that textual-serve starts runs the normal console on :class:`RelayMonitor`s
fed from that socket: the state as it is when the viewer connects (a snapshot), then every
event. Viewers are read-only unless `serve` allows changes; an allowed change (a restart) goes
back over the socket to serve's HostMonitor, the one door, which journals it.

The protocol is JSON, one message a line. Serve to viewer: ``hello`` (the hosts, whether
changes are allowed), one ``state`` per host, then ``event`` and ``reply``. Viewer to serve:
``restart`` (host index, container id, request number).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from incident_console.domain.events import Event, event_from_record
from incident_console.monitor.changes import (
    Change,
    ChangeDeclined,
    ChangeResult,
    Confirm,
    ReadOnlyError,
)
from incident_console.monitor.host_monitor import HostMonitor
from incident_console.monitor.leaks import LeakTracker
from incident_console.monitor.relay_state import state_from_snapshot, state_snapshot
from incident_console.monitor.state import HostState
from incident_console.transport.base import ConnectionState, LinkState

log = logging.getLogger(__name__)

#: A viewer that stops reading is dropped once this much waits for it: serve's memory (on the
#: machine of the engineer watching a dying server) must not grow with a stuck browser.
MAX_BACKLOG_BYTES = 32 * 1024 * 1024
READ_ONLY_REFUSAL = "viewer: read-only"


class RelayError(OSError):
    """The relay socket could not be reached or spoke something else."""


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("utf-8") + b"\n"


class RelayServer:
    """Publishes the state and events of `monitors` to every viewer on a unix socket."""

    def __init__(self, monitors: Sequence[HostMonitor], *, allow_changes: bool = False) -> None:
        """Args:
        monitors: the collection, one per host (started by the caller).
        allow_changes: let viewers restart containers (through these monitors).
        """
        self.monitors = list(monitors)
        self.allow_changes = allow_changes
        self._clients: set[asyncio.StreamWriter] = set()
        self._server: asyncio.AbstractServer | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self.path: Path | None = None

    @property
    def viewers(self) -> int:
        """How many viewers are connected now."""
        return len(self._clients)

    async def start(self, path: Path) -> None:
        """Listen on `path` (its folder should be private); only this user may connect."""
        self.path = path
        self._server = await asyncio.start_unix_server(self._serve, path=str(path))
        os.chmod(path, 0o600)
        for index, monitor in enumerate(self.monitors):
            self._unsubscribe.append(monitor.subscribe(self._publisher(index)))

    async def close(self) -> None:
        """Stop listening and drop every viewer (each one's console then ends)."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self._server is not None:
            self._server.close()
        for writer in list(self._clients):
            writer.close()
        self._clients.clear()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()

    def _publisher(self, index: int) -> Callable[[Event], None]:
        def publish(event: Event) -> None:
            if not self._clients:
                return
            data = _line({"type": "event", "host": index, "event": event.to_record()})
            for writer in list(self._clients):
                self._send(writer, data)

        return publish

    def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        if writer.is_closing():
            self._clients.discard(writer)
            return
        if writer.transport.get_write_buffer_size() > MAX_BACKLOG_BYTES:
            log.warning("relay: a viewer fell %d MiB behind; dropped", MAX_BACKLOG_BYTES >> 20)
            self._clients.discard(writer)
            writer.close()
            return
        writer.write(data)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Hello, the snapshots and the subscription happen with no await between them: no
        # event can fall between a viewer's snapshot and its first event.
        hosts = [
            {"name": m.host.name, "read_only": m.read_only or not self.allow_changes}
            for m in self.monitors
        ]
        writer.write(_line({"type": "hello", "hosts": hosts, "allow_changes": self.allow_changes}))
        for index, monitor in enumerate(self.monitors):
            writer.write(_line({"type": "state", "host": index, "state": state_snapshot(monitor.state)}))  # fmt: skip
        self._clients.add(writer)
        try:
            while line := await reader.readline():
                await self._request(writer, line)
        except (ConnectionError, ValueError, asyncio.LimitOverrunError):
            pass  # a viewer that went away or spoke nonsense: it is dropped
        finally:
            self._clients.discard(writer)
            writer.close()

    async def _request(self, writer: asyncio.StreamWriter, line: bytes) -> None:
        message = json.loads(line)
        if not isinstance(message, dict):
            raise ValueError("not a request")
        req = message.get("req")
        error = ""
        try:
            if message.get("type") != "restart":
                raise ValueError(f"unknown request {message.get('type')!r}")
            monitor = self.monitors[int(message["host"])]
            if not self.allow_changes:
                raise ReadOnlyError(monitor.host.name, READ_ONLY_REFUSAL)
            container_id = str(message["id"])
            view = monitor.state.containers.get(container_id)
            change = Change.restart(
                container_id,
                container=view.info.name if view is not None else "",
                why="serve: a viewer's restart key",
            )
            await monitor.change(change)
        except (LookupError, TypeError, ValueError) as exc:
            error = f"bad request: {exc}"
        except Exception as exc:  # noqa: BLE001 - the viewer shows it; serve goes on
            error = str(exc) or type(exc).__name__
        self._send(writer, _line({"type": "reply", "req": req, "error": error}))


class RelayHost:
    """What the header shows of a host seen through the relay: its name and link state."""

    def __init__(self, name: str, state: HostState) -> None:
        self._name = name
        self._state = state

    @property
    def name(self) -> str:
        return self._name

    @property
    def state(self) -> ConnectionState:
        try:
            link = LinkState(self._state.link)
        except ValueError:
            link = LinkState.CONNECTING
        return ConnectionState(link, since=self._state.link_since, reason=self._state.link_reason)


class RelayMonitor:
    """One host of the shared collection, as a viewer's console sees it (a MonitorLike)."""

    #: The walkthrough runs commands on the host: a viewer has no host of its own to run them.
    runs_runbooks = False

    def __init__(self, connection: RelayConnection, index: int, name: str, state: HostState,
                 *, read_only: bool) -> None:  # fmt: skip
        self.connection = connection
        self.index = index
        self.state = state
        self.host = RelayHost(name, state)
        self.read_only = read_only
        self.probes: list[str] = []
        self._subscribers: list[Callable[[Event], None]] = []
        #: The routes table of a viewer's detail: estimated here from the events relayed.
        self.leaks = LeakTracker(state, clock=time.time)

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call `callback` with every event of this host (on the event loop)."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def record(self, event: Event) -> None:
        """Fold an event from serve into the state and tell the subscribers."""
        self.state.apply(event)
        self.leaks.observe(event)  # its notes are serve's to journal, not a viewer's
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                log.exception("subscriber failed")

    async def start(self) -> None:
        """Start reading the relay (once for all of this viewer's hosts)."""
        await self.connection.start()

    async def stop(self, deadline_s: float | None = None) -> bool:
        """Leave the relay: the collection goes on for the other viewers."""
        await self.connection.close()
        return True

    async def change(self, change: Change, *, confirm: Confirm | None = None) -> ChangeResult:
        """Ask serve to make a change (a restart: the only one a viewer has a key for).

        Refused here when this viewer is read-only; serve's monitor, the one door, journals it.
        """
        if self.read_only:
            raise ReadOnlyError(self.host.name, READ_ONLY_REFUSAL)
        if change.kind != "restart":
            raise ReadOnlyError(self.host.name, f"viewer: {change.what} (only restarts)")
        if confirm is not None and not await confirm(change):
            raise ChangeDeclined(self.host.name, change.what)
        await self.connection.request(
            {"type": "restart", "host": self.index, "id": change.container_id}
        )
        return ChangeResult(change, change_id="")

    def follow_logs(self, container_ids: Iterable[str] | None) -> None:
        """Nothing: serve's collection follows every container for every viewer."""


class RelayConnection:
    """A viewer's one connection to serve's relay, and the RelayMonitors it feeds."""

    def __init__(self, sock: socket.socket, buffered: bytes) -> None:
        self._sock = sock
        self._buffered = buffered
        self.monitors: list[RelayMonitor] = []
        self.allow_changes = False
        #: Called once when the relay ends (serve stopped): the viewer's console should end too.
        self.on_closed: Callable[[str], None] | None = None
        self._connect: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._replies: dict[int, asyncio.Future[str]] = {}
        self._next_req = 0
        self._closed = False

    @classmethod
    def open(cls, path: Path, timeout_s: float = 30.0) -> RelayConnection:
        """Connect (blocking) and read the hello and every host's state.

        The viewer's console is built from these before its loop runs, so its first frame
        already shows the containers.

        Raises:
            RelayError: nothing listens at `path`, or it does not speak the relay protocol.
        """
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout_s)
        try:
            sock.connect(str(path))
            buffered = b""

            def message() -> dict[str, Any]:
                nonlocal buffered
                while b"\n" not in buffered:
                    chunk = sock.recv(1 << 20)
                    if not chunk:
                        raise RelayError(f"{path}: the relay closed before it said hello")
                    buffered += chunk
                line, _, buffered = buffered.partition(b"\n")
                found = json.loads(line)
                if not isinstance(found, dict):
                    raise RelayError(f"{path}: not a relay message")
                return found

            hello = message()
            if hello.get("type") != "hello":
                raise RelayError(f"{path}: not a relay (it said {str(hello)[:60]!r})")
            connection = cls(sock, b"")
            connection.allow_changes = bool(hello.get("allow_changes"))
            for index, host in enumerate(hello["hosts"]):
                state_message = message()
                if state_message.get("type") != "state" or state_message.get("host") != index:
                    raise RelayError(f"{path}: expected the state of host {index}")
                state = state_from_snapshot(state_message["state"])
                connection.monitors.append(
                    RelayMonitor(
                        connection,
                        index,
                        str(host["name"]),
                        state,
                        read_only=bool(host.get("read_only", True)),
                    )  # fmt: skip
                )
            connection._buffered = buffered
        except (OSError, ValueError, KeyError, TypeError) as exc:
            sock.close()
            if isinstance(exc, RelayError):
                raise
            raise RelayError(f"relay {path}: {exc}") from None
        sock.settimeout(None)
        sock.setblocking(False)
        return connection

    async def start(self) -> None:
        """Attach to the running loop and read events from now on (once, however many ask)."""
        if self._connect is None:
            self._connect = asyncio.ensure_future(self._open())
        await self._connect

    async def _open(self) -> None:
        reader, self._writer = await asyncio.open_unix_connection(sock=self._sock)
        self._task = asyncio.get_running_loop().create_task(self._read(reader), name="relay")

    async def _read(self, reader: asyncio.StreamReader) -> None:
        reason = "serve closed the relay"
        try:
            pending = self._buffered
            self._buffered = b""
            while True:
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line:
                        self._dispatch(json.loads(line))
                chunk = await reader.read(1 << 20)
                if not chunk:
                    break
                pending += chunk
        except asyncio.CancelledError:
            self._closed = True  # the console is closing it: nothing to tell
            raise
        except (OSError, ValueError, LookupError, TypeError) as exc:
            reason = f"relay: {exc}"
        finally:
            for future in self._replies.values():
                if not future.done():
                    future.set_result(reason)
            if not self._closed:
                self._closed = True
                if self.on_closed is not None:
                    self.on_closed(reason)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "event":
            self.monitors[int(message["host"])].record(event_from_record(message["event"]))
        elif kind == "reply":
            future = self._replies.pop(int(message.get("req") or 0), None)
            if future is not None and not future.done():
                future.set_result(str(message.get("error") or ""))

    async def request(self, message: dict[str, Any], timeout_s: float = 60.0) -> None:
        """Send a request to serve and wait for its reply; raise its error, if it has one."""
        if self._writer is None or self._closed:
            raise RelayError("the relay is not connected")
        self._next_req += 1
        req = self._next_req
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._replies[req] = future
        self._writer.write(_line({**message, "req": req}))
        error = await asyncio.wait_for(future, timeout_s)
        if READ_ONLY_REFUSAL in error:
            raise ReadOnlyError(self.monitors[0].host.name if self.monitors else "serve", error)
        if error:
            raise RelayError(error)

    async def close(self) -> None:
        """Leave the relay (idempotent); on_closed is not called for a close we asked for."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._writer is not None:
            self._writer.close()
        else:
            self._sock.close()

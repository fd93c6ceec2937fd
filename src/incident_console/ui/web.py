"""The console in browsers: textual-serve, with every session's process ending with its browser.

textual-serve starts one process per browser through a shell and, when the browser goes,
asks it to quit and then waits for it with no deadline; on exit it leaves its sessions to
chance. Here each session is an argv run in its own process group (no shell), and ends with
its browser or with serve: asked to quit, then SIGTERM to its group, then SIGKILL, each after
a grace period. So no console is left running on the engineer's machine, and none holds a
connection or a sampler on the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import WSCloseCode, web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from incident_console.transport.base import command_line

log = logging.getLogger(__name__)

#: A console asked to quit gets this long to stop by itself (it closes its relay first).
QUIT_GRACE_S = 5.0
#: ... and this long after SIGTERM to its process group, before SIGKILL.
TERM_GRACE_S = 3.0


async def end_process_group(process: asyncio.subprocess.Process, grace_s: float) -> None:
    """Wait `grace_s` for `process` to exit, then SIGTERM its group, then SIGKILL it.

    The process leads its own group (start_new_session): what it started goes with it.
    """
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), grace_s)
    for sig, wait_s in ((signal.SIGTERM, TERM_GRACE_S), (signal.SIGKILL, 10.0)):
        # Also after the leader exited: a child of it may still be in the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        if process.returncode is not None:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), wait_s)


class ConsoleSession(AppService):
    """One browser's console: an argv in its own process group, ended with its browser."""

    def __init__(self, argv: Sequence[str], **kwargs: Any) -> None:
        super().__init__(command_line(argv), **kwargs)
        self.argv = list(argv)
        self._stopped = False

    @property
    def pid(self) -> int | None:
        """The console's process id (None before it started)."""
        return self._process.pid if self._process is not None else None

    async def _open_app_process(self, width: int = 80, height: int = 24) -> Any:
        self._process = process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._build_environment(width=width, height=height),
            start_new_session=True,
        )
        self._stdin = process.stdin
        return process

    async def stop(self) -> None:
        """Ask the console to quit, then end its process group; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(Exception):
            await self._download_manager.cancel_app_downloads(app_service_id=self.app_service_id)
        if self._process is None:
            return
        if self._process.returncode is None:
            with contextlib.suppress(Exception):
                await self.send_meta({"type": "quit"})
            with contextlib.suppress(Exception):
                self.stdin.close()  # a console that missed the quit sees its input end
        await end_process_group(self._process, QUIT_GRACE_S)
        if self._task is not None:
            with contextlib.suppress(TimeoutError, Exception):
                await asyncio.wait_for(self._task, 5.0)
            self._task = None


class ConsoleServer(Server):
    """textual-serve's server running :class:`ConsoleSession`s, with hooks around its life."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        startup: Callable[[], Awaitable[None]] | None = None,
        shutdown: Callable[[], Awaitable[None]] | None = None,
        **kwargs: Any,
    ) -> None:
        """Args:
        argv: what each browser session runs.
        startup: awaited before the first browser can connect (start the collection).
        shutdown: awaited after every session ended (stop the collection).
        **kwargs: textual-serve's Server arguments (host, port, title, public_url).
        """
        super().__init__(command_line(argv), **kwargs)
        self.argv = list(argv)
        self._startup = startup
        self._shutdown = shutdown
        self.sessions: set[ConsoleSession] = set()
        self._sockets: set[web.WebSocketResponse] = set()

    def initialize_logging(self) -> None:
        super().initialize_logging()
        # The collection's SSH connection lives in this process now: its per-connection INFO
        # lines would fill the terminal between the browsers' requests.
        logging.getLogger("asyncssh").setLevel(logging.WARNING)

    async def on_startup(self, app: web.Application) -> None:
        if self._startup is not None:
            await self._startup()
        await super().on_startup(app)

    async def on_shutdown(self, app: web.Application) -> None:
        # SIGTERM or SIGINT to serve: every console ends, and every browser is told.
        await asyncio.gather(*(session.stop() for session in list(self.sessions)))
        for websocket in list(self._sockets):
            with contextlib.suppress(Exception):
                await websocket.close(code=WSCloseCode.GOING_AWAY, message=b"serve stopped")
        if self._shutdown is not None:
            await self._shutdown()

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        # textual-serve's handler, with our session and its bookkeeping.
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        session: ConsoleSession | None = None
        try:
            await websocket.prepare(request)
            self._sockets.add(websocket)
            session = ConsoleSession(
                self.argv,
                write_bytes=websocket.send_bytes,
                write_str=websocket.send_str,
                close=websocket.close,
                download_manager=self.download_manager,
                debug=self.debug,
            )
            self.sessions.add(session)
            await session.start(width, height)
            await self._process_messages(websocket, session)
        except asyncio.CancelledError:
            await websocket.close()
        except Exception as error:  # noqa: BLE001 - one browser's failure must not stop serve
            log.exception(error)
        finally:
            self._sockets.discard(websocket)
            if session is not None:
                await session.stop()
                self.sessions.discard(session)
        return websocket

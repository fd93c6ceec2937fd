"""LocalHost: this machine, reached with subprocesses and the local docker socket.

Commands are exec'd from their argv directly (no shell). Every process is started in its own
session so that a timeout or an abandoned stream can end the whole process group, not only
the direct child.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from incident_console.transport.base import (
    CommandFailed,
    CommandResult,
    CommandTimeout,
    ConnectionState,
    DockerUnavailable,
    Host,
    LinkState,
    Process,
)

if TYPE_CHECKING:
    import docker

#: How much of a streamed command's stderr we keep for CommandFailed's message.
_STDERR_TAIL = 4096


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the process group `proc` leads (it was started with start_new_session).

    Also after the leader exited: children it left may still run in the group.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def _end(proc: asyncio.subprocess.Process) -> None:
    """End a process group politely (TERM), then firmly (KILL), and reap the leader."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(proc.wait()), 2.0)
    _kill_group(proc)
    with contextlib.suppress(ProcessLookupError):
        await proc.wait()


class LocalProcess(Process):
    """A long-lived local process we write to and read lines from."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc

    async def write(self, data: str) -> None:
        """Write text to the process's stdin."""
        assert self._proc.stdin is not None
        self._proc.stdin.write(data.encode())
        await self._proc.stdin.drain()

    async def readline(self) -> str:
        """The next stdout line without its newline; '' at end of output."""
        assert self._proc.stdout is not None
        raw = await self._proc.stdout.readline()
        return raw.decode(errors="replace").rstrip("\n")

    async def close(self) -> None:
        """End the process group and reap it."""
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        await _end(self._proc)

    @property
    def exit_status(self) -> int | None:
        """The exit status once the process ended (-N for signal N), else None."""
        return self._proc.returncode


class LocalHost(Host):
    """This machine. Connect never fails; docker() honours DOCKER_HOST."""

    def __init__(self, name: str = "local") -> None:
        super().__init__(name)
        self._docker: docker.DockerClient | None = None
        self._docker_lock = asyncio.Lock()
        self._children: set[asyncio.subprocess.Process] = set()

    @property
    def is_local(self) -> bool:
        return True

    async def connect(self) -> None:
        """Nothing to open: the state becomes CONNECTED."""
        self._set_state(ConnectionState(LinkState.CONNECTED))

    async def close(self) -> None:
        """End every process we started and close the docker client."""
        for proc in list(self._children):
            await _end(proc)
        self._children.clear()
        if self._docker is not None:
            client, self._docker = self._docker, None
            await asyncio.to_thread(client.close)
        self._set_state(ConnectionState(LinkState.CLOSED))

    async def _spawn(self, argv: Sequence[str], *, stdin: int) -> asyncio.subprocess.Process:
        if not argv:
            raise ValueError("empty argv")
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=stdin,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        self._children.add(proc)
        return proc

    async def run(
        self,
        argv: Sequence[str],
        timeout: float = 30.0,  # noqa: ASYNC109 - the contract: a per-command deadline
        input: str | None = None,
    ) -> CommandResult:
        """Run `argv` to completion; CommandTimeout (process group killed) after `timeout` s."""
        started = time.time()
        t0 = time.monotonic()
        proc = await self._spawn(
            argv,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
        )
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(input.encode() if input is not None else None), timeout
            )
        except TimeoutError:
            await _end(proc)
            raise CommandTimeout(
                f"{argv[0]} did not finish within {timeout:g} s on {self.name} (ended)"
            ) from None
        except BaseException:
            await _end(proc)
            raise
        finally:
            self._children.discard(proc)
        assert proc.returncode is not None
        return CommandResult(
            argv=tuple(argv),
            exit_status=proc.returncode,
            stdout=out.decode(errors="replace"),
            stderr=err.decode(errors="replace"),
            started=started,
            duration_s=time.monotonic() - t0,
        )

    async def stream(self, argv: Sequence[str]) -> AsyncIterator[str]:
        """Yield stdout lines; leaving the iteration ends the process group."""
        proc = await self._spawn(argv, stdin=asyncio.subprocess.DEVNULL)
        assert proc.stdout is not None and proc.stderr is not None
        err_tail = bytearray()

        async def drain_stderr(reader: asyncio.StreamReader) -> None:
            # Read stderr all along so a chatty command never blocks on a full pipe.
            while chunk := await reader.read(4096):
                err_tail.extend(chunk)
                del err_tail[:-_STDERR_TAIL]

        drain = asyncio.create_task(drain_stderr(proc.stderr))
        try:
            while raw := await proc.stdout.readline():
                yield raw.decode(errors="replace").rstrip("\n")
            status = await proc.wait()
            await drain
            if status != 0:
                raise CommandFailed(argv, status, err_tail.decode(errors="replace"))
        finally:
            drain.cancel()
            await _end(proc)
            self._children.discard(proc)

    async def start(self, argv: Sequence[str]) -> Process:
        """Start a long-lived process with stdin and stdout pipes (stderr discarded)."""
        if not argv:
            raise ValueError("empty argv")
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        self._children.add(proc)
        return LocalProcess(proc)

    async def read_text(self, path: str) -> str:
        """Read a text file (FileNotFoundError / PermissionError as the OS raises them)."""
        return await asyncio.to_thread(_read_text, path)

    async def write_text(self, path: str, text: str) -> None:
        """Write a text file atomically, keeping the mode of the file it replaces."""
        await asyncio.to_thread(write_text_atomically, path, text)

    async def docker(self) -> docker.DockerClient:
        """The local engine's client (DOCKER_HOST honoured), pinged once and cached."""
        async with self._docker_lock:
            if self._docker is None:
                self._docker = await asyncio.to_thread(_local_docker_client)
            return self._docker


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def write_text_atomically(path: str, text: str) -> None:
    """Write `text` to `path` via a temp file in the same folder and os.replace.

    The new file keeps the mode of the file it replaces; a new file gets 0666 less the umask,
    as open() would give it.
    """
    folder = os.path.dirname(os.path.abspath(path))
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _local_docker_client() -> docker.DockerClient:
    """Build and ping a client in a worker thread; map failures to DockerUnavailable."""
    import docker as docker_sdk

    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker_sdk.from_env()
        client.ping()
    except docker_sdk.errors.DockerException as exc:
        raise DockerUnavailable(docker_failure_reason(exc, where)) from None
    return client


def docker_failure_reason(exc: BaseException, where: str) -> str:
    """One line saying why the engine at `where` could not be used."""
    text = str(exc)
    socket_path = where.removeprefix("unix://")
    if "Permission denied" in text or "PermissionError" in text:
        return f"permission denied on {socket_path} (add the user to the docker group)"
    if "No such file" in text or "FileNotFoundError" in text or "Connection refused" in text:
        return f"no docker engine at {where}"
    first = text.splitlines()[0] if text else type(exc).__name__
    return f"docker engine at {where} unusable: {first}"

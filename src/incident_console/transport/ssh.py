"""SshHost: one asyncssh connection per host carries commands, streams, files and docker.

The link is supervised: keepalives notice a dead link within ~15 s, then the host goes STALE
and reconnects with exponential backoff (1 s .. 30 s, jittered) until close(). Streams
restart their command on the new connection; the docker socket forward is re-established on
the same local path so an existing docker client keeps working.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from incident_console.transport.base import (
    AuthError,
    CommandFailed,
    CommandResult,
    CommandTimeout,
    ConnectionState,
    DockerUnavailable,
    Host,
    HostKeyError,
    LinkState,
    Process,
    TransportError,
    command_line,
)
from incident_console.transport.lazy import lazy_import
from incident_console.transport.ssh_docker import DockerForward, build_client, remote_socket_problem
from incident_console.transport.ssh_errors import describe_connect_error
from incident_console.transport.ssh_files import HostFiles
from incident_console.transport.ssh_keys import HostKeyPolicy
from incident_console.transport.ssh_process import RemoteCommand, SshProcess

if TYPE_CHECKING:
    import asyncssh
    import docker

    from incident_console.transport.ssh_client import _Client
else:
    asyncssh = lazy_import("asyncssh")

BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 30.0
#: A dead link is noticed after interval * (count_max + 1) s at most: 15 s.
KEEPALIVE_INTERVAL_S = 5.0
KEEPALIVE_COUNT_MAX = 2
_STDERR_TAIL = 4096
#: asyncssh's own cipher list with AES-GCM moved first (both are in OpenSSH's defaults).
#: A followed log arrives one SSH packet per line, and asyncssh decrypts an AES-GCM packet in
#: about 7 us against 38 us for chacha20-poly1305 (measured here: at 1,000 lines/s that is
#: 3 % of a core). A user whose ssh config names Ciphers (or includes files) keeps that.
PREFERRED_CIPHERS = "^aes128-gcm@openssh.com,aes256-gcm@openssh.com"
_CIPHERS_SET = re.compile(r"^\s*(?:ciphers|include)\b", re.IGNORECASE | re.MULTILINE)


def _link_errors(*more: type[BaseException]) -> tuple[type[BaseException], ...]:
    """What a lost or refused link raises, and `more` (read when one is raised: asyncssh
    is loaded at the first connection)."""
    return (asyncssh.Error, OSError, EOFError, *more)


def config_names_ciphers(config: Sequence[str] | None) -> bool:
    """Whether the ssh config files asyncssh reads (`config`, else ~/.ssh/config) may choose
    the ciphers: a ``Ciphers`` line, or an ``Include`` we do not follow."""
    paths = [Path(p) for p in config] if config is not None else [Path("~/.ssh/config")]
    for path in paths:
        try:
            text = path.expanduser().read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if _CIPHERS_SET.search(text):
            return True
    return False


class SshHost(Host):
    """A server reached over SSH, with verified host keys and automatic reconnects.

    Args:
        name: what the user called it (shown in the header and in errors).
        host: host name, IP or ~/.ssh/config alias.
        port: TCP port (None: from ~/.ssh/config, else 22).
        username: login (None: from ~/.ssh/config, else the local user).
        identity: private key files (-i); ~/.ssh/config IdentityFile and ssh-agent are used too.
        known_hosts: known_hosts file (default ~/.ssh/known_hosts).
        accept_new_host_key: trust an unknown host's key on first use and record it.
        config: ssh_config files (None: ~/.ssh/config when present).
        connect_timeout: seconds allowed for TCP connect plus SSH handshake and login.
    """

    def __init__(
        self,
        name: str,
        host: str,
        *,
        port: int | None = None,
        username: str | None = None,
        identity: Sequence[str] = (),
        known_hosts: str | None = None,
        accept_new_host_key: bool = False,
        config: Sequence[str] | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        super().__init__(name)
        self.host = host
        self.port = port
        self.username = username
        self.identity = tuple(identity)
        self.config = None if config is None else tuple(config)
        self.connect_timeout = connect_timeout
        self.policy = HostKeyPolicy(known_hosts, accept_new=accept_new_host_key)
        self._conn: asyncssh.SSHClientConnection | None = None
        self._client: _Client | None = None
        self._generation = 0
        self._connected = asyncio.Event()
        self._closing = False
        self._failure: TransportError | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._procs: set[RemoteCommand] = set()
        self._files = HostFiles(self, _link_errors)
        self._forward: DockerForward | None = None
        self._docker: docker.DockerClient | None = None
        self._docker_lock = asyncio.Lock()

    @property
    def where(self) -> str:
        """'user@host:port' as far as we know it, for messages."""
        user = f"{self.username}@" if self.username else ""
        return f"{user}{self.host}:{self.port or 22}" if self.port else f"{user}{self.host}"

    # -- the link --------------------------------------------------------------------------

    async def _open(self) -> tuple[asyncssh.SSHClientConnection, _Client]:
        from incident_console.transport.ssh_client import _Client

        client = _Client(self.policy)
        options: dict[str, Any] = {
            "known_hosts": self.policy.known_hosts,
            "client_factory": lambda: client,
            "keepalive_interval": KEEPALIVE_INTERVAL_S,
            "keepalive_count_max": KEEPALIVE_COUNT_MAX,
            "connect_timeout": self.connect_timeout,
            "login_timeout": self.connect_timeout,
        }
        if self.port is not None:
            options["port"] = self.port
        if self.username is not None:
            options["username"] = self.username
        if self.identity:
            options["client_keys"] = list(self.identity)
        if self.config is not None:
            options["config"] = list(self.config)
        if not config_names_ciphers(self.config):
            options["encryption_algs"] = PREFERRED_CIPHERS
        try:
            # asyncssh's own timeouts cover each phase; this bounds the whole attempt.
            conn = await asyncio.wait_for(
                asyncssh.connect(self.host, **options), self.connect_timeout + 5
            )
        except asyncssh.HostKeyNotVerifiable as exc:
            raise (
                self.policy.error() or HostKeyError(describe_connect_error(exc, self.where))
            ) from None
        except asyncssh.PermissionDenied as exc:
            raise AuthError(describe_connect_error(exc, self.where)) from None
        except _link_errors(TimeoutError) as exc:
            raise TransportError(describe_connect_error(exc, self.where)) from None
        self.policy.record_pending()
        return conn, client

    async def _install(self, conn: asyncssh.SSHClientConnection, client: _Client) -> None:
        self._conn, self._client = conn, client
        self._generation += 1
        self._files.new_connection()
        if self._forward is not None:
            # If this fails, docker calls fail with their own error; the link itself is fine.
            with contextlib.suppress(*_link_errors()):
                await self._forward.attach(conn)
        self._connected.set()
        self._set_state(ConnectionState(LinkState.CONNECTED))

    async def connect(self) -> None:
        """Open the link; HostKeyError / AuthError / TransportError with a one-line reason."""
        self._closing = False
        self._failure = None
        self._set_state(ConnectionState(LinkState.CONNECTING))
        try:
            conn, client = await self._open()
        except (HostKeyError, AuthError) as exc:
            self._fail(exc)
            raise
        except TransportError as exc:
            self._set_state(ConnectionState(LinkState.FAILED, reason=str(exc)))
            raise
        await self._install(conn, client)
        self._supervisor = asyncio.create_task(self._supervise(), name=f"ssh-link-{self.name}")

    def _fail(self, exc: TransportError) -> None:
        self._failure = exc
        if self._client is not None:
            self._client.retired.set()
        self._connected.set()  # wake waiters so they see the failure
        self._set_state(ConnectionState(LinkState.FAILED, reason=str(exc)))

    async def _supervise(self) -> None:
        while not self._closing:
            conn, client = self._conn, self._client
            assert conn is not None and client is not None
            await conn.wait_closed()
            if self._closing:
                return
            lost_at = time.time()
            reason = client.lost_reason or "connection lost"
            self._connected.clear()
            self._conn = None
            self._files.lost()
            client.retired.set()
            self._set_state(ConnectionState(LinkState.STALE, since=lost_at, reason=reason))
            delay = BACKOFF_MIN_S
            while not self._closing:
                wait = min(BACKOFF_MAX_S, delay * random.uniform(0.8, 1.2))
                self._set_state(
                    ConnectionState(
                        LinkState.RECONNECTING, retry_at=time.time() + wait, reason=reason
                    )
                )
                await asyncio.sleep(wait)
                try:
                    new_conn, new_client = await self._open()
                except (HostKeyError, AuthError) as exc:
                    self._fail(exc)  # retrying cannot fix a changed key or a refused login
                    return
                except TransportError as exc:
                    reason = str(exc)
                    delay = min(BACKOFF_MAX_S, delay * 2)
                    continue
                if self._closing:
                    new_conn.close()
                    return
                await self._install(new_conn, new_client)
                break

    async def _connection(self, wait_s: float | None = None) -> asyncssh.SSHClientConnection:
        """The live connection, waiting through a reconnect (up to `wait_s` s)."""
        return (await self._link(wait_s))[0]

    async def _link(
        self, wait_s: float | None = None
    ) -> tuple[asyncssh.SSHClientConnection, _Client]:
        """The live connection and its client, waiting through a reconnect (up to `wait_s`)."""
        while True:
            if self._failure is not None:
                raise self._failure
            if self._closing:
                raise TransportError(f"{self.name}: connection closed")
            if self._conn is not None and self._client is not None and self._connected.is_set():
                return self._conn, self._client
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                # that lands as the event is set, and this loop would carry on.
                async with asyncio.timeout(wait_s):
                    await self._connected.wait()
            except TimeoutError:
                raise TransportError(
                    f"{self.name}: not connected ({self.state.describe()})"
                ) from None

    async def close(self) -> None:
        """End every remote process we started, the docker forward and the connection."""
        self._closing = True
        self._connected.set()
        if self._client is not None:
            self._client.retired.set()
        await asyncio.gather(*(cmd.end() for cmd in list(self._procs)))
        self._procs.clear()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        if self._docker is not None:
            client, self._docker = self._docker, None
            await asyncio.to_thread(client.close)
        if self._forward is not None:
            self._forward.close()
            self._forward = None
        if self._conn is not None:
            self._conn.close()
            with contextlib.suppress(*_link_errors()):
                await self._conn.wait_closed()
            self._conn = None
        self._set_state(ConnectionState(LinkState.CLOSED))

    # -- commands --------------------------------------------------------------------------

    async def run(
        self,
        argv: Sequence[str],
        timeout: float = 30.0,  # noqa: ASYNC109 - the contract: a per-command deadline
        input: str | None = None,
    ) -> CommandResult:
        """Run `argv` on the host; CommandTimeout (remote process ended) after `timeout` s."""
        started = time.time()
        t0 = time.monotonic()
        conn = await self._connection(timeout)
        # Our own process rather than conn.run: on timeout the remote process group must be
        # ended, which conn.run's timeout does not do (it only closes the channel).
        try:
            cmd = await RemoteCommand.spawn(
                conn, argv, stdin=asyncssh.PIPE if input is not None else asyncssh.DEVNULL
            )
        except _link_errors() as exc:
            raise TransportError(f"{self.name}: cannot start {argv[0]}: {exc}") from None
        proc = cmd.proc
        self._procs.add(cmd)
        try:
            remaining = max(0.1, timeout - (time.monotonic() - t0))
            out, err = await asyncio.wait_for(proc.communicate(input), remaining)
            await asyncio.wait_for(proc.wait_closed(), 5)
        except TimeoutError:
            await cmd.end()
            raise CommandTimeout(
                f"{argv[0]} did not finish within {timeout:g} s on {self.name} (ended)"
            ) from None
        except _link_errors() as exc:
            await cmd.end()
            raise TransportError(f"{self.name}: link lost while running {argv[0]}: {exc}") from None
        except BaseException:
            await cmd.end()
            raise
        finally:
            self._procs.discard(cmd)
        if proc.returncode is None:
            raise TransportError(f"{self.name}: link lost while running {argv[0]}")
        return CommandResult(
            argv=tuple(argv),
            exit_status=proc.returncode,
            stdout=str(out or ""),
            stderr=str(err or ""),
            started=started,
            duration_s=time.monotonic() - t0,
        )

    async def stream(self, argv: Sequence[str]) -> AsyncIterator[str]:
        """Yield stdout lines; restart the command after a reconnect; stopping ends it remotely.

        After a reconnect the command starts again, so lines may repeat (e.g. a log tail):
        the consumer de-duplicates.
        """
        command_line(argv)  # an empty argv fails here, before anything starts
        while True:
            conn, client = await self._link()
            try:
                cmd = await RemoteCommand.spawn(conn, argv, stdin=asyncssh.DEVNULL)
            except _link_errors():
                await client.retired.wait()  # the link died: start again on the next one
                continue
            proc = cmd.proc
            self._procs.add(cmd)
            cmd.drain_stderr()
            try:
                while True:
                    try:
                        line = await proc.stdout.readline()
                    except _link_errors():
                        line = ""
                    if not line:
                        break
                    yield str(line).rstrip("\n")
                with contextlib.suppress(*_link_errors(), TimeoutError):
                    async with asyncio.timeout(5):  # not wait_for: see _link
                        await proc.wait_closed()
                status = proc.returncode
                if status is None:
                    # No exit status: the link died under the command. Run it again once the
                    # host is back.
                    await client.retired.wait()
                    continue
                if status != 0:
                    raise CommandFailed(argv, status, await cmd.stderr_tail())
                return
            finally:
                await cmd.end()
                self._procs.discard(cmd)

    async def start(self, argv: Sequence[str]) -> Process:
        """Start a long-lived remote process (stdin/stdout; stderr discarded)."""
        conn = await self._connection(self.connect_timeout)
        try:
            cmd = await RemoteCommand.spawn(conn, argv)
        except _link_errors() as exc:
            raise TransportError(f"{self.name}: cannot start {argv[0]}: {exc}") from None
        cmd.drain_stderr()
        self._procs.add(cmd)
        return SshProcess(cmd, on_close=self._procs.discard)

    # -- files -----------------------------------------------------------------------------

    @property
    def files_over_exec(self) -> bool:
        """Whether this connection reads and writes files over exec (the server has no SFTP)."""
        return self._files.fallback.active

    def on_files_over_exec(self, listener: Callable[[str], None]) -> None:
        """Call `listener` once with the line to show, when files first go over exec."""
        self._files.fallback.listen(listener)

    async def read_text(self, path: str) -> str:
        """Read a text file over SFTP, else `cat` (FileNotFoundError / PermissionError)."""
        return await self._files.read_text(await self._connection(self.connect_timeout), path)

    async def write_text(self, path: str, text: str) -> None:
        """Write a text file: temp file in the same folder, mode kept, rename (SFTP or exec)."""
        conn = await self._connection(self.connect_timeout)
        await self._files.write_text(conn, path, text)

    # -- docker ----------------------------------------------------------------------------

    async def docker(self) -> docker.DockerClient:
        """A docker client on the server's engine, through the socket forwarded over SSH."""
        async with self._docker_lock:
            if self._docker is not None:
                return self._docker
            conn = await self._connection(self.connect_timeout)
            if self._forward is None:
                self._forward = DockerForward()
                try:
                    await self._forward.attach(conn)
                except _link_errors() as exc:
                    self._forward.close()
                    self._forward = None
                    raise TransportError(
                        f"{self.name}: cannot forward the docker socket: {exc}"
                    ) from None
            try:
                self._docker = await asyncio.to_thread(build_client, self._forward.local, self.name)
            except TransportError:
                problem = await remote_socket_problem(conn, self._forward.remote)
                if problem is None:
                    raise
                raise DockerUnavailable(f"{self.name}: {problem}") from None
            return self._docker

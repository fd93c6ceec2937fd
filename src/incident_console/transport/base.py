"""The transport contract every host implementation keeps.

Every remote command is an argv list. It becomes shell text at exactly one place:
:func:`command_line` (``shlex.join``), used by the SSH transport; the local transport
execs the argv directly and never builds shell text at all.
"""

from __future__ import annotations

import abc
import enum
import shlex
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import docker


class TransportError(Exception):
    """A host could not be reached or refused us. The message is one line for the user."""


class HostKeyError(TransportError):
    """The host key is unknown (and trust-on-first-use was not asked for) or has changed."""


class AuthError(TransportError):
    """The server refused every credential we offered."""


class DockerUnavailable(TransportError):
    """The host has no docker engine, or its socket is not ours to use."""


class CommandTimeout(TransportError):
    """A command did not finish within its timeout (it was ended)."""


class CommandFailed(TransportError):
    """A streamed command ended with a non-zero exit status (e.g. `dmesg` not permitted).

    Attributes:
        argv: the command.
        exit_status: its exit status (-N when ended by signal N).
        stderr: the tail of its standard error, for the one-line message.
    """

    def __init__(self, argv: Sequence[str], exit_status: int, stderr: str = "") -> None:
        self.argv = tuple(argv)
        self.exit_status = exit_status
        self.stderr = stderr
        last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        detail = f": {last}" if last else ""
        super().__init__(
            f"{self.argv[0] if self.argv else '?'} exited with status {exit_status}{detail}"
        )


class LinkState(enum.StrEnum):
    """Where a host's connection stands."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    STALE = "stale"
    RECONNECTING = "reconnecting"
    FAILED = "failed"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ConnectionState:
    """An observable snapshot of a host's link, for the header and the journal.

    Attributes:
        state: the link state.
        since: wall-clock time (epoch seconds) the state was entered.
        retry_at: for RECONNECTING, when the next attempt starts (epoch seconds).
        reason: for STALE, RECONNECTING and FAILED, why, in one line.
    """

    state: LinkState
    since: float = field(default_factory=time.time)
    retry_at: float | None = None
    reason: str = ""

    def describe(self, now: float | None = None) -> str:
        """Render the state as the header shows it: 'stale since 03:12:09', 'reconnecting in 4 s'."""
        now = time.time() if now is None else now
        if self.state is LinkState.STALE:
            return f"stale since {time.strftime('%H:%M:%S', time.localtime(self.since))}"
        if self.state is LinkState.RECONNECTING and self.retry_at is not None:
            return f"reconnecting in {max(0, round(self.retry_at - now))} s"
        if self.state is LinkState.FAILED:
            return f"failed: {self.reason}" if self.reason else "failed"
        return self.state.value


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a finished command returned."""

    argv: tuple[str, ...]
    exit_status: int
    stdout: str
    stderr: str
    started: float
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


def command_line(argv: Sequence[str]) -> str:
    """The one place an argv list becomes shell text (for the SSH exec request)."""
    if not argv:
        raise ValueError("empty argv")
    return shlex.join(argv)


class Process(abc.ABC):
    """A long-lived command we talk to over stdin/stdout (the stats sampler)."""

    @abc.abstractmethod
    async def write(self, data: str) -> None:
        """Write text to the process's stdin."""

    @abc.abstractmethod
    async def readline(self) -> str:
        """The next stdout line without its newline; '' at end of output."""

    @abc.abstractmethod
    async def close(self) -> None:
        """End the process (and everything it started) and wait for it."""

    @property
    @abc.abstractmethod
    def exit_status(self) -> int | None:
        """The exit status once the process ended, else None."""


StateListener = Callable[[ConnectionState], None]


class Host(abc.ABC):
    """One server we watch: `local` or an SSH target."""

    #: What the user called it: 'local', 'prod', 'deploy@203.0.113.10'.
    name: str

    def __init__(self, name: str) -> None:
        self.name = name
        self._state = ConnectionState(LinkState.CONNECTING)
        self._listeners: list[StateListener] = []

    @property
    def state(self) -> ConnectionState:
        return self._state

    def on_state(self, listener: StateListener) -> None:
        """Call `listener` with every new ConnectionState."""
        self._listeners.append(listener)

    def _set_state(self, state: ConnectionState) -> None:
        self._state = state
        for listener in list(self._listeners):
            listener(state)

    @property
    def is_local(self) -> bool:
        return False

    @abc.abstractmethod
    async def connect(self) -> None:
        """Open the link. Raises TransportError (HostKeyError, AuthError) with a one-line reason."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the link and end every process we started on the host."""

    @abc.abstractmethod
    async def run(
        self,
        argv: Sequence[str],
        timeout: float = 30.0,  # noqa: ASYNC109 - the contract: a per-command deadline
        input: str | None = None,
    ) -> CommandResult:
        """Run a command to completion. Raises CommandTimeout after `timeout` seconds."""

    @abc.abstractmethod
    def stream(self, argv: Sequence[str]) -> AsyncIterator[str]:
        """Yield the command's stdout lines. Stopping the iteration ends the remote process.

        The iteration ends when the command exits 0; a non-zero exit raises CommandFailed.
        """

    @abc.abstractmethod
    async def start(self, argv: Sequence[str]) -> Process:
        """Start a long-lived process we write to and read from."""

    @abc.abstractmethod
    async def read_text(self, path: str) -> str:
        """Read a text file on the host. Raises FileNotFoundError / PermissionError."""

    @abc.abstractmethod
    async def write_text(self, path: str, text: str) -> None:
        """Write a text file on the host (atomically: a temp file renamed over the target)."""

    @abc.abstractmethod
    async def docker(self) -> docker.DockerClient:
        """A docker SDK client for this host's engine, built in a worker thread.

        The client is blocking: call it only from worker threads (asyncio.to_thread).
        Raises DockerUnavailable with the reason.
        """

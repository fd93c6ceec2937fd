"""Remote processes over SSH channels, and ending them for sure.

Closing a channel without a pty does not kill the remote command, and OpenSSH refuses the
"signal" channel request for root logins ("session signalling requires privilege
separation"). So every command runs under a fixed wrapper that reports its process group
(`WRAPPER`, the command passed as arguments, never spliced into the text); to end it we send
`kill -TERM -- -PGID` (then KILL) over a second channel of the same connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from incident_console.transport.base import Process, command_line
from incident_console.transport.lazy import lazy_import

if TYPE_CHECKING:
    import asyncssh
else:
    asyncssh = lazy_import("asyncssh")

#: How long a remote command gets to exit after TERM before KILL.
TERM_GRACE_S = 2.0
STDERR_TAIL = 4096
_MARK = "incident-console-pgid"
#: Prints the process group on stderr's first line, then becomes the command ("$@").
WRAPPER = f'read -r _ _ _ _ g _ < /proc/$$/stat; echo "{_MARK} $g" >&2; exec "$@"'


class RemoteCommand:
    """A command running on the server: its asyncssh process and its process group."""

    def __init__(
        self, conn: asyncssh.SSHClientConnection, proc: asyncssh.SSHClientProcess[Any], pgid: int
    ) -> None:
        self.conn = conn
        self.proc = proc
        self.pgid = pgid
        self._stderr: list[str] = []
        self._drain: asyncio.Task[None] | None = None

    def drain_stderr(self) -> None:
        """Keep reading stderr (a tail is kept) so a chatty command never stalls the channel."""
        self._drain = asyncio.create_task(self._read_stderr())

    async def _read_stderr(self) -> None:
        with contextlib.suppress(OSError, asyncssh.Error):
            while chunk := await self.proc.stderr.read(4096):
                self._stderr.append(str(chunk))
                while len(self._stderr) > 1 and sum(map(len, self._stderr)) > STDERR_TAIL:
                    self._stderr.pop(0)

    async def stderr_tail(self) -> str:
        """What stderr said last (waits briefly for the rest after the command ended)."""
        if self._drain is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._drain), 1.0)
        return "".join(self._stderr)[-STDERR_TAIL:]

    @classmethod
    async def spawn(
        cls,
        conn: asyncssh.SSHClientConnection,
        argv: Sequence[str],
        *,
        stdin: Any = None,
    ) -> RemoteCommand:
        """Start `argv` under the wrapper and read its process group id (stdin: a pipe)."""
        proc = await conn.create_process(
            command_line(["sh", "-c", WRAPPER, "incident-console", *argv]),
            stdin=asyncssh.PIPE if stdin is None else stdin,
            encoding="utf-8",
            errors="replace",
        )
        pgid = 0
        try:
            first = await asyncio.wait_for(proc.stderr.readline(), 30)
        except TimeoutError:
            first = ""
        except BaseException:
            proc.close()
            raise
        parts = str(first).split()
        if len(parts) == 2 and parts[0] == _MARK and parts[1].isdigit():
            pgid = int(parts[1])
        return cls(conn, proc, pgid)

    async def _kill(self, sig: str) -> None:
        with contextlib.suppress(OSError, asyncssh.Error):
            # Works where sshd allows it (non-root, privilege separated); harmless otherwise.
            self.proc.send_signal(sig)
        if self.pgid > 1:
            with contextlib.suppress(OSError, asyncssh.Error, TimeoutError):
                await asyncio.wait_for(
                    self.conn.run(command_line(["kill", f"-{sig}", "--", f"-{self.pgid}"])), 10
                )

    async def end(self) -> None:
        """End the command's process group (TERM, then KILL) and close the channel."""
        for sig, grace in (("TERM", TERM_GRACE_S), ("KILL", 1.0)):
            if self.proc.returncode is not None or self.conn.is_closed():
                break
            await self._kill(sig)
            with contextlib.suppress(TimeoutError, OSError, asyncssh.Error):
                await asyncio.wait_for(self.proc.wait_closed(), grace)
        self.proc.close()
        with contextlib.suppress(TimeoutError, OSError, asyncssh.Error):
            await asyncio.wait_for(self.proc.wait_closed(), 1.0)
        if self._drain is not None:
            self._drain.cancel()


class SshProcess(Process):
    """A long-lived remote command we write to and read lines from.

    It lives on one connection: if the link drops, readline returns '' and the caller starts
    a new one (the sampler source does).
    """

    def __init__(self, command: RemoteCommand, on_close: Any = None) -> None:
        self._command = command
        self._proc = command.proc
        self._on_close = on_close

    async def write(self, data: str) -> None:
        """Write text to the remote stdin."""
        try:
            self._proc.stdin.write(data)
            await self._proc.stdin.drain()
        except (asyncssh.Error, OSError) as exc:
            raise BrokenPipeError(f"remote process stdin closed: {exc}") from None

    async def readline(self) -> str:
        """The next stdout line without its newline; '' at end of output or on link loss."""
        try:
            line = await self._proc.stdout.readline()
        except (asyncssh.Error, OSError):
            return ""
        return str(line).rstrip("\n")

    async def close(self) -> None:
        """End the remote process (TERM, then KILL) and close the channel."""
        with contextlib.suppress(OSError, asyncssh.Error):
            self._proc.stdin.write_eof()
        await self._command.end()
        if self._on_close is not None:
            self._on_close(self._command)

    @property
    def exit_status(self) -> int | None:
        """Exit status (-N for signal N) once ended; after a link loss, -1."""
        code = self._proc.returncode
        if code is None and self._proc.is_closing():
            return -1
        return code

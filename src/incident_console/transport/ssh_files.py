"""Text files on an SSH host: SFTP on the host's one connection, or exec where it has none.

Hardened sshd configs drop the SFTP subsystem. There a file is read with `cat` and written by a
fixed script (the path and the temp name are its positional arguments, the text its stdin),
as atomically as over SFTP: a new temp file beside the target, the target's mode, a rename.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from incident_console.transport.base import CommandResult, Host, TransportError
from incident_console.transport.lazy import lazy_import

if TYPE_CHECKING:
    import asyncssh
else:
    asyncssh = lazy_import("asyncssh")


#: SFTP read size (OpenSSH's sftp-server answers at most 256 KiB a read).
READ_CHUNK = 64 * 1024
#: What the console says, once, where files go over exec.
FILES_OVER_EXEC = "over exec (the server has no SFTP subsystem)"
#: A file read or write over exec gets this long (a compose file, a /proc file).
EXEC_FILE_TIMEOUT_S = 60.0
#: LC_ALL=C: cat's error texts in English whatever the server's locale, to tell them apart.
READ_ARGV = ("env", "LC_ALL=C", "cat", "--")
#: Writes stdin to "$1" through the new file "$2" beside it. `set -C` creates "$2" with
#: O_EXCL (never someone's existing file); it gets "$1"'s mode where "$1" exists (else 0666
#: less the umask, as an SFTP create gets), is synced, then renamed over "$1". Exit 66: no
#: such folder, 77: folder not writable, 21: "$1" is a directory; a failure removes "$2".
#: Every way out reads stdin to its end first: the caller may still be writing the text, and
#: a channel closed under that write is a lost link, not the error the script found.
WRITE_SCRIPT = """\
export LC_ALL=C
fail() { cat > /dev/null; exit "$1"; }
case $2 in */*) dir=${2%/*} ;; *) dir=. ;; esac
dir=${dir:-/}
[ -d "$dir" ] || fail 66
[ -w "$dir" ] && [ -x "$dir" ] || fail 77
[ -d "$1" ] && fail 21
mode=
if [ -e "$1" ]; then mode=$(stat -L -c %a -- "$1") || fail 1; fi
set -C
true > "$2" || fail 1
set +C
if cat > "$2" && { [ -z "$mode" ] || chmod -- "$mode" "$2"; } && { sync -- "$2" 2>/dev/null || :; } \\
    && mv -f -- "$2" "$1"; then
  exit 0
fi
rm -f -- "$2"
fail 1
"""
_EXIT_ERRORS: dict[int, tuple[type[OSError], int, str]] = {
    66: (FileNotFoundError, 2, "no such file"),
    77: (PermissionError, 13, "permission denied"),
    21: (IsADirectoryError, 21, "is a directory"),
}
#: cat's strerror texts (LC_ALL=C). A missing folder in the path is ENOTDIR or ENOENT; SFTP
#: says "no such file" to both.
_CAT_ERRORS: tuple[tuple[str, type[OSError], int, str], ...] = (
    ("No such file or directory", FileNotFoundError, 2, "no such file"),
    ("Not a directory", FileNotFoundError, 2, "no such file"),
    ("Permission denied", PermissionError, 13, "permission denied"),
    ("Is a directory", IsADirectoryError, 21, "is a directory"),
)


class ExecFallback:
    """Whether a host's files go over exec, and saying so once for the host's life.

    Attributes:
        active: the current connection's server refused the SFTP subsystem.
    """

    def __init__(self) -> None:
        self.active = False
        self._said = False
        self._listeners: list[Callable[[str], None]] = []

    def listen(self, listener: Callable[[str], None]) -> None:
        """Call `listener` with FILES_OVER_EXEC when files first go over exec (now if they did)."""
        self._listeners.append(listener)
        if self._said:
            listener(FILES_OVER_EXEC)

    def refused(self) -> None:
        """The server refused SFTP on this connection: exec from now on, said the first time."""
        self.active = True
        if not self._said:
            self._said = True
            for listener in list(self._listeners):
                listener(FILES_OVER_EXEC)


class HostFiles:
    """One SSH host's files: SFTP on its current connection, asked for once per connection,
    else exec where the server refused the subsystem (said once for the host's life)."""

    def __init__(self, host: Host, link_errors: Callable[[], tuple[type[BaseException], ...]]):
        self._host = host
        self._link_errors = link_errors
        self._sftp: asyncssh.SFTPClient | None = None
        self.fallback = ExecFallback()
        self._lock = asyncio.Lock()

    def new_connection(self) -> None:
        """A new connection: its SFTP is asked for again."""
        self._sftp = None
        self.fallback.active = False

    def lost(self) -> None:
        """The connection is gone, and its SFTP session with it."""
        self._sftp = None

    async def _client(self, conn: asyncssh.SSHClientConnection) -> asyncssh.SFTPClient | None:
        async with self._lock:  # one SFTP session per connection, asked for once
            if self._sftp is None and not self.fallback.active:
                try:
                    self._sftp = await conn.start_sftp_client()
                except self._link_errors() as exc:
                    if not sftp_refused(exc):
                        raise TransportError(
                            f"{self._host.name}: SFTP unavailable: {exc}"
                        ) from None
                    self.fallback.refused()
        return self._sftp

    async def read_text(self, conn: asyncssh.SSHClientConnection, path: str) -> str:
        """Read a text file over SFTP, else `cat` (FileNotFoundError / PermissionError)."""
        sftp = await self._client(conn)
        if sftp is None:
            return await exec_read_text(self._host, path)
        return await sftp_read_text(sftp, path, self._host.name)

    async def write_text(self, conn: asyncssh.SSHClientConnection, path: str, text: str) -> None:
        """Write a text file: temp file in the same folder, mode kept, rename (SFTP or exec)."""
        sftp = await self._client(conn)
        if sftp is None:
            await exec_write_text(self._host, path, text)
        else:
            await sftp_write_text(sftp, path, text, self._host.name)


def sftp_refused(exc: BaseException) -> bool:
    """Whether opening SFTP failed because the server refused the subsystem (not a lost link).

    OpenSSH fails the channel's subsystem request where no `Subsystem sftp` is configured (or
    its program is missing); asyncssh raises that as this one ChannelOpenError code.
    """
    return (
        isinstance(exc, asyncssh.ChannelOpenError)
        and exc.code == asyncssh.OPEN_REQUEST_SESSION_FAILED
    )


async def sftp_read_text(sftp: asyncssh.SFTPClient, path: str, host: str) -> str:
    """Read a text file (FileNotFoundError / PermissionError like a local read)."""
    try:
        async with sftp.open(path, "rb") as f:
            # In chunks until EOF, not read() of the stat size: /proc and /sys files say they
            # are 0 bytes long, and a whole-file read of /proc/stat came back empty.
            parts: list[bytes] = []
            while chunk := cast(bytes, await f.read(READ_CHUNK)):
                parts.append(chunk)
    except asyncssh.SFTPError as exc:
        raise _os_error(exc, path, host) from None
    return b"".join(parts).decode("utf-8", errors="replace")


async def sftp_write_text(sftp: asyncssh.SFTPClient, path: str, text: str, host: str) -> None:
    """Write a text file atomically: temp file in the same folder, mode kept, posix rename."""
    tmp = _temp_beside(path)
    try:
        try:
            mode: int | None = (await sftp.stat(path)).permissions
        except asyncssh.SFTPNoSuchFile:
            mode = None
        attrs = asyncssh.SFTPAttrs(permissions=0o666 if mode is None else mode & 0o7777)
        async with sftp.open(tmp, "wb", attrs) as f:
            await f.write(text.encode("utf-8"))
            with contextlib.suppress(asyncssh.SFTPError):
                await f.fsync()
        if mode is not None:
            # The server's umask may have narrowed the create mode: set it exactly.
            await sftp.chmod(tmp, mode & 0o7777)
        await sftp.posix_rename(tmp, path)
    except asyncssh.SFTPError as exc:
        with contextlib.suppress(asyncssh.SFTPError):
            await sftp.remove(tmp)
        raise _os_error(exc, path, host) from None


async def exec_read_text(host: Host, path: str) -> str:
    """Read a text file with `cat` to EOF (/proc files too); errors as over SFTP."""
    result = await host.run([*READ_ARGV, path], timeout=EXEC_FILE_TIMEOUT_S)
    if result.ok:
        return result.stdout
    raise _exec_error(result, path, host.name)


async def exec_write_text(host: Host, path: str, text: str) -> None:
    """Write a text file atomically with the fixed WRITE_SCRIPT; errors as over SFTP."""
    argv = ["sh", "-c", WRITE_SCRIPT, "sh", path, _temp_beside(path)]
    result = await host.run(argv, timeout=EXEC_FILE_TIMEOUT_S, input=text)
    if not result.ok:
        raise _exec_error(result, path, host.name)


def _temp_beside(path: str) -> str:
    folder, base = posixpath.split(path)
    return posixpath.join(folder, f".{base}.{uuid.uuid4().hex[:8]}.tmp")


def _exec_error(result: CommandResult, path: str, host: str) -> OSError:
    known = _EXIT_ERRORS.get(result.exit_status)
    if known is not None:
        kind, number, text = known
        return kind(number, f"{host}: {text}", path)
    last = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
    if result.exit_status == 1:  # cat's own failure (env and sh say 126/127 for theirs)
        for needle, kind, number, text in _CAT_ERRORS:
            if last.endswith(needle):
                return kind(number, f"{host}: {text}", path)
    detail = last or f"{result.argv[0]} exited with status {result.exit_status}"
    return OSError(f"{host}: {path}: {detail}")


def _os_error(exc: asyncssh.SFTPError, path: str, host: str) -> OSError:
    if isinstance(exc, asyncssh.SFTPNoSuchFile | asyncssh.SFTPNoSuchPath):
        return FileNotFoundError(2, f"{host}: no such file", path)
    if isinstance(exc, asyncssh.SFTPPermissionDenied):
        return PermissionError(13, f"{host}: permission denied", path)
    return OSError(f"{host}: {path}: {exc.reason}")

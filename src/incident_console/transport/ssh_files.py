"""Text files on an SSH host through SFTP on the host's one connection."""

from __future__ import annotations

import contextlib
import posixpath
import uuid
from typing import TYPE_CHECKING, cast

from incident_console.transport.lazy import lazy_import

if TYPE_CHECKING:
    import asyncssh
else:
    asyncssh = lazy_import("asyncssh")


#: SFTP read size (OpenSSH's sftp-server answers at most 256 KiB a read).
READ_CHUNK = 64 * 1024


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
    folder, base = posixpath.split(path)
    tmp = posixpath.join(folder, f".{base}.{uuid.uuid4().hex[:8]}.tmp")
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


def _os_error(exc: asyncssh.SFTPError, path: str, host: str) -> OSError:
    if isinstance(exc, asyncssh.SFTPNoSuchFile | asyncssh.SFTPNoSuchPath):
        return FileNotFoundError(2, f"{host}: no such file", path)
    if isinstance(exc, asyncssh.SFTPPermissionDenied):
        return PermissionError(13, f"{host}: permission denied", path)
    return OSError(f"{host}: {path}: {exc.reason}")

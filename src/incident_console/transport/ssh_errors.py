"""One-line messages for the ways reaching an SSH host fails."""

from __future__ import annotations

import errno
import socket
from typing import TYPE_CHECKING

from incident_console.transport.base import TransportError
from incident_console.transport.lazy import lazy_import

if TYPE_CHECKING:
    import asyncssh
else:
    asyncssh = lazy_import("asyncssh")


def describe_connect_error(exc: BaseException, where: str) -> str:
    """One line saying why `where` ('host:port' or 'user@host:port') could not be reached."""
    if isinstance(exc, TransportError):
        return str(exc)
    if isinstance(exc, socket.gaierror):
        return f"{where}: host name does not resolve ({exc.strerror or exc})"
    if isinstance(exc, TimeoutError):
        return f"{where}: no answer (connect timed out): host unreachable or port filtered"
    if isinstance(exc, ConnectionRefusedError):
        return f"{where}: connection refused (is sshd running on that port?)"
    if isinstance(exc, OSError):
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return f"{where}: host unreachable ({exc.strerror})"
        if exc.errno == errno.ECONNRESET:
            return f"{where}: connection reset by the server"
        text = exc.strerror or str(exc) or type(exc).__name__
        if exc.filename and exc.strerror:
            # A local file the connection needed (an IdentityFile from ~/.ssh/config): name it.
            text = f"{exc.filename}: {exc.strerror}"
        # Multi-address connect failures join the per-address errors: keep the first.
        return f"{where}: {text.splitlines()[0]}"
    if isinstance(exc, asyncssh.PermissionDenied):
        return (
            f"{where}: the server refused every key we offered "
            "(check -i, ssh-agent and the user name)"
        )
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return f"{where}: host key not verifiable: {exc.reason}"
    if isinstance(exc, asyncssh.DisconnectError):
        return f"{where}: the server closed the connection: {exc.reason}"
    if isinstance(exc, asyncssh.Error):
        return f"{where}: {exc.reason}"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{where}: {text}"

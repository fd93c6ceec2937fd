"""Targets as the user types them: `local`, an ssh_config alias, `user@host`, `ssh://user@host:port`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from incident_console.transport.base import Host

# A host name, an IPv4 address, or a bracketed IPv6 address. Aliases from ~/.ssh/config are
# host-name shaped too.
_HOST = r"(?:[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\])"
_USER = r"[A-Za-z0-9_.][A-Za-z0-9_.\-]*"
_PLAIN = re.compile(rf"^(?:(?P<user>{_USER})@)?(?P<host>{_HOST})$")
_URL = re.compile(
    rf"^ssh://(?:(?P<user>{_USER})@)?(?P<host>{_HOST})(?::(?P<port>[0-9]{{1,5}}))?/?$"
)


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed target.

    Attributes:
        kind: 'local' or 'ssh'.
        host: host name, address or ssh_config alias ('' for local).
        user: login name if given.
        port: port if given (only the ssh:// form carries one).
        text: what the user typed.
    """

    kind: Literal["local", "ssh"]
    host: str = ""
    user: str | None = None
    port: int | None = None
    text: str = ""

    @property
    def alias(self) -> str:
        """The name the console shows for this target: what the user typed."""
        return self.text


def parse_target(text: str) -> Target:
    """Parse a target; ValueError with a one-line message for anything else.

    Accepted: ``local``, ``alias`` (from ~/.ssh/config), ``user@host``,
    ``ssh://[user@]host[:port]``.
    """
    raw = text
    if not text or text != text.strip() or any(c.isspace() for c in text):
        raise ValueError(
            f"invalid target {raw!r}: expected local, HOST, USER@HOST or ssh://USER@HOST:PORT"
        )
    if text == "local":
        return Target("local", text=text)
    m = _URL.match(text) if text.startswith("ssh://") else None
    if text.startswith("ssh://") and m is None:
        raise ValueError(f"invalid target {raw!r}: expected ssh://USER@HOST[:PORT]")
    if m is None and "://" in text:
        scheme = text.split("://", 1)[0]
        raise ValueError(f"invalid target {raw!r}: unsupported scheme {scheme!r} (only ssh://)")
    if m is None:
        m = _PLAIN.match(text)
    if m is None:
        hint = " (a port needs the ssh://USER@HOST:PORT form)" if ":" in text else ""
        raise ValueError(
            f"invalid target {raw!r}: expected local, HOST, USER@HOST or ssh://USER@HOST:PORT{hint}"
        )
    port_text = m.groupdict().get("port")
    port = int(port_text) if port_text else None
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"invalid target {raw!r}: port {port} is out of range 1-65535")
    host = m.group("host").strip("[]")
    return Target("ssh", host=host, user=m.group("user"), port=port, text=text)


def open_host(
    target: str,
    *,
    identity: Sequence[str] = (),
    known_hosts: str | None = None,
    accept_new_host_key: bool = False,
    connect_timeout: float = 10.0,
) -> Host:
    """A Host for `target`, not yet connected (call `await host.connect()`).

    Raises:
        ValueError: the target text is not a target (one-line message).
    """
    parsed = parse_target(target)
    if parsed.kind == "local":
        from incident_console.transport.local import LocalHost

        return LocalHost()
    from incident_console.transport.ssh import SshHost

    return SshHost(
        parsed.text,
        parsed.host,
        port=parsed.port,
        username=parsed.user,
        identity=identity,
        known_hosts=known_hosts,
        accept_new_host_key=accept_new_host_key,
        connect_timeout=connect_timeout,
    )


def describe_error(exc: BaseException, host: str = "") -> str:
    """One line for the user about a failure to reach `host` (never a traceback)."""
    from incident_console.transport.ssh_errors import describe_connect_error

    return describe_connect_error(exc, host or "host")

"""The asyncssh client object of one connection (imported when the first connection opens)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncssh

from incident_console.transport.ssh_keys import HostKeyPolicy


class _Client(asyncssh.SSHClient):
    """Routes host key decisions to our policy and remembers why the link was lost."""

    def __init__(self, policy: HostKeyPolicy) -> None:
        self._policy = policy
        self.lost_reason: str | None = None
        #: Set once this connection is no longer the host's live one (lost, failed, closed).
        self.retired = asyncio.Event()

    def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
        return self._policy.validate(host, addr, port, key)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost_reason = str(exc) if exc else "connection closed"

"""What the UI needs of a data source: HostMonitor in production, RecordingMonitor in tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from incident_console.domain.events import Event
from incident_console.monitor.changes import Change, ChangeResult, Confirm
from incident_console.monitor.state import HostState
from incident_console.transport.base import ConnectionState


class HostLike(Protocol):
    """The part of a Host the header shows."""

    @property
    def name(self) -> str: ...

    @property
    def state(self) -> ConnectionState: ...


class MonitorLike(Protocol):
    """One host's monitor: a HostState to read, intents to post."""

    @property
    def host(self) -> HostLike: ...

    @property
    def state(self) -> HostState: ...

    @property
    def read_only(self) -> bool: ...

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]: ...

    async def start(self) -> None: ...

    async def stop(self, deadline_s: float | None = None) -> bool: ...

    async def change(self, change: Change, *, confirm: Confirm | None = None) -> ChangeResult:
        """The monitor's one door for changes to the server (see monitor/door.py)."""
        ...

    def follow_logs(self, container_ids: Iterable[str] | None) -> None: ...

"""The contract every source keeps: run against a Host until cancelled, emitting events."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from incident_console.domain.events import Event
    from incident_console.monitor.state import HostState
    from incident_console.transport.base import Host

#: How a source hands an event to the monitor. Called on the event loop thread only.
Emit = Callable[["Event"], None]


class Source(abc.ABC):
    """An async producer that turns one host into domain events."""

    #: "stats", "kernel_log", "docker_events", "logs", "probes".
    name: str

    @abc.abstractmethod
    async def run(self, host: Host, state: HostState, emit: Emit) -> None:
        """Run until cancelled.

        Emit a SourceStatus first (the method in use, or why it can't run: ok=False, detail=one
        line) and whenever the method changes. Never raise for expected failures (docker
        missing, dmesg restricted, container vanished): emit SourceStatus(ok=False, detail=...)
        and keep going or wait and retry. `state` is read-only here (the container registry:
        state.containers).
        """


def one_line(exc: BaseException) -> str:
    """An exception as one short line for a SourceStatus detail."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]

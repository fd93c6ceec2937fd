"""The contract every source keeps: run against a Host until cancelled, emitting events."""

from __future__ import annotations

import abc
import random
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


class Backoff:
    """Waits that double after each failure, from `first` up to `most` seconds, jittered.

    The one retry policy of the sources: a server that is out of memory must not be asked
    again every second by every source at once (the jitter keeps them apart).

    Args:
        first: the first wait, and the wait again after reset().
        most: the longest wait.
        jitter: each wait is scaled by a random factor in [1 - jitter, 1 + jitter].
    """

    def __init__(self, first: float = 1.0, most: float = 30.0, jitter: float = 0.1) -> None:
        self.first = first
        self.most = most
        self.jitter = jitter
        self._next = first

    def next(self) -> float:
        """The wait before the next attempt (and double the one after it)."""
        wait = self._next * random.uniform(1.0 - self.jitter, 1.0 + self.jitter)
        self._next = min(self.most, self._next * 2)
        return min(self.most, wait)

    def reset(self) -> None:
        """After a success: the next failure waits `first` again."""
        self._next = self.first

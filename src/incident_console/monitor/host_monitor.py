"""HostMonitor: runs one host's sources, keeps its HostState, journals every event.

Data flows one way: transport -> sources -> HostMonitor (state + journal) -> subscribers (the UI,
`diagnose`, the runbook, `watch`). Intents that change the server (run a command, restart a
container) come back through here so that each is journaled with who ran it, and refused in
read-only mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from incident_console.domain.events import (
    ContainerSample,
    Event,
    HostMemory,
    LinkChange,
    LogLine,
    SourceStatus,
)
from incident_console.monitor.journal import Journal, operator
from incident_console.monitor.state import HostState
from incident_console.sources.base import Source
from incident_console.transport.base import CommandResult, ConnectionState, Host

log = logging.getLogger(__name__)

Subscriber = Callable[[Event], None]

#: Samples arrive every second; the journal keeps one per container (and host) this often.
SAMPLE_JOURNAL_INTERVAL_S = 10.0
#: A source that crashed is restarted after this long (it should not crash: it reports instead).
SOURCE_RESTART_DELAY_S = 5.0


class ReadOnlyError(PermissionError):
    """A mutating action was asked of a read-only host."""


def output_digest(stdout: str, stderr: str, keep_lines: int = 20) -> dict[str, Any]:
    """What the journal keeps of a command's output: a hash and the last lines."""
    text = stdout + ("\n" + stderr if stderr else "")
    lines = text.strip().splitlines()
    return {
        "sha256": hashlib.sha256(text.encode("utf-8", "replace")).hexdigest(),
        "lines": len(lines),
        "tail": lines[-keep_lines:],
    }


def default_sources(probes: Sequence[str] = (), since: float | None = None) -> list[Source]:
    """The sources every host runs: stats, kernel log, docker events, logs, probes."""
    from incident_console.sources.docker_events import DockerEventsSource
    from incident_console.sources.kernel_log import KernelLogSource
    from incident_console.sources.logs import LogFollower
    from incident_console.sources.probes import ProbeSource
    from incident_console.sources.stats import StatsSource

    sources: list[Source] = [
        DockerEventsSource(),
        StatsSource(),
        KernelLogSource(since=since),
        LogFollower(),
    ]
    if probes:
        sources.append(ProbeSource(list(probes)))
    return sources


class HostMonitor:
    """Runs the sources of one host and keeps what they say."""

    def __init__(
        self,
        host: Host,
        *,
        journal: Journal | None = None,
        probes: Sequence[str] = (),
        since: float | None = None,
        read_only: bool = False,
        sources: Sequence[Source] | None = None,
    ) -> None:
        self.host = host
        self.journal = journal
        self.read_only = read_only
        self.probes = list(probes)
        self.state = HostState(name=host.name)
        self._sources = list(sources) if sources is not None else default_sources(probes, since)
        self._subscribers: list[Subscriber] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._last_journaled: dict[str, float] = {}
        host.on_state(self._on_link)

    # Subscribers -------------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback` with every event (on the event loop). Returns the unsubscribe."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    @property
    def log_follower(self) -> Any:
        """The logs source, if this monitor runs one."""
        for source in self._sources:
            if source.name == "logs":
                return source
        return None

    def source(self, name: str) -> Source | None:
        return next((s for s in self._sources if s.name == name), None)

    # Life --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the host (raising its TransportError) and start every source."""
        self.record(LinkChange(time=time.time(), state="connecting"))
        await self.host.connect()
        self._on_link(self.host.state)
        for source in self._sources:
            self._tasks.append(
                asyncio.create_task(self._supervise(source), name=f"{self.host.name}:{source.name}")
            )

    async def stop(self) -> None:
        """Stop the sources and close the host (ending every process we started there)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.host.close()

    async def _supervise(self, source: Source) -> None:
        while True:
            try:
                await source.run(self.host, self.state, self.record)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a source bug must not take the console down
                log.exception("source %s failed", source.name)
                self.record(
                    SourceStatus(
                        time=time.time(),
                        source=source.name,
                        method="restarting",
                        ok=False,
                        detail=f"{type(exc).__name__}: {exc}"[:200],
                    )
                )
                await asyncio.sleep(SOURCE_RESTART_DELAY_S)

    def _on_link(self, state: ConnectionState) -> None:
        if state.state.value == self.state.link and state.reason == self.state.link_reason:
            return
        self.record(LinkChange(time=state.since, state=state.state.value, reason=state.reason))

    # Recording ---------------------------------------------------------------------------

    def record(self, event: Event) -> None:
        """Fold an event into the state, journal it, and tell every subscriber."""
        self.state.apply(event)
        if self.journal is not None and self._worth_journaling(event):
            record = event.to_record()
            record["host"] = self.host.name
            self.journal.write(record)
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                log.exception("subscriber failed")

    def _worth_journaling(self, event: Event) -> bool:
        # Samples are summarised: one per container (and host) every SAMPLE_JOURNAL_INTERVAL_S.
        if isinstance(event, ContainerSample | HostMemory):
            key = event.id if isinstance(event, ContainerSample) else "host"
            last = self._last_journaled.get(key, 0.0)
            if event.time - last < SAMPLE_JOURNAL_INTERVAL_S:
                return False
            self._last_journaled[key] = event.time
            return True
        # Log lines are kept when they carry a signal (SIGKILL, timeout, traceback, error).
        if isinstance(event, LogLine):
            return event.signal is not None
        return True

    def record_action(self, what: str, **data: Any) -> None:
        """Journal a user or runbook action (a record of kind 'action')."""
        if self.journal is not None:
            self.journal.write(
                {"kind": "action", "host": self.host.name, "what": what, "who": operator(), **data}
            )

    def record_command(
        self,
        argv: Sequence[str],
        result: CommandResult | None,
        *,
        why: str = "",
        error: str = "",
    ) -> None:
        """Journal a command run on the host: argv, who, when, exit status, output digest."""
        if self.journal is None:
            return
        record: dict[str, Any] = {
            "kind": "command",
            "host": self.host.name,
            "argv": list(argv),
            "who": operator(),
            "why": why,
        }
        if result is not None:
            record.update(
                started=result.started,
                duration_s=round(result.duration_s, 3),
                exit_status=result.exit_status,
                output=output_digest(result.stdout, result.stderr),
            )
        if error:
            record["error"] = error
        self.journal.write(record)

    # Intents -----------------------------------------------------------------------------

    def _refuse_if_read_only(self, what: str) -> None:
        if self.read_only:
            raise ReadOnlyError(f"{self.host.name} is read-only: {what} refused")

    async def run_command(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 60.0,  # noqa: ASYNC109 - a per-command deadline, passed to the host
        why: str = "",
        mutating: bool = True,
    ) -> CommandResult:
        """Run a command on the host and journal it. Mutating commands are refused read-only."""
        if mutating:
            self._refuse_if_read_only(" ".join(argv[:3]))
        try:
            result = await self.host.run(argv, timeout=timeout)
        except Exception as exc:
            self.record_command(argv, None, why=why, error=str(exc))
            raise
        self.record_command(argv, result, why=why)
        return result

    async def restart_container(self, container_id: str, *, grace_s: int = 10) -> None:
        """Restart a container through the docker API (in a worker thread), journaled."""
        view = self.state.containers.get(container_id)
        name = view.info.name if view else container_id[:12]
        self._refuse_if_read_only(f"restart {name}")
        client = await self.host.docker()
        started = time.time()
        error = ""
        try:
            await asyncio.to_thread(
                lambda: client.containers.get(container_id).restart(timeout=grace_s)
            )
        except Exception as exc:
            error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise
        finally:
            self.record_action(
                "restart container",
                container=name,
                container_id=container_id,
                api="POST /containers/{id}/restart",
                started=started,
                duration_s=round(time.time() - started, 3),
                error=error,
            )

    def follow_logs(self, container_ids: Iterable[str] | None) -> None:
        """Choose which containers' logs are followed (None = all)."""
        follower = self.log_follower
        if follower is not None:
            follower.follow(None if container_ids is None else set(container_ids))

"""HostMonitor: runs one host's sources, keeps its HostState, journals every event.

Data flows one way: transport -> sources -> HostMonitor (state + journal) -> subscribers (the UI,
`diagnose`, the runbook, `watch`). Every change to the server (a command not known to be
read-only, a file write, a restart, a recreate) comes back through one method,
:meth:`HostMonitor.change` (the door, monitor/door.py), which refuses it in read-only mode, asks
the caller's confirmation hook and journals intent and result. The monitor keeps the transport
host to itself: callers get :attr:`HostMonitor.host`, a view that can read and never write.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from incident_console.monitor.changes import Change, ChangeResult, Confirm
from incident_console.monitor.changes import ReadOnlyError as ReadOnlyError
from incident_console.monitor.changes import output_digest as output_digest
from incident_console.monitor.door import Door, HostView, with_deadline
from incident_console.monitor.journal import Journal
from incident_console.monitor.leaks import LeakTracker
from incident_console.monitor.state import HostState
from incident_console.sources.base import Source
from incident_console.transport.base import CommandResult, ConnectionState, Host

log = logging.getLogger(__name__)

Subscriber = Callable[[Event], None]

#: Samples arrive every second; the journal keeps one per container (and host) this often.
SAMPLE_JOURNAL_INTERVAL_S = 10.0
#: A source that crashed is restarted after this long (it should not crash: it reports instead).
SOURCE_RESTART_DELAY_S = 5.0
#: A stop with a deadline cancels the sources again (and closes the host under them) this often.
STOP_RETRY_S = 5.0
#: Each `<compose> version` of the compose detection gets this long (a dying server is slow).
COMPOSE_DETECT_S = 60.0


def default_sources(probes: Sequence[str] = (), since: float | None = None) -> list[Source]:
    """The sources every host runs: stats, kernel log, docker events, logs, probes."""
    from incident_console.sources.docker_events import DockerEventsSource
    from incident_console.sources.kernel_log import KernelLogSource
    from incident_console.sources.logs import LogFollower
    from incident_console.sources.probes import ProbeSource
    from incident_console.sources.stats import StatsSource

    sources: list[Source] = [
        DockerEventsSource(since=since),
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
        # The transport host stays here (the sources and the door use it); callers get a view.
        self._host = host
        self.host = HostView(host)
        self.journal = journal
        self._door = Door(host, lambda: self.journal, read_only=read_only)
        self._compose: list[str] | None = None
        self._compose_lock = asyncio.Lock()  # one detection in flight (a warm-up, a preview)
        self.probes = list(probes)
        self.state = HostState(name=host.name)
        self._sources = list(sources) if sources is not None else default_sources(probes, since)
        self._subscribers: list[Subscriber] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._last_journaled: dict[str, float] = {}
        #: Which request leaks: fed every event below, its reports land in state.leaks.
        self.leaks = LeakTracker(self.state, clock=time.time)
        host.on_state(self._on_link)

    @property
    def read_only(self) -> bool:
        """Every change is refused. A latch: once read-only, a monitor stays read-only."""
        return self._door.read_only

    @read_only.setter
    def read_only(self, value: bool) -> None:
        self._door.read_only = value

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
        from incident_console.transport.ssh import SshHost

        if isinstance(self._host, SshHost):  # a server with no SFTP: said once, in the sources
            self._host.on_files_over_exec(
                lambda line: self.record(
                    SourceStatus(time=time.time(), source="files", method="exec", detail=line)
                )
            )
        self.record(LinkChange(time=time.time(), state="connecting"))
        await self._host.connect()
        self._on_link(self._host.state)
        for source in self._sources:
            self._tasks.append(
                asyncio.create_task(self._supervise(source), name=f"{self.host.name}:{source.name}")
            )

    async def stop(self, deadline_s: float | None = None) -> bool:
        """Stop the sources and close the host (ending every process we started there).

        Args:
            deadline_s: None waits for as long as the stop takes. Otherwise the stop is given
                that long: a source can miss its cancellation (Python 3.11's wait_for may
                swallow a cancel that lands as its inner read completes) and keep the stop
                waiting forever, so every STOP_RETRY_S the sources are cancelled again and,
                the first time, the host is closed under them (which ends their reads).

        Returns:
            True when the monitor stopped (within the deadline, if any).
        """
        if deadline_s is None:
            await self._stop()
            return True
        stopper = asyncio.ensure_future(self._stop())
        deadline = time.monotonic() + deadline_s
        closed = False
        while not stopper.done() and (left := deadline - time.monotonic()) > 0:
            await asyncio.wait({stopper}, timeout=min(STOP_RETRY_S, left))
            if stopper.done():
                break
            for task in self._tasks:
                task.cancel()
            if not closed:
                closed = True
                self.note("sources did not stop in time; closing the host under them")
                left = deadline - time.monotonic()
                await with_deadline(self._host.close(), min(STOP_RETRY_S, left))
        if not stopper.done():
            return False
        with contextlib.suppress(Exception, asyncio.CancelledError):
            stopper.result()
        return True

    async def _stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self._host.close()

    async def _supervise(self, source: Source) -> None:
        while True:
            try:
                await source.run(self._host, self.state, self.record)
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
        for note in self.leaks.observe(event):
            self.record(note)  # a route newly named: journaled, and the postmortem reads it

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

    def note(self, what: str) -> None:
        """Journal a note about this host (a record of kind 'note')."""
        if self.journal is not None:
            self.journal.write({"kind": "note", "host": self.host.name, "what": what})

    # The door and the reads --------------------------------------------------------------

    async def change(self, change: Change, *, confirm: Confirm | None = None) -> ChangeResult:
        """The one door: let `change` through to the server, or refuse it; journal both.

        Read-only refuses before anything is asked; `confirm` (when given) is asked next and
        False refuses; then the change runs. Intent and outcome are journaled either way.

        Raises:
            ReadOnlyError: the monitor is read-only.
            ChangeDeclined: `confirm` said no.
            Exception: the change failed to run (its error, journaled).
        """
        if change.kind == "restart" and not change.container:
            view = self.state.containers.get(change.container_id)
            if view is not None:
                change = Change.restart(
                    change.container_id,
                    container=view.info.name,
                    grace_s=change.grace_s,
                    why=change.why,
                )
        return await self._door.change(change, confirm=confirm)

    async def read(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 60.0,  # noqa: ASYNC109 - a per-command deadline, passed to the host
        why: str = "",
    ) -> CommandResult:
        """Run a command that only reads (read-only hosts too), journaled.

        Raises:
            NotReadOnlyCommand: the classifier does not call `argv` read-only: use change().
        """
        return await self._door.read(argv, timeout=timeout, why=why)

    async def compose_command(self) -> list[str]:
        """The compose front end on the host (`docker compose` or `docker-compose`), cached.

        Raises:
            ComposeUnavailable: neither answers `version`.
        """
        async with self._compose_lock:
            if self._compose is None:
                from incident_console.lab.compose import detect_compose

                # `<compose> version` is the monitor's own probe, like a source's: no change.
                # A server out of memory pages the compose binary in slowly: `docker compose
                # version` took over 20 s on the lab server under load, and the fix failed.
                self._compose = await detect_compose(self._host, timeout_s=COMPOSE_DETECT_S)
        return list(self._compose)

    async def inspect_containers(self, labels: Sequence[str]) -> list[dict[str, Any]]:
        """`docker inspect` of the running containers with every label in `labels` (API reads).

        Returns:
            Each container's inspect document (``Name``, ``HostConfig``, ``State``...).
        """
        client = await self._host.docker()
        wanted = list(labels)

        def inspect() -> list[dict[str, Any]]:
            return [dict(c.attrs) for c in client.containers.list(filters={"label": wanted})]

        return await asyncio.to_thread(inspect)

    async def container_logs(
        self, container_id: str, *, since: int = 0, tail: int | str = "all"
    ) -> bytes:
        """A container's log (stdout and stderr, docker timestamps): an API read."""
        client = await self._host.docker()

        def read() -> bytes:
            data = client.api.logs(
                container_id, stdout=True, stderr=True, timestamps=True, since=since, tail=tail
            )
            return bytes(data)

        return await asyncio.to_thread(read)

    def follow_logs(self, container_ids: Iterable[str] | None) -> None:
        """Choose which containers' logs are followed (None = all)."""
        follower = self.log_follower
        if follower is not None:
            follower.follow(None if container_ids is None else set(container_ids))

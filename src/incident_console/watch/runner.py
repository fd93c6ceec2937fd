"""The watch loop: HostMonitors feed the rule engine; its decisions are carried out, or not.

One HostMonitor and one RuleEngine per host. Events reach the engine as they happen (a probe
result, an OOM kill: a notification leaves within the second), and a one-second tick covers
what depends on time (unhealthy for N s, time to the memory limit). Restarts go through the
monitor's door (`HostMonitor.change`), so they are journaled and refused on read-only hosts;
in dry-run the monitors themselves are read-only, and on read-only hosts the intent is
journaled (``acted: false`` and why) and nothing changes on the server. Every decision is a
journal record of kind ``watch``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from incident_console.domain.durations import format_bytes
from incident_console.domain.events import Event
from incident_console.monitor.changes import Change
from incident_console.monitor.diagnosis import container_forecast, memory_limit
from incident_console.monitor.host_monitor import HostMonitor, default_sources
from incident_console.monitor.journal import Journal
from incident_console.monitor.state import ContainerView
from incident_console.sources.base import Source
from incident_console.sources.probes import ProbeSource
from incident_console.transport.base import Host
from incident_console.watch.notify import Notifier
from incident_console.watch.policy import Policy, Probe
from incident_console.watch.rules import Decision, RuleEngine, probe_urls, target_containers

#: The engine's clock: unhealthy-for and time-to-limit are checked this often.
TICK_S = 1.0
#: How long a stop waits for restarts and notifications in flight.
STOP_GRACE_S = 15.0
#: How long a restart waits for the container inventory at start.
INVENTORY_WAIT_S = 15.0
#: How long a monitor gets to stop (its sources, then the host closed under them).
STOP_MONITOR_S = 15.0


@dataclass(frozen=True, slots=True)
class WatchTarget:
    """A host to watch, as named on the command line."""

    name: str
    host: Host
    read_only: bool = False


@dataclass(slots=True)
class WatchedHost:
    """One host under watch: its monitor, its engine and what was done there."""

    target: WatchTarget
    monitor: HostMonitor
    engine: RuleEngine
    probes: list[Probe]
    restarts: int = 0
    escalations: int = 0
    intents: int = 0
    in_flight: set[str] = field(default_factory=set)
    #: The policy's probes for this host that have no URL (not probed, their rules off).
    unprobed: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.target.name


def probe_sources(probes: Sequence[Probe]) -> list[Source]:
    """One ProbeSource per (interval, timeout), so each probe keeps the pace its policy asks."""
    groups: dict[tuple[float, float], list[str]] = {}
    for probe in probes:
        urls = groups.setdefault((probe.interval, probe.timeout), [])
        if probe.url not in urls:
            urls.append(probe.url)
    return [ProbeSource(urls, interval, timeout) for (interval, timeout), urls in groups.items()]


def status_line(watched: WatchedHost, now: float | None = None) -> str:
    """One line about a host: probes, containers, memory, OOM kills, what watch did."""
    now = time.time() if now is None else now
    state = watched.monitor.state
    parts: list[str] = []
    if not state.is_live:
        # What follows was true when the link was last up: never let it read as now.
        since = time.strftime("%H:%M:%SZ", time.gmtime(state.link_since))
        parts.append(f"LINK {state.link.upper()} since {since}, last known")
    if watched.unprobed:
        parts.append(f"not probed (no URL): {','.join(watched.unprobed)}")
    for probe in watched.probes:
        history = state.probes.get(probe.url)
        if not history:
            parts.append(f"{probe.name} ?")
            continue
        last = history[-1]
        if last.ok:
            parts.append(f"{probe.name} {last.status} {last.latency_ms or 0:.0f}ms")
        else:
            streak = watched.engine.probe_streak(probe.name)
            parts.append(f"{probe.name} FAIL x{streak} ({last.status or last.error[:40]})")
    views = [v for v in state.containers.values() if not v.gone]
    running = sum(v.info.state == "running" for v in views)
    unhealthy = [v.info.service or v.info.name for v in views if v.info.health == "unhealthy"]
    down = [v.info.service or v.info.name for v in views if v.info.state != "running"]
    containers = f"{running}/{len(views)} running"
    if unhealthy:
        containers += f", unhealthy: {','.join(sorted(unhealthy))}"
    if down:
        containers += f", down: {','.join(sorted(down))}"
    parts.append(containers)
    # The container closest to its limit is the one the night is about.
    closest: tuple[float, str] | None = None
    for view in views:
        limit = memory_limit(view)
        latest = view.latest
        if not limit or latest is None:
            continue
        share = latest.memory_used_bytes / limit
        if closest is None or share > closest[0]:
            forecast = container_forecast(view, now)
            trend = f" {forecast.describe()}" if forecast else ""
            closest = (
                share,
                f"{view.info.service or view.info.name} {format_bytes(latest.memory_used_bytes)}"
                f"/{format_bytes(limit)}{trend}",
            )
    if closest is not None:
        parts.append(closest[1])
    kills = [k for k in state.oom_kills if not k.replayed]
    parts.append(f"oom {len(kills)}")
    done = f"restarts {watched.restarts}"
    if watched.intents:
        done += f", intents {watched.intents}"
    if watched.escalations:
        done += f", ESCALATED {watched.escalations}"
    parts.append(done)
    link = "" if state.is_live else f" [{state.link}]"
    stamp = time.strftime("%H:%M:%SZ", time.gmtime(now))
    return f"{stamp} {watched.name}{link}: " + " | ".join(parts)


def _projects_to_choose(views: Sequence[ContainerView], target: str, project: str | None) -> str:
    """'' when `views` are in one compose project (or one was named), else one line naming
    every project and how to choose."""
    if project or "/" in target:
        return ""
    projects = sorted({v.info.project for v in views if v.info.project})
    if len(projects) < 2:
        return ""
    return (
        f"{target} runs in {len(projects)} compose projects ({', '.join(projects)}): nothing "
        f"restarted; choose one with `project: NAME` in the policy or target PROJECT/{target}"
    )


class Watch:
    """Watches hosts under a policy until asked to stop.

    Args:
        targets: the hosts, in command-line order (probes without `host:` go to the first).
        policy: the validated policy.
        journal: where everything is recorded.
        dry_run: decide and journal, change nothing.
        out: where status and action lines go (None: quiet).
        alert: where escalations go even when quiet (stderr, typically).
    """

    def __init__(
        self,
        targets: Sequence[WatchTarget],
        policy: Policy,
        *,
        journal: Journal | None,
        dry_run: bool = False,
        out: Callable[[str], None] | None = print,
        alert: Callable[[str], None] | None = None,
    ) -> None:
        if not targets:
            raise ValueError("nothing to watch")
        self.policy = policy
        self.journal = journal
        self.dry_run = dry_run
        self.out = out
        self.alert = alert
        self.notifier = Notifier(policy.notify, journal)
        self.hosts: list[WatchedHost] = []
        self._tasks: set[asyncio.Task[None]] = set()
        first = targets[0].name
        started = time.time()
        for target in targets:
            # Only probes with a URL: a default never probes one nobody configured.
            probes = [p for p in policy.active_probes if (p.host or first) == target.name]
            sources = [*default_sources((), since=started), *probe_sources(probes)]
            monitor = HostMonitor(
                target.host,
                journal=journal,
                probes=[p.url for p in probes],
                since=started,
                # Dry-run makes the monitor itself refuse to act: a second lock on the door.
                read_only=target.read_only or dry_run,
                sources=sources,
            )
            engine = RuleEngine(policy, probe_urls(policy, [p.name for p in probes]))
            unprobed = [
                p.name
                for p in policy.probes
                if not p.configured and (p.host or first) == target.name
            ]
            self.hosts.append(WatchedHost(target, monitor, engine, probes, unprobed=unprobed))

    # -- life -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Start every monitor, watch until `stop` is set, then stop cleanly.

        Raises:
            TransportError: a host could not be reached at start.
        """
        self._journal(
            {"kind": "watch_start", "hosts": [h.name for h in self.hosts], "dry_run": self.dry_run,
             "read_only": [h.name for h in self.hosts if h.target.read_only],
             "probes": [p.model_dump() for p in self.policy.probes],
             "notes": self.policy.probe_notes(),
             "rules": [r.name for r in self.policy.rules]}
        )  # fmt: skip
        unsubscribe: list[Callable[[], None]] = []
        try:
            for watched in self.hosts:
                await watched.monitor.start()
                unsubscribe.append(watched.monitor.subscribe(self._listener(watched)))
            await self._loop(stop)
        finally:
            for undo in unsubscribe:
                undo()
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=STOP_GRACE_S)
            await self.notifier.drain(STOP_GRACE_S)
            for watched in self.hosts:
                await self._stop_monitor(watched)
            self._journal({"kind": "watch_stop", "restarts": sum(h.restarts for h in self.hosts),
                           "escalations": sum(h.escalations for h in self.hosts)})  # fmt: skip

    async def _stop_monitor(self, watched: WatchedHost) -> None:
        """Stop a monitor within STOP_MONITOR_S, whatever its sources do, then move on.

        A watch must stop on SIGTERM whatever a source does: systemd would otherwise kill it
        after its own timeout, leaving the processes it started on the server. The monitor
        closes the host under a source that will not end (and journals a note saying so).
        """
        if not await watched.monitor.stop(deadline_s=STOP_MONITOR_S):
            self._journal({"kind": "watch_note", "host": watched.name,
                           "what": f"the monitor did not stop in {STOP_MONITOR_S:g} s"})  # fmt: skip

    async def _loop(self, stop: asyncio.Event) -> None:
        next_status = time.monotonic() + min(self.policy.tick_s, 5.0)
        while not stop.is_set():
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # lands as stop.wait() returns, and this loop would never end.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK_S):
                    await stop.wait()
            if stop.is_set():
                return
            now = time.time()
            for watched in self.hosts:
                self._handle(watched, watched.engine.tick(watched.monitor.state, now))
            if time.monotonic() >= next_status:
                next_status = time.monotonic() + self.policy.tick_s
                for watched in self.hosts:
                    self._say(status_line(watched, now))

    def _listener(self, watched: WatchedHost) -> Callable[[Event], None]:
        def on_event(event: Event) -> None:
            self._handle(watched, watched.engine.on_event(event, watched.monitor.state))

        return on_event

    # -- decisions ------------------------------------------------------------------------

    def _handle(self, watched: WatchedHost, decisions: list[Decision]) -> None:
        for decision in decisions:
            if decision.kind == "restart":
                self._restart(watched, decision)
            elif decision.kind == "escalate":
                watched.escalations += 1
                self._record(watched, decision, acted=False)
                line = f"ESCALATION {watched.name}: {decision.summary}"
                self._say(line)
                if self.alert is not None and self.out is None:
                    self.alert(line)
                self.notifier.send(self._event(watched, decision, acted=False))
            else:
                self._record(watched, decision, acted=False)
                self._say(f"notify {watched.name}: {decision.summary}")
                self.notifier.send(self._event(watched, decision, acted=False))

    def _why_not(self, watched: WatchedHost) -> str:
        if self.dry_run:
            return "dry-run"
        if watched.target.read_only:
            return "read-only host"
        return ""

    def _restart(self, watched: WatchedHost, decision: Decision) -> None:
        why_not = self._why_not(watched)
        if why_not:
            watched.intents += 1
            self._record(watched, decision, acted=False, why_not=why_not)
            self._say(f"would {decision.summary} [{why_not}]")
            self.notifier.send(self._event(watched, decision, acted=False, why_not=why_not))
            return
        if decision.target in watched.in_flight:
            watched.engine.restart_not_done(decision.target)
            return
        watched.in_flight.add(decision.target)
        task = asyncio.get_running_loop().create_task(self._do_restart(watched, decision))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _do_restart(self, watched: WatchedHost, decision: Decision) -> None:
        state = watched.monitor.state
        try:
            # A probe can fail before the container inventory is in: wait for it, briefly.
            deadline = time.monotonic() + INVENTORY_WAIT_S
            while "docker_events" not in state.sources and time.monotonic() < deadline:  # noqa: ASYNC110 - HostState has no event to wait on
                await asyncio.sleep(0.2)
            if decision.container_id:
                ids = [decision.container_id]
            else:
                views = target_containers(state, decision.target, self.policy.project)
                ambiguous = _projects_to_choose(views, decision.target, self.policy.project)
                if ambiguous:
                    # Two stacks with the same service: restarting both, or one at random, is
                    # not what anyone asked for.
                    self._record(watched, decision, acted=False, why_not=ambiguous)
                    self._say(f"refused {decision.summary}: {ambiguous}")
                    self.notifier.send(
                        self._event(watched, decision, acted=False, why_not=ambiguous)
                    )
                    return
                ids = [v.info.id for v in views]
            if not ids:
                error = f"no container of service or name {decision.target!r} on {watched.name}"
                self._record(watched, decision, acted=False, error=error)
                self._say(f"cannot {decision.summary}: {error}")
                self.notifier.send(self._event(watched, decision, acted=False, error=error))
                return
            started = time.monotonic()
            errors: list[str] = []
            for cid in ids:
                try:
                    await watched.monitor.change(
                        Change.restart(
                            cid,
                            grace_s=max(0, round(self.policy.stop_timeout)),
                            why=f"watch rule {decision.rule}: {decision.summary}",
                        )
                    )
                except Exception as exc:  # journaled by the monitor; reported here
                    errors.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            took = round(time.monotonic() - started, 2)
            error = "; ".join(errors)
            watched.restarts += len(ids) - len(errors)
            self._record(watched, decision, acted=not errors, error=error, duration_s=took,
                         container_ids=ids)  # fmt: skip
            self._say(f"{'FAILED ' if errors else ''}{decision.summary} (took {took:g} s)"
                      + (f": {error}" if error else ""))  # fmt: skip
            self.notifier.send(
                self._event(watched, decision, acted=not errors, error=error, duration_s=took)
            )
        finally:
            watched.in_flight.discard(decision.target)

    # -- output ---------------------------------------------------------------------------

    def _event(self, watched: WatchedHost, decision: Decision, **extra: Any) -> dict[str, Any]:
        """The JSON a notification carries: what, where, when, and the evidence."""
        now = time.time()
        return {
            "source": "incident-console watch",
            "event": decision.what if decision.kind != "restart" else "restart",
            "kind": decision.kind,
            "host": watched.name,
            "target": decision.target,
            "rule": decision.rule,
            "summary": decision.summary,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "ts": now,
            "dry_run": self.dry_run,
            **extra,
            "evidence": decision.evidence,
        }

    def _record(self, watched: WatchedHost, decision: Decision, **extra: Any) -> None:
        self._journal(
            {"kind": "watch", "host": watched.name, "decision": decision.kind,
             "what": decision.what, "rule": decision.rule, "target": decision.target,
             "summary": decision.summary, "dry_run": self.dry_run, **extra,
             "evidence": decision.evidence}
        )  # fmt: skip

    def _journal(self, record: dict[str, Any]) -> None:
        if self.journal is not None:
            self.journal.write(record)

    def _say(self, line: str) -> None:
        if self.out is not None:
            self.out(line)

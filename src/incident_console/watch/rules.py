"""The watch rule engine: pure decisions from events and state, with rate limits and backoff.

No I/O and no clock of its own: the runner feeds it events (`on_event`) and ticks (`tick`) with
the time, and carries out the decisions it returns. That keeps every rule, limit and escalation
testable without a server, and makes `--dry-run` the same engine with the actions left out.

Limits, per host and target (service or container):
- restarts: at most `restarts_per_hour` in a sliding hour; after the n-th, the next waits
  `backoff * 2**(n-1)` (capped at `backoff_max`). Past the limit: no more restarts, one
  escalation, until the window frees a slot.
- notifications, per rule and target: on the rising edge of a condition, then at most every
  `renotify` while it lasts (each OOM kill is an edge), at most `notifications_per_hour`.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from incident_console.domain.durations import format_duration
from incident_console.domain.events import Event, OomKill, ProbeResult
from incident_console.domain.oom_scope import describe_kill, kill_json
from incident_console.monitor.diagnosis import container_forecast, memory_limit
from incident_console.monitor.state import ContainerView, HostState
from incident_console.watch.limits import NotifyLimiter, RestartLimiter
from incident_console.watch.policy import Policy, Rule

#: Forecasts are recomputed at most this often (they read up to 30 minutes of samples).
FORECAST_EVERY_S = 5.0

DecisionKind = Literal["restart", "notify", "escalate"]


@dataclass(frozen=True, slots=True)
class Decision:
    """Something the runner should do (or, dry-run or read-only, journal that it would).

    Attributes:
        kind: restart a container, send a notification, or escalate (journal + notify: a limit
            was reached and watch stopped acting).
        rule: the policy rule that decided it.
        what: what happened: probe_fails, unhealthy, oom_kill, time_to_limit, recovered,
            restart_limit, notify_limit.
        target: the service or container acted on or talked about ('' = the host).
        summary: one line for the journal, the notification and the status.
        evidence: what it is based on (probe results, kernel lines, memory trend).
        container_id: the container to restart, when known.
    """

    kind: DecisionKind
    rule: str
    what: str
    target: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    container_id: str = ""


def _probe_record(result: ProbeResult) -> dict[str, Any]:
    return {
        "time": result.time,
        "url": result.url,
        "status": result.status,
        "latency_ms": result.latency_ms,
        "error": result.error,
    }


def memory_evidence(view: ContainerView, now: float) -> dict[str, Any]:
    """The memory trend of a container, for a notification: level, limit, slope, forecast."""
    latest = view.latest
    limit = memory_limit(view)
    forecast = container_forecast(view, now)
    evidence: dict[str, Any] = {
        "container": view.info.name,
        "service": view.info.service,
        "used_bytes": latest.memory_used_bytes if latest else None,
        "limit_bytes": limit or None,
    }
    if forecast is not None:
        evidence.update(
            trend=forecast.describe(),
            trend_status=forecast.status,
            trend_reason=forecast.reason,
            slope_bytes_per_min=round(forecast.slope_bytes_per_s * 60),
            seconds_to_limit=forecast.seconds_to_limit,
        )
    # One point every 10 s over the last 5 minutes: enough to see the climb.
    points = [(s.time, s.memory_used_bytes) for s in view.samples if now - s.time <= 300]
    evidence["samples"] = [
        {"time": round(t, 1), "used_bytes": used}
        for i, (t, used) in enumerate(points)
        if i % 10 == 0
    ]
    return evidence


def _name(view: ContainerView) -> str:
    return view.info.service or view.info.name


def _matches(view: ContainerView, wanted: str | None, project: str | None = None) -> bool:
    if project is not None and view.info.project != project:
        return False
    return wanted is None or wanted in (view.info.service, view.info.name)


def target_containers(state: HostState, target: str, project: str | None) -> list[ContainerView]:
    """The live containers a target names: ``service``, ``project/service`` or a container name."""
    if "/" in target:
        project, target = target.split("/", 1)
    return [
        v for v in state.containers.values()
        if not v.gone and _matches(v, target, project)
    ]  # fmt: skip


@dataclass(slots=True)
class _ProbeTrack:
    streak: int = 0
    last: deque[ProbeResult] = field(default_factory=lambda: deque(maxlen=10))
    #: Rules whose condition held since the last success (for edge and recovery notices).
    active: set[str] = field(default_factory=set)


class RuleEngine:
    """Turns a host's events and state into decisions, under the policy's limits.

    Args:
        policy: the validated policy.
        probe_urls: the probe name for each URL this host probes (several names may share one).
    """

    def __init__(self, policy: Policy, probe_urls: dict[str, list[str]] | None = None) -> None:
        self.policy = policy
        self.restarts = RestartLimiter(policy.limits)
        self.notices = NotifyLimiter(policy.limits)
        self._urls = probe_urls if probe_urls is not None else _urls_of(policy)
        self._probes: dict[str, _ProbeTrack] = {}
        self._active: set[tuple[str, str]] = set()  # (rule, target) conditions holding now
        self._forecast_at = 0.0
        self._near: dict[str, Any] = {}  # container id -> (seconds, forecast) last computed

    # -- inputs ---------------------------------------------------------------------------

    def probe_streak(self, name: str) -> int:
        """Failures in a row of probe `name`."""
        track = self._probes.get(name)
        return track.streak if track else 0

    def on_event(self, event: Event, state: HostState, now: float | None = None) -> list[Decision]:
        """Decisions an event calls for (probe results and OOM kills)."""
        now = time.time() if now is None else now
        if isinstance(event, ProbeResult):
            return self._on_probe(event, state, now)
        if isinstance(event, OomKill) and not event.replayed:
            return self._on_oom(event, state, now)
        return []

    def tick(self, state: HostState, now: float | None = None) -> list[Decision]:
        """Decisions the passing of time calls for (unhealthy for N s, time to limit)."""
        now = time.time() if now is None else now
        decisions: list[Decision] = []
        for rule in self.policy.rules:
            if rule.unhealthy is not None:
                decisions += self._unhealthy(rule, state, now)
        if now - self._forecast_at >= FORECAST_EVERY_S:
            self._forecast_at = now
            for rule in self.policy.rules:
                if rule.time_to_limit is not None:
                    decisions += self._time_to_limit(rule, state, now)
        return decisions

    # -- triggers -------------------------------------------------------------------------

    def _on_probe(self, result: ProbeResult, state: HostState, now: float) -> list[Decision]:
        decisions: list[Decision] = []
        for name in self._urls.get(result.url, []):
            track = self._probes.setdefault(name, _ProbeTrack())
            track.last.append(result)
            if result.ok:
                track.streak = 0
                for rule_name in sorted(track.active):
                    got = f"HTTP {result.status}"
                    decisions += self._notify(
                        rule_name, "recovered", name, f"probe {name} answers again ({got})",
                        {"probes": [_probe_record(result)]}, now, edge=True,
                    )  # fmt: skip
                track.active.clear()
                continue
            track.streak += 1
            for rule in self.policy.rules:
                fails = rule.probe_fails
                if fails is None or fails.probe != name or track.streak < fails.times:
                    continue
                edge = rule.name not in track.active
                track.active.add(rule.name)
                got = f"HTTP {result.status}" if result.status is not None else result.error
                summary = f"probe {name} failed {track.streak} times in a row ({got})"
                evidence = {"probes": [_probe_record(r) for r in track.last]}
                if rule.action == "restart" and rule.target:
                    made = self._restart(rule, rule.target, state, summary, evidence, now)
                    if made and made[0].kind == "restart":
                        track.streak = 0  # K fresh failures before the next restart
                    decisions += made
                else:
                    decisions += self._notify(
                        rule.name, "probe_fails", name, summary, evidence, now, edge=edge
                    )
        return decisions

    def _on_oom(self, kill: OomKill, state: HostState, now: float) -> list[Decision]:
        decisions: list[Decision] = []
        view = state.containers.get(kill.container_id)
        if view is None and (kill.service or kill.container):
            # Attributed by name only (the inventory was late): find it by name.
            named = target_containers(state, kill.service or kill.container, self.policy.project)
            view = named[0] if named else None
        target = kill.service or kill.container or (view.info.name if view else "") or "host"
        # The console, diagnose and the postmortem say a kill the same way (domain.oom_scope).
        shown = kill
        if view is not None and not (kill.service or kill.container):
            shown = dataclasses.replace(kill, container=view.info.name)
        summary = describe_kill(shown)
        evidence: dict[str, Any] = {
            **kill_json(kill),
            "kernel_lines": list(kill.raw),
            "pid": kill.pid,
            "process": kill.process,
            "constraint": kill.constraint.value,
            "container": kill.container,
            "container_id": kill.container_id,
            "service": kill.service,
            "kernel_log_source": kill.source,
        }
        if view is not None:
            evidence["memory"] = memory_evidence(view, now)
        evidence["probes"] = _last_probes(state)
        for rule in self.policy.rules:
            trigger = rule.oom_kill
            if view is not None and not _matches(view, None, self.policy.project):
                continue
            if trigger is None or trigger.service not in (None, kill.service, kill.container):
                continue
            if rule.action == "restart":
                decisions += self._restart(
                    rule, rule.target or target, state, summary, evidence, now
                )
            else:
                decisions += self._notify(rule.name, "oom_kill", target, summary, evidence, now,
                                          edge=True)  # fmt: skip
        return decisions

    def _unhealthy(self, rule: Rule, state: HostState, now: float) -> list[Decision]:
        assert rule.unhealthy is not None
        decisions: list[Decision] = []
        holding: set[tuple[str, str]] = set()
        for view in list(state.containers.values()):
            if view.gone or view.info.health != "unhealthy":
                continue
            if not _matches(view, rule.unhealthy.service, self.policy.project):
                continue
            since = view.health_since or now
            if now - since < rule.unhealthy.for_:
                continue
            target = rule.target or _name(view)
            key = (rule.name, target)
            holding.add(key)
            edge = key not in self._active
            self._active.add(key)
            last = view.health_log[-1].output if view.health_log else view.info.last_probe_output
            summary = (
                f"{view.info.name} unhealthy for {format_duration(now - since)} "
                f"(failing streak {view.info.failing_streak})"
            )
            evidence = {"container": view.info.name, "healthcheck_output": last[-500:],
                        "probes": _last_probes(state)}  # fmt: skip
            if rule.action == "restart":
                cid = view.info.id if not rule.target else ""
                decisions += self._restart(rule, target, state, summary, evidence, now, cid)
            else:
                decisions += self._notify(rule.name, "unhealthy", target, summary, evidence, now,
                                          edge=edge)  # fmt: skip
        self._active -= {k for k in self._active if k[0] == rule.name and k not in holding}
        return decisions

    def _time_to_limit(self, rule: Rule, state: HostState, now: float) -> list[Decision]:
        assert rule.time_to_limit is not None
        decisions: list[Decision] = []
        holding: set[tuple[str, str]] = set()
        for view in list(state.containers.values()):
            if view.gone or not _matches(view, rule.time_to_limit.service, self.policy.project):
                continue
            forecast = container_forecast(view, now)
            if forecast is None:
                continue
            # At the limit is an observation; anything else needs a significant trend with the
            # limit in sight: never a page from a step, a wander or 15 s of samples.
            at_limit = forecast.status == "at_limit"
            soon = (
                forecast.limit_in_sight
                and forecast.seconds_to_limit is not None
                and forecast.seconds_to_limit < rule.time_to_limit.below
            )
            if not (at_limit or soon):
                continue
            target = _name(view)
            key = (rule.name, target)
            holding.add(key)
            edge = key not in self._active
            self._active.add(key)
            summary = f"{view.info.name}: memory {forecast.describe()}"
            evidence = {"memory": memory_evidence(view, now), "probes": _last_probes(state)}
            if rule.action == "restart":
                decisions += self._restart(rule, rule.target or target, state, summary, evidence,
                                           now, view.info.id if not rule.target else "")  # fmt: skip
            else:
                decisions += self._notify(rule.name, "time_to_limit", target, summary, evidence,
                                          now, edge=edge)  # fmt: skip
        self._active -= {k for k in self._active if k[0] == rule.name and k not in holding}
        return decisions

    # -- actions, under the limits ----------------------------------------------------------

    def _restart(
        self,
        rule: Rule,
        target: str,
        state: HostState,
        summary: str,
        evidence: dict[str, Any],
        now: float,
        container_id: str = "",
    ) -> list[Decision]:
        verdict, seconds = self.restarts.check(target, now)
        if verdict == "backoff":
            return []
        if verdict == "limit":
            if not self.restarts.escalate_once(target):
                return []
            limit = self.policy.limits.restarts_per_hour
            return [
                Decision(
                    "escalate", rule.name, "restart_limit", target,
                    f"{target} restarted {limit} times in the last hour (limit {limit}): not "
                    f"restarting it again for {format_duration(seconds)}; it needs a human. "
                    f"Last: {summary}",
                    {**evidence, "restarts_last_hour": limit},
                )
            ]  # fmt: skip
        self.restarts.note(target, now)
        count = self.restarts.recent(target, now)
        return [
            Decision(
                "restart", rule.name, rule.trigger, target,
                f"restart {target} ({count}/{self.policy.limits.restarts_per_hour} this hour): "
                f"{summary}",
                evidence, container_id,
            )
        ]  # fmt: skip

    def restart_not_done(self, target: str) -> None:
        """The runner did not carry out a restart decision (one was still in flight).

        Only restarts that happen count toward the hourly limit: otherwise decisions dropped
        while a slow restart runs would escalate early and claim restarts that never were.
        """
        self.restarts.unnote(target)

    def _notify(
        self,
        rule: str,
        what: str,
        target: str,
        summary: str,
        evidence: dict[str, Any],
        now: float,
        *,
        edge: bool,
    ) -> list[Decision]:
        key = f"{rule}\0{target}"
        verdict = self.notices.allow(key, now, edge=edge)
        if verdict == "ok":
            return [Decision("notify", rule, what, target, summary, evidence)]
        if verdict == "limit" and self.notices.escalate_once(key):
            limit = self.policy.limits.notifications_per_hour
            return [
                Decision(
                    "escalate", rule, "notify_limit", target,
                    f"{limit} notifications about {target} ({rule}) in the last hour: "
                    f"holding further ones for up to an hour. Last: {summary}",
                    evidence,
                )
            ]  # fmt: skip
        return []


def _last_probes(state: HostState) -> list[dict[str, Any]]:
    return [_probe_record(history[-1]) for history in state.probes.values() if history]


def _urls_of(policy: Policy, probes: Iterable[str] | None = None) -> dict[str, list[str]]:
    wanted = None if probes is None else set(probes)
    urls: dict[str, list[str]] = {}
    for probe in policy.active_probes:  # a probe without a URL is never probed nor acted on
        if wanted is None or probe.name in wanted:
            urls.setdefault(probe.url, []).append(probe.name)
    return urls


def probe_urls(policy: Policy, probes: Iterable[str]) -> dict[str, list[str]]:
    """URL -> probe names, for the probes named in `probes`."""
    return _urls_of(policy, probes)

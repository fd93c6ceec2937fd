"""Findings from a HostState: what `diagnose` prints and the runbook's diagnose steps read.

Pure logic over the state (no I/O): each finding has a severity. `critical` (an OOM kill in
the window, an unhealthy or restarting container, a failing probe, memory nearly exhausted)
makes the verdict `problems`; `warning` and `info` do not.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from incident_console.domain.durations import format_bytes, format_duration
from incident_console.domain.events import OomConstraint, OomKill
from incident_console.domain.forecast import Forecast, host_exhaustion, time_to_limit
from incident_console.domain.memory import effective_limit
from incident_console.domain.oom_scope import (
    HOST,
    SHARED_LIMIT,
    kill_json,
    kill_scope,
    scope_sentence,
)
from incident_console.domain.oom_sources import oom_sources_line
from incident_console.monitor.leaks import leak_findings
from incident_console.monitor.state import ContainerView, HostState

#: How far back a container's memory trend is read (time_to_limit's default window).
FORECAST_WINDOW_S = 300.0
#: Host memory (available + free swap) under this share of the total is "nearly exhausted".
HOST_MEMORY_CRITICAL = 0.05
#: sshd at or below this oom_score_adj is protected from the OOM killer.
SSHD_PROTECTED_ADJ = -500


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing the engineer should know, in one line."""

    severity: str  # critical | warning | info
    summary: str


@dataclass(slots=True)
class Diagnosis:
    """The verdict on a host and the evidence behind it."""

    host: str
    findings: list[Finding] = field(default_factory=list)
    sshd_oom_score_adj: list[int] | None = None

    @property
    def verdict(self) -> str:
        return "problems" if any(f.severity == "critical" for f in self.findings) else "healthy"


def memory_limit(view: ContainerView) -> int:
    """The limit in effect (0 when none): the sampler's figure, else docker inspect's."""
    latest = view.latest
    # The sampler's figure is the limit in effect (an ancestor's, on cgroup v1); inspect's
    # is the container's own: domain/memory.py decides which bounds it.
    return effective_limit(view.info.memory_limit_bytes, latest.memory_limit_bytes if latest else 0)


def container_forecast(view: ContainerView, now: float | None = None) -> Forecast | None:
    """Time until the container reaches its limit at the recent growth rate (None: no limit)."""
    limit = memory_limit(view)
    if not limit:
        return None
    # Only the forecast's window (a view keeps up to 30 minutes of samples).
    newest = view.latest.time if view.latest else 0.0
    points = [
        (s.time, float(s.memory_used_bytes))
        for s in itertools.takewhile(
            lambda s: s.time >= newest - FORECAST_WINDOW_S, reversed(view.samples)
        )
    ]
    points.reverse()
    return time_to_limit(points, float(limit), window_s=FORECAST_WINDOW_S)


def host_forecast(state: HostState) -> Forecast | None:
    """When the host runs out of memory (available + free swap) at the recent trend, if it
    does (None: no reading yet)."""
    if not state.memory:
        return None
    newest = state.memory[-1]
    points = [
        (m.time, float(m.available_bytes + m.swap_free_bytes))
        for m in itertools.takewhile(
            lambda m: m.time >= newest.time - FORECAST_WINDOW_S, reversed(state.memory)
        )
    ]
    points.reverse()
    total = newest.total_bytes + newest.swap_total_bytes
    return host_exhaustion(points, window_s=FORECAST_WINDOW_S, total_bytes=total or None)


def host_forecast_text(forecast: Forecast | None) -> str:
    """The host's forecast in words: "out of memory in ~12m", "stable", "too little data (...)"."""
    if forecast is None:
        return "no host memory reading"
    if forecast.status == "at_limit":
        return "out of memory now (under 2% available)"
    if forecast.limit_in_sight and forecast.seconds_to_limit is not None:
        rate = format_bytes(forecast.slope_bytes_per_s * 60)
        return (
            f"out of memory in ~{format_duration(math.ceil(forecast.seconds_to_limit))}"
            f" (available falling {rate}/min)"
        )
    if forecast.status == "growing" and forecast.horizon_s is not None:
        rate = format_bytes(forecast.slope_bytes_per_s * 60)
        return (
            f"available falling {rate}/min, not out of memory within "
            f"{format_duration(forecast.horizon_s)}"
        )
    if forecast.status == "shrinking":
        return "available memory rising"
    if forecast.status == "too_little_data":
        return f"too little data ({forecast.reason})"
    return "stable"


def _kill_summary(kills: list[OomKill], state: HostState, window: str) -> list[Finding]:
    findings: list[Finding] = []
    groups: Counter[tuple[str, str]] = Counter()
    last: dict[tuple[str, str], OomKill] = {}
    for kill in kills:
        where = kill.service or kill.container or (kill.container_id[:12] or "host")
        groups[(where, kill.constraint.value)] += 1
        last[(where, kill.constraint.value)] = kill
    for (where, constraint), count in groups.most_common():
        latest = last[(where, constraint)]
        procs = Counter(
            # A kill counted by the cgroup (memory.events) never had a process name.
            k.process or "process unknown"
            for k in kills
            if (k.service or k.container) == where
            or (not (k.service or k.container) and where in (k.container_id[:12], "host"))
        )
        what = ", ".join(f"{n} {p}" for p, n in procs.most_common(3))
        if kill_scope(latest) in (SHARED_LIMIT, HOST):
            # Not its own limit: which limit ran out, and who grew (the latest kill's words,
            # as the console and watch say them).
            summary = f"{count} OOM kill(s) in {where} {window} ({what}): {scope_sentence(latest)}"
        elif constraint == OomConstraint.LIMIT.value:
            views = state.service_containers(where) or [
                v for v in state.containers.values() if v.info.name == where
            ]
            limit = memory_limit(views[0]) if views else 0
            at = f" at the {format_bytes(limit)} limit" if limit else " at its cgroup limit"
            trend = ""
            if views:
                forecast = container_forecast(views[0])
                if forecast is not None and forecast.status == "growing":  # significant only
                    trend = f", memory growing {format_bytes(forecast.slope_bytes_per_s * 60)}/min"
            summary = f"{count} OOM kill(s) in {where} {window}{at} ({what}){trend}"
        else:
            summary = f"{count} OOM kill(s) {window} in {where} ({what})"
        findings.append(Finding("critical", summary))
    return findings


def _blind_kernel_log(state: HostState, since: float | None, window: str) -> list[Finding]:
    """Without the kernel log, say so, and count docker's `oom` events in its place."""
    kernel = state.sources.get("kernel_log")
    if kernel is not None and kernel.ok:
        return []
    why = kernel.detail if kernel is not None and kernel.detail else "no kernel log source"
    counters = state.sources.get("oom_counters")
    if counters is not None and counters.ok:
        # The cgroups' counters still count every kill; only the pid and process are lost.
        findings = [Finding("info", f"kernel log: {why}; {counters.detail} (no pid or process)")]
        # Kills from before the console connected are in no record, only in the counters.
        for view in sorted(state.containers.values(), key=lambda v: v.info.name):
            counted = view.latest.oom_kill_count if view.latest else None
            if counted and not view.gone:
                findings.append(
                    Finding(
                        "warning",
                        f"{view.info.name}: {counted} OOM kill(s) counted by its cgroup since it"
                        f" started ({counters.method}; when, and which process, unknown)",
                    )
                )
    else:
        findings = [Finding("warning", f"OOM kills may be missed: {why}")]
    events = Counter(
        e.service or e.name
        for e in state.events
        if e.action == "oom" and (since is None or e.time >= since)
    )
    for where, count in events.most_common():
        findings.append(
            Finding(
                "critical",
                f"{count} docker oom event(s) in {where} {window} (kernel log unavailable)",
            )
        )
    return findings


def scope_to_project(state: HostState, project: str) -> HostState:
    """A copy of the state limited to one compose project's containers and their OOM kills."""
    scoped = HostState(name=state.name, link=state.link, link_reason=state.link_reason)
    scoped.containers = {
        cid: view for cid, view in state.containers.items() if view.info.project == project
    }
    scoped.oom_kills.extend(k for k in state.oom_kills if k.container_id in scoped.containers)
    scoped.memory.extend(state.memory)
    scoped.logs.extend(line for line in state.logs if line.id in scoped.containers)
    scoped.events.extend(e for e in state.events if e.id in scoped.containers)
    scoped.leaks = {cid: r for cid, r in state.leaks.items() if cid in scoped.containers}
    scoped.probes = state.probes
    scoped.sources = state.sources
    return scoped


def diagnose_state(
    state: HostState,
    *,
    since: float | None = None,
    now: float | None = None,
    sshd_oom_score_adj: list[int] | None = None,
) -> Diagnosis:
    """Judge a host from what its monitor has seen."""
    now = time.time() if now is None else now
    diagnosis = Diagnosis(host=state.name, sshd_oom_score_adj=sshd_oom_score_adj)
    add = diagnosis.findings.append
    window = f"in the last {format_duration(now - since)}" if since else "since boot"
    kernel = state.sources.get("kernel_log")
    if kernel is not None and kernel.method == "file" and not since:
        window = "in the saved kernel log"

    kills = [k for k in state.oom_kills if since is None or k.time >= since]
    diagnosis.findings.extend(_kill_summary(kills, state, window))
    diagnosis.findings.extend(_blind_kernel_log(state, since, window))

    for view in sorted(state.containers.values(), key=lambda v: v.info.name):
        info = view.info
        if view.gone:
            continue
        if info.health == "unhealthy":
            output = f": {info.last_probe_output.strip()[:120]}" if info.last_probe_output else ""
            add(
                Finding(
                    "critical",
                    f"{info.name} is unhealthy (failing streak {info.failing_streak}){output}",
                )
            )
        if info.state == "restarting":
            add(Finding("critical", f"{info.name} is restarting (restarted {info.restarts} times)"))
        elif info.state == "dead":
            add(Finding("critical", f"{info.name} is dead"))
        if info.state == "running" and not memory_limit(view):
            add(Finding("warning", f"{info.name} has no memory limit: it can take the whole host"))
        forecast = container_forecast(view)
        if forecast is not None and forecast.limit_in_sight:
            add(
                Finding(
                    "warning",
                    f"{info.name} is growing toward its memory limit: {forecast.describe()}",
                )
            )

    diagnosis.findings.extend(Finding(sev, text) for sev, text in leak_findings(state))

    for url, history in sorted(state.probes.items()):
        if history and not history[-1].ok:
            last = history[-1]
            got = f"HTTP {last.status}" if last.status is not None else (last.error or "no answer")
            add(Finding("critical", f"probe {url} fails: {got}"))

    if state.memory:
        mem = state.memory[-1]
        left = mem.available_bytes + mem.swap_free_bytes
        total = mem.total_bytes + mem.swap_total_bytes
        if total and left / total < HOST_MEMORY_CRITICAL:
            add(
                Finding(
                    "critical",
                    f"host memory nearly exhausted: {format_bytes(left)} left of {format_bytes(total)}",
                )
            )
        if mem.swap_total_bytes == 0:
            add(Finding("warning", "no swap: a memory spike goes straight to the OOM killer"))

    if sshd_oom_score_adj is not None:
        if not sshd_oom_score_adj:
            add(Finding("info", "no sshd process found to check its OOM protection"))
        elif max(sshd_oom_score_adj) > SSHD_PROTECTED_ADJ:
            add(
                Finding(
                    "warning",
                    f"sshd is not protected from the OOM killer (oom_score_adj {max(sshd_oom_score_adj)}): "
                    "you may lose the way in during the next incident",
                )
            )
        else:
            add(
                Finding(
                    "info",
                    f"sshd is protected from the OOM killer (oom_score_adj {min(sshd_oom_score_adj)})",
                )
            )

    add(Finding("info", oom_sources_line(state.sources)))  # the console header's list
    for source in state.sources.values():
        # kernel_log's is a warning above; files over exec (no SFTP) is said once, here.
        if (not source.ok and source.source != "kernel_log") or source.source == "files":
            add(Finding("info", f"{source.source}: {source.detail or source.method}"))
    return diagnosis


def diagnosis_json(
    diagnosis: Diagnosis, state: HostState, since: float | None = None
) -> dict[str, Any]:
    """The `diagnose --json` document (keys fixed by the issue)."""
    mem = state.memory[-1] if state.memory else None
    containers = []
    for view in sorted(state.containers.values(), key=lambda v: v.info.name):
        if view.gone:
            continue
        latest = view.latest
        containers.append(
            {
                "id": view.info.id,
                "name": view.info.name,
                "service": view.info.service,
                "state": view.info.state,
                "health": view.info.health,
                "restarts": view.info.restarts,
                "memory_used_bytes": latest.memory_used_bytes if latest else None,
                "memory_limit_bytes": memory_limit(view) or None,
                "cpu_percent": round(latest.cpu_percent, 2) if latest else None,
                "oom_kill_count": latest.oom_kill_count if latest else None,
                "forecast": forecast.to_json() if (forecast := container_forecast(view)) else None,
                "leak": leak.to_json() if (leak := state.leaks.get(view.info.id)) else None,
            }
        )
    kills = [k for k in state.oom_kills if since is None or k.time >= since]
    return {
        "host": diagnosis.host,
        "verdict": diagnosis.verdict,
        "findings": [{"severity": f.severity, "summary": f.summary} for f in diagnosis.findings],
        "memory": {
            "total_bytes": mem.total_bytes if mem else None,
            "available_bytes": mem.available_bytes if mem else None,
            "swap_total_bytes": mem.swap_total_bytes if mem else None,
            "swap_free_bytes": mem.swap_free_bytes if mem else None,
            "forecast": host.to_json() if (host := host_forecast(state)) else None,
        },
        "containers": containers,
        "oom_kills": [
            {
                "time": k.time,
                "pid": k.pid,
                "process": k.process,
                "container_id": k.container_id,
                "container": k.container,
                "service": k.service,
                "constraint": k.constraint.value,
                "anon_rss_bytes": k.anon_rss_bytes,
                "source": k.source,
                "detail": k.detail,
                **kill_json(k),
            }
            for k in kills
        ],
        "probes": [
            {"url": url, "status": h[-1].status, "latency_ms": h[-1].latency_ms}
            for url, h in sorted(state.probes.items())
            if h
        ],
        "sources": {
            name: {"method": s.method, "ok": s.ok, "detail": s.detail}
            for name, s in state.sources.items()
        },
    }

"""Runbook variables: discovered from what the monitor saw, each value with the reason for it.

The service is the compose service whose containers had OOM kills (else `backend`); the compose
file and project directory come from its container's compose labels; the worker count and the
memory limit are proposed from the measured per-worker peak RSS, max-requests from how much a
worker keeps per request (its RSS growth over the access-log request rate). Every value can be
overridden with `--set key=value`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from incident_console.monitor.state import ContainerView, HostState
from incident_console.runbook.recycling import recycle_advice, split_gunicorn
from incident_console.runbook.schema import BUILTIN_VARIABLES, Runbook
from incident_console.runbook.units import format_size, parse_duration, parse_size

MIB = 1024 * 1024

#: Defaults when nothing was measured: the seed's own values.
SEED_WORKERS = 2
SEED_MAX_REQUESTS = 1000
SEED_JITTER = 50
SEED_LIMIT = 512 * MIB
SEED_WATCH = "30m"


@dataclass(slots=True)
class Variables:
    """Resolved variables and, for each, why it has that value."""

    values: dict[str, str] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)

    def set(self, name: str, value: object, why: str) -> None:
        self.values[name] = "" if value is None else str(value)
        self.why[name] = why


class VariableError(ValueError):
    """A `--set` that names no variable or gives a bad value."""


def parse_sets(pairs: list[str] | tuple[str, ...], runbook: Runbook) -> dict[str, str]:
    """`["watch=90s"]` -> {"watch": "90s"}; unknown names and bad durations raise VariableError."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise VariableError(f"--set {pair!r}: expected key=value")
        if name not in runbook.known_variables:
            known = ", ".join(sorted(runbook.known_variables))
            raise VariableError(f"--set {name}: no such variable (known: {known})")
        if name == "watch":
            try:
                parse_duration(value)
            except ValueError as exc:
                raise VariableError(f"--set watch: {exc}") from None
        out[name] = value
    return out


def project_of(state: HostState, container_id: str) -> str:
    """The compose project of a container the monitor knows ('' when unknown)."""
    view = state.containers.get(container_id)
    return view.info.project if view else ""


def service_views(state: HostState, service: str, project: str = "") -> list[ContainerView]:
    """The live containers of `service`, in `project` when given (two stacks may both have a
    `backend`)."""
    return [
        v for v in state.service_containers(service) if not project or v.info.project == project
    ]


def _oom_target(state: HostState, project: str) -> tuple[str, str]:
    """(service, project) with the most OOM kills, the latest kill breaking ties."""
    counts: Counter[tuple[str, str]] = Counter()
    for kill in state.oom_kills:
        where = project_of(state, kill.container_id)
        if kill.service and (not project or where == project):
            counts[(kill.service, where)] += 1
    return counts.most_common(1)[0][0] if counts else ("", project)


def _worker_figures(
    view: ContainerView | None, state: HostState, service: str
) -> tuple[int, int, int]:
    """(current workers, per-worker peak RSS, master RSS) from what the monitor measured."""
    if view is None:
        return 0, 0, 0
    master, worker_procs = split_gunicorn(view.processes.processes if view.processes else ())
    master_pid = master.pid if master else None
    master_rss = master.rss_bytes if master else 0
    workers = len(worker_procs)
    peaks = [rss for pid, rss in view.peak_rss.items() if pid != master_pid]
    # A worker the kernel killed was at its biggest when it died: the kill line says how big.
    # Only this project's kills: another stack's `backend` is not ours to size.
    project = view.info.project
    peaks += [
        k.anon_rss_bytes
        for k in state.oom_kills
        if k.service == service
        and k.anon_rss_bytes
        and project_of(state, k.container_id) == project
    ]
    return workers, max(peaks, default=0), master_rss


def _advice(limit: int, worker_peak: int, master: int, current: int) -> tuple[int, int, str]:
    """(workers, limit bytes, why): what fits at the measured peak, at most half the workers
    seen (the seed went 4 -> 2: a leaking worker's peak is only bounded once it is recycled)."""
    from incident_console.domain.advice import advise_workers

    advice = advise_workers(limit, worker_peak, master, current_workers=current or None)
    workers, why = advice.workers, advice.why
    if current > 1 and workers > current // 2:
        workers = current // 2
        why += f"; halved from the {current} seen, as the seed did"
    new_limit = max(advice.limit_bytes, limit) if limit else advice.limit_bytes
    return workers, new_limit, why


def _int_or(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default


def _propose_recycling(
    v: Variables, state: HostState, views: list[ContainerView], overrides: Mapping[str, str]
) -> None:
    """max_requests and its jitter from the measured growth per request, for the workers and
    limit proposed (or `--set`): what each worker may keep before it is recycled."""
    workers = _int_or(overrides.get("workers", v.values["workers"]), 0)
    try:
        limit = parse_size(overrides.get("mem_limit", v.values["mem_limit"]))
    except ValueError:
        limit = 0
    advice = recycle_advice(
        state, views, limit_bytes=limit, workers=workers, fallback=(SEED_MAX_REQUESTS, SEED_JITTER)
    )
    why = advice.why if advice.growth_per_request else f"{advice.why} (the seed's value)"
    v.set("max_requests", advice.max_requests, why)
    v.set(
        "max_requests_jitter",
        advice.jitter,
        "about a tenth more, at random, so workers do not all restart at once",
    )


def discover(
    state: HostState,
    runbook: Runbook,
    overrides: Mapping[str, str] | None = None,
    *,
    host_name: str = "",
    probes: list[str] | None = None,
) -> Variables:
    """Every variable the runbook may use, from the runbook's defaults, the host and `--set`."""
    overrides = dict(overrides or {})
    v = Variables()
    v.set("host", host_name or state.name, "the host the console is connected to")
    oom_service, oom_project = _oom_target(state, overrides.get("project", ""))
    if "service" in overrides:
        v.set("service", overrides["service"], "--set")
    elif oom_service:
        n = sum(1 for k in state.oom_kills if k.service == oom_service)
        v.set("service", oom_service, f"{n} OOM kill(s) were attributed to it")
    else:
        v.set("service", "backend", "no OOM kill attributed yet: the seed's backend")
    service = v.values["service"]
    project = overrides.get("project") or (oom_project if service == oom_service else "")
    views = service_views(state, service, project)
    view = views[0] if views else None
    info = view.info if view else None
    v.set("container", info.name if info else "", "the service's running container")
    v.set("project", info.project if info else project, "label com.docker.compose.project")
    workdir = info.working_dir if info else ""
    v.set("project_dir", workdir, "label com.docker.compose.project.working_dir")
    compose_file = ""
    if info and info.config_files:
        compose_file = info.config_files[0]
        if workdir and not os.path.isabs(compose_file):
            compose_file = os.path.join(workdir, compose_file)
    v.set("compose_file", compose_file, "label com.docker.compose.project.config_files")
    v.set("health_url", (probes or [""])[0], "the first URL the console probes")
    v.set("watch", SEED_WATCH, "the seed watched 30 minutes after the fix")

    limit = info.memory_limit_bytes if info else 0
    current, worker_peak, master = _worker_figures(view, state, service)
    v.set(
        "current_workers",
        current or "",
        f"{current} worker processes seen" if current else "no processes measured",
    )
    v.set(
        "worker_peak",
        format_size(worker_peak) if worker_peak else "",
        "largest RSS a worker reached (process samples and kill lines)",
    )
    if worker_peak:
        workers, new_limit, how = _advice(limit, worker_peak, master, current)
        measured = (
            f"workers peaked at {worker_peak // MIB} MiB, master {master // MIB} MiB, "
            f"limit now {limit // MIB if limit else 'none'} MiB"
        )
        v.set("workers", workers, f"{measured}: {how}")
        v.set("mem_limit", format_size(new_limit), how)
    else:
        v.set(
            "workers",
            max(1, current // 2) if current else SEED_WORKERS,
            "nothing measured: half the workers seen (the seed: 4 -> 2)",
        )
        v.set(
            "mem_limit",
            format_size(max(limit, SEED_LIMIT)),
            "nothing measured: the seed's 512M (or the current limit if larger)",
        )
    limit_now = parse_size(v.values["mem_limit"])
    v.set("mem_reservation", format_size(limit_now // 2), "half the limit (the seed: 512M/256M)")
    v.set(
        "memory_target",
        format_size(int(limit_now * 0.9)),
        "90% of the limit: the service stays clear of it",
    )
    _propose_recycling(v, state, views, overrides)

    for name, decl in runbook.variables.items():
        # The runbook author's default wins over what was discovered; --set wins over both.
        if decl.default is not None:
            v.set(
                name, decl.default, decl.why or BUILTIN_VARIABLES.get(name, "the runbook's default")
            )
    for name, value in overrides.items():
        v.set(name, value, "--set")
    for name in runbook.known_variables:
        v.values.setdefault(name, "")
    return v

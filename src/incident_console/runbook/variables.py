"""Runbook variables: discovered from what the monitor saw, each value with the reason for it.

The service is the compose service whose containers had OOM kills (else `backend`). Its
compose project is never guessed: when the service runs in more than one project on the host,
`project` stays unknown and its `why` names every candidate (`runbook run` refuses, the
walkthrough asks). The compose file and project directory come from the container's compose
labels; the health URL from a probe, else from docker (a published port and the service's
healthcheck path); the worker count, memory limit and max-requests from one proposal computed
on everything the monitor has seen (`domain.advice.propose_fix`), declined when that is too
little. Every value can be overridden with `--set key=value` (or the walkthrough's form).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from incident_console.monitor.endpoints import discover_health_url
from incident_console.monitor.state import ContainerView, HostState
from incident_console.runbook.budget import culprit
from incident_console.runbook.compose_files import label_files, settings_file
from incident_console.runbook.proposal import propose
from incident_console.runbook.recycling import SinceStart
from incident_console.runbook.schema import BUILTIN_VARIABLES, Runbook
from incident_console.runbook.units import format_size, parse_duration, parse_size

MIB = 1024 * 1024

SEED_WATCH = "30m"
#: What an empty value reads as in any text shown to a person.
UNKNOWN = "unknown"


@dataclass(slots=True)
class Variables:
    """Resolved variables and, for each, why it has that value ('' = unknown).

    Attributes:
        values: name -> value ('' when not known).
        why: name -> the reason for the value, or why it is unknown.
        candidates: name -> values seen on the host that it could take (for a form).
        ambiguous: '' or one line naming the compose projects to choose between.
    """

    values: dict[str, str] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)
    candidates: dict[str, list[str]] = field(default_factory=dict)
    ambiguous: str = ""

    def set(self, name: str, value: object, why: str) -> None:
        self.values[name] = "" if value is None else str(value)
        self.why[name] = why

    def shown(self) -> dict[str, str]:
        """The values for text a person reads: an unknown one says so, never ''."""
        return {k: v if v != "" else UNKNOWN for k, v in self.values.items()}


def shown(values: Mapping[str, str]) -> dict[str, str]:
    """`values` with every empty one replaced by 'unknown' (for titles and why texts)."""
    return {k: v if v != "" else UNKNOWN for k, v in values.items()}


class VariableError(ValueError):
    """A `--set` that names no variable or gives a bad value."""


def check_value(name: str, value: str) -> None:
    """Raise VariableError when `value` is no good for `name` (durations, sizes, counts)."""
    if name == "watch":
        try:
            parse_duration(value)
        except ValueError as exc:
            raise VariableError(f"{name}: {exc}") from None
    elif name in ("mem_limit", "mem_reservation", "memory_target") and value:
        try:
            parse_size(value)
        except ValueError as exc:
            raise VariableError(f"{name}: {exc}") from None
    elif (
        name in ("workers", "max_requests", "max_requests_jitter")
        and value
        and (not value.isdigit() or (name != "max_requests_jitter" and int(value) < 1))
    ):
        raise VariableError(f"{name}: expected a whole number, got {value!r}")


def parse_sets(pairs: list[str] | tuple[str, ...], runbook: Runbook) -> dict[str, str]:
    """`["watch=90s"]` -> {"watch": "90s"}; unknown names and bad values raise VariableError."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise VariableError(f"--set {pair!r}: expected key=value")
        if name not in runbook.known_variables:
            known = ", ".join(sorted(runbook.known_variables))
            raise VariableError(f"--set {name}: no such variable (known: {known})")
        try:
            check_value(name, value)
        except VariableError as exc:
            raise VariableError(f"--set {exc}") from None
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


def _all_views(state: HostState, service: str, project: str) -> list[ContainerView]:
    """The service's containers in `project`, live first, then removed ones (a recreated
    container's samples and kills are still evidence about the same service)."""
    views = [
        v
        for v in state.containers.values()
        if v.info.service == service and v.info.project == project
    ]
    return sorted(views, key=lambda v: v.gone)


def kills_by_project(state: HostState, service: str) -> Counter[str]:
    """OOM kills of `service` per compose project (of containers the monitor knows)."""
    counts: Counter[str] = Counter()
    for kill in state.oom_kills:
        if kill.service == service:
            where = project_of(state, kill.container_id)
            if where:
                counts[where] += 1
    return counts


def project_candidates(state: HostState, service: str) -> list[str]:
    """Compose projects with a live container of `service`: the most OOM kills first."""
    kills = kills_by_project(state, service)
    projects = {v.info.project for v in service_views(state, service) if v.info.project}
    return sorted(projects, key=lambda p: (-kills[p], p))


def ambiguity(state: HostState, service: str, host: str) -> str:
    """One line naming every project `service` runs in, or '' when there are fewer than two."""
    candidates = project_candidates(state, service)
    if len(candidates) < 2:
        return ""
    kills = kills_by_project(state, service)
    named = ", ".join(f"{p} ({kills[p]} OOM kill(s))" for p in candidates)
    return (
        f"{service} runs in {len(candidates)} compose projects on {host}: {named}; "
        f"nothing was picked: choose one with --set project=NAME"
    )


def _none_found(state: HostState, service: str) -> str:
    """Why no compose project runs `service`: docker has not listed the containers (and what
    it said), or it did and none of them is one."""
    if not any(not v.gone for v in state.containers.values()):
        docker = state.sources.get("docker_events")
        if docker is None:
            return "docker has not listed the containers yet"
        if not docker.ok:
            return f"docker has not listed the containers: {docker.detail}"
    if service_views(state, service):
        return f"the containers of {service} have no compose labels"
    return f"no container of {service} on the host"


def _oom_service(state: HostState, project: str) -> tuple[str, int]:
    """(service, kills) with the most OOM kills (in `project` when given), latest breaking ties."""
    counts: Counter[str] = Counter()
    for kill in state.oom_kills:
        if kill.service and (not project or project_of(state, kill.container_id) == project):
            counts[kill.service] += 1
    if not counts:
        return "", 0
    top = max(counts.values())
    latest = [k.service for k in state.oom_kills if counts.get(k.service) == top]
    return latest[-1], top


def _host_address(host_address: str) -> str:
    return host_address or "127.0.0.1"


def candidates(state: HostState, service: str, project: str) -> dict[str, list[str]]:
    """Values seen on the host each variable could take (the walkthrough's form offers them)."""
    live = [v for v in state.containers.values() if not v.gone]
    kills = Counter(k.service for k in state.oom_kills if k.service)
    services = sorted(
        {v.info.service for v in live if v.info.service}, key=lambda s: (-kills[s], s)
    )
    mine = [
        v for v in live if v.info.service == service and (not project or v.info.project == project)
    ]
    files: list[str] = []
    for view in mine:
        for name in view.info.config_files:
            path = os.path.join(view.info.working_dir, name) if view.info.working_dir else name
            if path not in files:
                files.append(path)
    return {
        "service": services,
        "project": project_candidates(state, service),
        "container": [v.info.name for v in mine],
        "compose_file": files,
        "project_dir": sorted({v.info.working_dir for v in mine if v.info.working_dir}),
    }


def discover(
    state: HostState,
    runbook: Runbook,
    overrides: Mapping[str, str] | None = None,
    *,
    host_name: str = "",
    probes: list[str] | None = None,
    host_address: str = "",
    since_start: SinceStart | None = None,
    compose_texts: Mapping[str, str | None] | None = None,
) -> Variables:
    """Every variable the runbook may use, from the runbook's defaults, the host and `--set`.

    Args:
        state: the monitor's state.
        runbook: the runbook (its declared variables and defaults).
        overrides: `--set` values (and the walkthrough's form): they win over everything.
        host_name: the host's name as the console knows it.
        probes: URLs the console probes (the first is the health URL).
        host_address: the address the console reaches the host at (for a discovered health
            URL on a port published on the server's loopback); '' when local.
        since_start: the service container's requests since it started (runbook session).
        compose_texts: the project's compose files as read (path -> text, None: unreadable),
            to choose the one that holds the service's settings; without them the last one.
    """
    overrides = dict(overrides or {})
    v = Variables()
    host = host_name or state.name
    v.set("host", host, "the host the console is connected to")
    chosen_project = overrides.get("project", "")
    oom_service, n_kills = _oom_service(state, chosen_project)
    grew = culprit(state, chosen_project)
    if "service" in overrides:
        v.set("service", overrides["service"], "--set")
    elif grew is not None:
        v.set("service", *grew)
    elif oom_service:
        v.set("service", oom_service, f"{n_kills} OOM kill(s) were attributed to it")
    else:
        v.set("service", "backend", "no OOM kill attributed yet: the seed's backend")
    service = v.values["service"]
    project = chosen_project
    found = project_candidates(state, service)
    if project:
        v.set("project", project, "--set")
    elif len(found) == 1:
        v.set("project", found[0], f"the only compose project with a running {service}")
    elif found:
        v.ambiguous = ambiguity(state, service, host)
        v.set("project", "", v.ambiguous)
    else:
        v.set("project", "", _none_found(state, service))
    project = v.values["project"]
    views = service_views(state, service, project) if project or not found else []
    view = views[0] if views else None
    info = view.info if view else None
    missing = v.why["project"] if not info else ""
    v.set("container", info.name if info else "", "the service's running container" if info
          else missing)  # fmt: skip
    workdir = info.working_dir if info else ""
    v.set("project_dir", workdir, "label com.docker.compose.project.working_dir" if workdir
          else missing or "the container has no compose working_dir label")  # fmt: skip
    files = label_files(info.config_files, workdir) if info else []
    v.set("compose_files", ",".join(files), (
        f"label com.docker.compose.project.config_files: {len(files)} file(s), in order; "
        "a recreate passes every one" if files
        else missing or "the container has no compose config_files label"
    ))  # fmt: skip
    env_file = info.env_file if info else ""
    if env_file and workdir and not os.path.isabs(env_file):
        env_file = os.path.join(workdir, env_file)
    v.set("env_file", env_file, "label com.docker.compose.project.environment_file" if env_file
          else "no environment_file label (compose v1 reads the project dir's .env)")  # fmt: skip
    if len(files) > 1:
        texts = {p: (compose_texts or {}).get(p) for p in files}
        if compose_texts is not None:
            compose_file, why = settings_file(texts, service)
        else:
            compose_file, why = files[-1], f"the last of {len(files)} compose files (not read yet)"
    else:
        compose_file = files[0] if files else ""
        why = "label com.docker.compose.project.config_files" if files else (
            missing or "the container has no compose config_files label"
        )  # fmt: skip
    v.set("compose_file", compose_file, why)
    if probes:
        v.set("health_url", probes[0], "the first URL the console probes (--probe)")
    else:
        url = discover_health_url(
            state, service, project, server=_host_address(host_address)
        ) if info else None  # fmt: skip
        if url is not None:
            v.set("health_url", url.url, url.where)
        else:
            v.set("health_url", "", missing or (
                f"no published port with a healthcheck path for {service}: --probe URL"
            ))  # fmt: skip
    v.set("watch", SEED_WATCH, "the seed watched 30 minutes after the fix")

    skip = [v.values["health_url"].split("://", 1)[-1].partition("/")[2]]
    skip = ["/" + s.split("?")[0] for s in skip if s]
    evidence_views = (
        [*views, *(x for x in _all_views(state, service, project) if x.gone)] if views else []
    )
    propose(v, state, evidence_views, overrides, skip, since_start)
    limit_text = overrides.get("mem_limit") or v.values["mem_limit"]
    if limit_text:
        limit_now = parse_size(limit_text)
        v.set("mem_reservation", format_size(limit_now // 2),
              "half the limit (the seed: 512M/256M)")  # fmt: skip
        v.set("memory_target", format_size(int(limit_now * 0.9)),
              "90% of the limit: the service stays clear of it")  # fmt: skip
    else:
        v.set("mem_reservation", "", "follows mem_limit, which is not known")
        v.set("memory_target", "", "follows mem_limit, which is not known")

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
        v.why.setdefault(name, "not discovered")
    v.candidates = candidates(state, service, project)
    if v.values["health_url"]:
        v.candidates["health_url"] = [v.values["health_url"]]
    return v

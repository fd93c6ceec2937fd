"""Which compose project each container belongs to, and which one the incident is about.

A server runs several compose projects, and their kills share one kernel log. The affected
project is the one the operator worked on (a restart, a command naming its containers or
`-p` it, a file under its working directory) among those with kills; else the one with the
most kills seen live, then the most kills, then the latest. The others are named as such.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from incident_console.domain.memory import limit_or_zero
from incident_console.report.model import Kill

#: Record kinds that name a container by id (`container_id` for kills).
_CONTAINER_KINDS = ("oom_kill", "health", "container_event", "log", "sample")


@dataclass(frozen=True, slots=True)
class Container:
    """What the journal says about one container (inspect records, or a kill's own fields)."""

    id: str
    name: str
    service: str
    project: str
    limit_bytes: int
    places: tuple[str, ...] = ()  # the project's working dir and compose files


def limit_of(value: object) -> int:
    """A memory limit in bytes, 0 for none (docker's "no limit" is a huge number)."""
    return limit_or_zero(value)


def compose_name(name: str, cid: str) -> str:
    """A container's compose name, without the `<id12>_` compose v1 prefixes it with on recreate.

    `docker-compose up --force-recreate` renames the old container to `<its id[:12]>_<name>`
    before removing it: its samples and kills are still the service's, on the same line.
    """
    prefix = f"{cid[:12]}_" if len(cid) >= 12 else ""
    return name[len(prefix) :] if prefix and name.startswith(prefix) else name


def project_of(name: str, service: str, known: Sequence[str] = ()) -> str:
    """The compose project a container name implies: `proj_service_1` (v1), `proj-service-1` (v2).

    Used only when no inspect record gave the project label (a container removed before the
    console saw it, an old kill read back from the kernel's log, a log line without service).
    """
    if not name:
        return ""
    if service:
        found = re.fullmatch(rf"(.+?)[_-]{re.escape(service)}[_-]\d+", name)
        return found[1] if found else ""
    prefixes = [p for p in known if p and name.startswith((f"{p}_", f"{p}-"))]
    if prefixes:
        return max(prefixes, key=len)
    found = re.fullmatch(r"(.+)[_-][^_-]+[_-]\d+", name)
    return found[1] if found else ""


def containers_of(records: Sequence[dict[str, Any]]) -> dict[str, Container]:
    """Every container the records name, by id: inspect records first, then the others' fields."""
    found: dict[str, Container] = {}
    for record in records:
        if record.get("kind") != "container" or not record.get("id"):
            continue
        cid = str(record["id"])
        old = found.get(cid)
        name = compose_name(str(record.get("name") or (old.name if old else "")), cid)
        service = str(record.get("service") or (old.service if old else ""))
        files = record.get("config_files")
        places = [str(record.get("working_dir") or "")]
        places += [str(f) for f in files] if isinstance(files, list) else []
        found[cid] = Container(
            id=cid,
            name=name,
            service=service,
            project=str(record.get("project") or (old.project if old else ""))
            or project_of(name, service),
            limit_bytes=limit_of(record.get("memory_limit_bytes"))
            or (old.limit_bytes if old else 0),
            places=tuple(p for p in places if p) or (old.places if old else ()),
        )
    known = sorted({c.project for c in found.values() if c.project})
    for record in records:
        kind = record.get("kind")
        cid = str(record.get("container_id" if kind == "oom_kill" else "id") or "")
        if kind not in _CONTAINER_KINDS or not cid:
            continue
        old = found.get(cid)
        if old is not None:
            limit = limit_of(record.get("memory_limit_bytes")) if kind == "sample" else 0
            if limit and not old.limit_bytes:
                found[cid] = Container(
                    old.id, old.name, old.service, old.project, limit, old.places
                )
            continue
        name = compose_name(str(record.get("container") or record.get("name") or ""), cid)
        service = str(record.get("service") or "")
        if name or service:
            found[cid] = Container(cid, name, service, project_of(name, service, known), 0)
    return found


def acted_on(records: Sequence[dict[str, Any]], containers: dict[str, Container]) -> set[str]:
    """The projects the operator worked on: restarted, named in a command, files changed."""
    projects = {c.project for c in containers.values() if c.project}
    by_name = {c.name: c.project for c in containers.values() if c.name and c.project}
    by_name.update({cid: c.project for cid, c in containers.items() if c.project})
    places = [(place, c.project) for c in containers.values() if c.project for place in c.places]
    acted: set[str] = set()

    def path(text: str) -> None:
        acted.update(p for place, p in places if text == place or text.startswith(place + "/"))

    for record in records:
        kind = record.get("kind")
        if kind in ("action", "change"):
            for key in ("container", "container_id", "target"):
                if str(record.get(key) or "") in by_name:
                    acted.add(by_name[str(record[key])])
        elif kind == "command":
            argv = [str(a) for a in record.get("argv") or []]
            for i, arg in enumerate(argv):
                if arg in by_name:
                    acted.add(by_name[arg])
                elif (
                    arg in ("-p", "--project-name")
                    and i + 1 < len(argv)
                    and argv[i + 1] in projects
                ):
                    acted.add(argv[i + 1])
                else:
                    path(arg)
        elif kind in ("file_change", "file_restore"):
            path(str(record.get("path") or ""))
    return acted


def affected_project(
    kills: Sequence[Kill], acted: set[str], bad_health: Counter[str]
) -> tuple[str, str]:
    """The incident's project and why it was chosen (the report says why).

    Among the projects with kills: one the operator acted on, then the most kills seen live,
    then the most kills, then the latest. Without kills: one acted on, else the most unhealthy.
    """
    if not kills:
        if acted:
            return min(acted), "the operator worked on it"
        if bad_health:
            return max(bad_health.items(), key=lambda item: (item[1], item[0]))[0], "unhealthy"
        return "", ""
    by_project: dict[str, list[Kill]] = {}
    for kill in kills:
        by_project.setdefault(kill.project, []).append(kill)
    ranked = sorted(
        by_project.items(),
        key=lambda item: (
            item[0] in acted,
            sum(not k.replayed for k in item[1]),
            len(item[1]),
            max(k.time for k in item[1]),
            item[0],
        ),
        reverse=True,
    )
    project = ranked[0][0]
    if len(ranked) == 1:
        return project, "the only project with OOM kills"
    if project in acted:
        return project, "the operator worked on it"
    live = sum(not k.replayed for k in ranked[0][1])
    runner_up = sum(not k.replayed for k in ranked[1][1])
    why = "most OOM kills seen live" if live > runner_up else "most OOM kills"
    if acted:  # acted on, but none of them was hit (an acted project with kills ranks first)
        names = ", ".join(f"`{p}`" for p in sorted(acted))
        return project, f"{why}; the operator worked on {names}, with no OOM kill in the journal"
    return project, f"{why}; no command, restart or changed file in the journal names a project"

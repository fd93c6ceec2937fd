"""Which memory ran out at an OOM kill, who was killed, who grew, and how to say it.

Three scopes, from the kernel's own words:

- ``container-limit``: the limit that ran out is the victim's container's own (``oom_memcg``
  equals the container's cgroup in ``task_memcg``, or v1's "Task in X killed as a result of
  limit of X").
- ``shared-limit``: the limit belongs to an ANCESTOR of the victim's cgroup (a systemd slice, a
  ``cgroup_parent``, a Kubernetes pod): several containers share it, and the one killed (the
  victim, the highest OOM score) need not be the one that grew (the culprit).
- ``host``: no cgroup limit ran out (``global_oom``, ``CONSTRAINT_NONE``): the server did.

`describe_kill` is the ONE wording of a kill, used by the console's feed and pop-ups,
`diagnose`, `watch`'s notifications and the postmortem. `find_culprit` picks the container
with the largest growth over the minutes before the kill. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from incident_console.domain.durations import format_bytes, format_duration
from incident_console.domain.events import OomConstraint, OomKill
from incident_console.domain.oom_parse import container_id_from_memcg

__all__ = [
    "CONTAINER_LIMIT",
    "CULPRIT_WINDOW_S",
    "HOST",
    "SCOPES",
    "SHARED_LIMIT",
    "Culprit",
    "classify_scope",
    "cgroup_under",
    "describe_kill",
    "enrich_kill",
    "find_culprit",
    "kill_json",
    "kill_scope",
    "kill_where",
    "scope_label",
    "scope_sentence",
    "scope_tag",
    "memory_cgroup_from_proc",
]

CONTAINER_LIMIT = "container-limit"
SHARED_LIMIT = "shared-limit"
HOST = "host"
SCOPES = (CONTAINER_LIMIT, SHARED_LIMIT, HOST)
#: How far back before a kill growth is measured to name the culprit.
CULPRIT_WINDOW_S = 300.0
#: Growth below this is noise (page cache, a request's buffers), not a culprit.
CULPRIT_MIN_GROWTH = 1 << 20


def _norm(path: str) -> str:
    path = (path or "").strip()
    return path.rstrip("/") or ("/" if path else "")


def cgroup_under(path: str, ancestor: str) -> bool:
    """True when cgroup `path` is `ancestor` itself or lies below it."""
    path, ancestor = _norm(path), _norm(ancestor)
    if not path or not ancestor:
        return False
    return ancestor == "/" or path == ancestor or path.startswith(ancestor + "/")


def classify_scope(constraint: OomConstraint, oom_memcg: str, task_memcg: str) -> str:
    """The scope of a kill from what the kernel printed ('' when it says too little).

    Args:
        constraint: LIMIT (a cgroup's limit), GLOBAL (the host) or UNKNOWN.
        oom_memcg: The cgroup whose limit ran out (summary ``oom_memcg=`` or Task-in's limit).
        task_memcg: The victim's cgroup.
    """
    if constraint is OomConstraint.GLOBAL:
        return HOST
    if constraint is not OomConstraint.LIMIT:
        return ""
    oom, task = _norm(oom_memcg), _norm(task_memcg)
    if oom == "/":
        return HOST  # the root cgroup's "limit" is the machine
    if not oom or not task or oom == task:
        # A cgroup limit, and nothing says it is anyone's but the victim's own.
        return CONTAINER_LIMIT
    own = container_id_from_memcg(task)
    if own:
        # The container's own limit, or one inside it (docker-in-docker, a sub-scope); a
        # limit that names no container, or another one, is not its own.
        return CONTAINER_LIMIT if own == container_id_from_memcg(oom) else SHARED_LIMIT
    return SHARED_LIMIT if cgroup_under(task, oom) else CONTAINER_LIMIT


def kill_scope(kill: OomKill) -> str:
    """A kill's scope: its own, else from its constraint (records of older journals, counters)."""
    if kill.scope:
        return kill.scope
    if kill.constraint is OomConstraint.GLOBAL:
        return HOST
    if kill.constraint is OomConstraint.LIMIT:
        return classify_scope(kill.constraint, kill.oom_memcg or kill.memcg, kill.task_memcg)
    return ""


@dataclass(frozen=True, slots=True)
class Culprit:
    """The container that grew most before a kill."""

    id: str
    growth_bytes: int
    window_s: float


def find_culprit(
    histories: Mapping[str, Iterable[tuple[float, int]]],
    kill_time: float,
    *,
    window_s: float = CULPRIT_WINDOW_S,
    members: Iterable[str] | None = None,
) -> Culprit | None:
    """The container with the largest memory growth over `window_s` before `kill_time`.

    Growth is the highest reading in the window minus the first one (a victim's memory falls
    at its kill; what it reached before counts). Readings after the kill are ignored.

    Args:
        histories: Per container id, its (time, memory used bytes) samples, oldest first.
        kill_time: When the kernel killed.
        window_s: How far back to look.
        members: Only these containers (those under the shared limit); None: all.

    Returns:
        The culprit, or None when no container grew by at least 1 MiB (or none has samples).
    """
    allowed = set(members) if members is not None else None
    best: Culprit | None = None
    if not math.isfinite(kill_time):
        return None
    for cid, samples in histories.items():
        if allowed is not None and cid not in allowed:
            continue
        window = [(t, used) for t, used in samples if kill_time - window_s <= t <= kill_time + 1.0]
        if len(window) < 2:
            continue
        first_t, first = window[0]
        growth = max(used for _, used in window) - first
        span = window[-1][0] - first_t
        if growth >= CULPRIT_MIN_GROWTH and (best is None or growth > best.growth_bytes):
            best = Culprit(cid, int(growth), span)
    return best


def kill_where(kill: OomKill) -> str:
    """The victim in a few words: service, container, short id, cgroup, or 'host'."""
    return (
        kill.service
        or kill.container
        or (kill.container_id[:12] if kill.container_id else "")
        or kill.task_memcg
        or kill.memcg
        or "host"
    )


def _process(kill: OomKill) -> str:
    if kill.pid > 0:
        return f"{kill.process or 'process'}[{kill.pid}]"
    return kill.process or "process unknown"


def _culprit_words(kill: OomKill) -> str:
    if kill.culprit_growth_bytes is None or not (kill.culprit or kill.culprit_id):
        return "culprit unknown (no memory samples from before the kill)"
    who = kill.culprit or kill.culprit_id[:12]
    over = format_duration(math.ceil(kill.culprit_window_s or 0)) if kill.culprit_window_s else ""
    grew = f"+{format_bytes(kill.culprit_growth_bytes)}" + (f" in {over}" if over else "")
    if kill.culprit_id and kill.culprit_id == kill.container_id:
        return f"it grew most itself ({grew})"
    return f"culprit {who} ({grew})"


def scope_label(kill: OomKill) -> str:
    """The scope in a word or two, for a column: limit, shared limit, host-wide, ?."""
    return {CONTAINER_LIMIT: "limit", SHARED_LIMIT: "shared limit", HOST: "host-wide"}.get(
        kill_scope(kill), "?"
    )


def scope_tag(kill: OomKill) -> str:
    """The scope for a feed row or a pop-up: its label, and for a kill that was not at the
    container's own limit what ran out and who grew ("host-wide: the server ran out ...")."""
    if kill_scope(kill) in (SHARED_LIMIT, HOST):
        return f"{scope_label(kill)}: {scope_sentence(kill)}"
    return scope_label(kill)


def scope_sentence(kill: OomKill) -> str:
    """What ran out and who grew, in words: the part of `describe_kill` after the victim.

    "at its own memory limit"; "the limit of /lab-host ran out (shared by 3 containers);
    culprit backend (+310.0 MiB in 5m)"; "the server ran out of memory; no container has a
    limit; culprit backend (+310.0 MiB in 5m)"; "which memory ran out is unknown".
    """
    scope = kill_scope(kill)
    if scope == CONTAINER_LIMIT:
        limit = f" {kill.oom_memcg}" if kill.oom_memcg and not kill.container else ""
        return f"at its own memory limit{limit}"
    if scope == SHARED_LIMIT:
        shared = f" (shared by {kill.sharing} containers)" if kill.sharing else " (shared)"
        return f"the limit of {kill.oom_memcg or 'a parent cgroup'} ran out{shared}; " + (
            _culprit_words(kill)
        )
    if scope == HOST:
        limits = ""
        if kill.any_limit is False:
            limits = "; no container has a limit"
        elif kill.any_limit:
            limits = "; some containers have limits, not enough"
        return f"the server ran out of memory{limits}; {_culprit_words(kill)}"
    return "which memory ran out is unknown"


def describe_kill(kill: OomKill, *, rss: bool = True) -> str:
    """One line that says what a kill was: the single wording every view uses.

    Examples:
        "OOM kill in backend: gunicorn[712] (anon-rss 250.0 MiB) at its own memory limit";
        "OOM kill in db: postgres[88]: the limit of /lab-host ran out (shared by 3
        containers); culprit backend (+310.0 MiB in 5m)"; "OOM kill in db: postgres[88]: the
        server ran out of memory; no container has a limit; culprit backend (+310.0 MiB in
        5m)".

    Args:
        kill: The kill.
        rss: Say the victim's anon-rss.
    """
    head = f"OOM kill in {kill_where(kill)}: {_process(kill)}"
    size = f" (anon-rss {format_bytes(kill.anon_rss_bytes)})" if rss and kill.anon_rss_bytes else ""
    sentence = scope_sentence(kill)
    sep = " " if kill_scope(kill) == CONTAINER_LIMIT else ": "
    text = f"{head}{size}{sep}{sentence}"
    if kill.detail:
        text += f" ({kill.detail})"
    return text


def kill_json(kill: OomKill) -> dict[str, Any]:
    """The `victim` / `culprit` / `scope` keys of a kill, as `diagnose --json` prints them."""
    scope = kill_scope(kill)
    culprit: dict[str, Any] | None = None
    if scope in (SHARED_LIMIT, HOST) and (kill.culprit or kill.culprit_id):
        culprit = {
            "container_id": kill.culprit_id,
            "container": kill.culprit,
            "growth_bytes": kill.culprit_growth_bytes,
            "window_s": kill.culprit_window_s,
        }
    return {
        "scope": scope or None,
        "victim": {
            "container_id": kill.container_id,
            "container": kill.container,
            "service": kill.service,
            "project": kill.project,
            "process": kill.process,
            "pid": kill.pid,
            "cgroup": kill.task_memcg or kill.memcg,
        },
        "culprit": culprit,
        "limit_cgroup": kill.oom_memcg or None,
        "sharing": kill.sharing,
        "any_limit": kill.any_limit,
        "summary": describe_kill(kill),
    }


def memory_cgroup_from_proc(text: str) -> str:
    """The memory cgroup in a ``/proc/<pid>/cgroup`` text ('' when none is named).

    cgroup v1 names it on its ``N:memory:/path`` line (or a joint ``memory,...`` one), v2 on
    ``0::/path``. Reading it from the container's init pid finds the container's cgroup under
    any ``cgroup_parent`` or driver, where a path guessed from the driver would not.
    """
    if not isinstance(text, str):
        return ""
    unified = ""
    for line in text.splitlines()[:64]:
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if "memory" in controllers.split(","):
            return path.strip()
        if controllers == "" and not unified:
            unified = path.strip()
    return unified


def enrich_kill(
    kill: OomKill,
    *,
    histories: Mapping[str, Iterable[tuple[float, int]]],
    cgroups: Mapping[str, str],
    names: Mapping[str, str],
    limited: Iterable[str],
    window_s: float = CULPRIT_WINDOW_S,
) -> OomKill:
    """A kill with its culprit, how many containers shared the limit, and whether any had one.

    For `shared-limit` the culprit is looked for among the containers under the limit's cgroup
    (`cgroups`: container id -> its memory cgroup); for `host`, among all. A container-limit
    kill is returned as it is: its culprit is the container itself.

    Args:
        kill: The attributed kill.
        histories: Per container id, its (time, memory used) samples.
        cgroups: Per container id, its memory cgroup (from /proc/<pid>/cgroup), where known.
        names: Per container id, the name to show (compose service or container name).
        limited: Ids of the containers that have a memory limit of their own.
        window_s: How far before the kill growth counts.
    """
    scope = kill_scope(kill)
    if scope not in (SHARED_LIMIT, HOST):
        return kill
    members: list[str] | None = None
    sharing: int | None = kill.sharing
    if scope == SHARED_LIMIT and kill.oom_memcg:
        members = [cid for cid, path in cgroups.items() if cgroup_under(path, kill.oom_memcg)]
        if kill.container_id and kill.container_id not in members:
            members.append(kill.container_id)  # the victim is under it, whatever was read
        sharing = len(members) if cgroups else None
    culprit = find_culprit(histories, kill.time, window_s=window_s, members=members)
    limits = set(limited)
    any_limit: bool | None = kill.any_limit
    if names:
        pool = members if members is not None else list(names)
        any_limit = any(cid in limits for cid in pool)
    return dataclasses.replace(
        kill,
        scope=scope,
        sharing=sharing,
        any_limit=any_limit,
        culprit_id=culprit.id if culprit else "",
        culprit=names.get(culprit.id, culprit.id[:12]) if culprit else "",
        culprit_growth_bytes=culprit.growth_bytes if culprit else None,
        culprit_window_s=culprit.window_s if culprit else None,
    )

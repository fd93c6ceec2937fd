"""A limit from nothing: what the server has left for a service that has no limit.

The seed's server had no container limit at all ("Memory limit: unlimited -> 512MB" was the
fix). A limit for the service that grew must fit what the others need: the bound (the host's
RAM, or the limit a group of containers shares, e.g. a `cgroup_parent`), minus what each other
container of the group was seen to use at most, minus what the host itself uses beyond its
containers. The memory rules (own, shared or no limit) are domain/memory.py's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from incident_console.domain.advice import LIMIT_STEP
from incident_console.domain.durations import format_bytes
from incident_console.domain.memory import (
    LimitScope,
    ServerBudget,
    limit_or_zero,
    limit_scope,
    server_budget,
)
from incident_console.monitor.state import ContainerView, HostState
from incident_console.runbook.units import format_size

__all__ = ["culprit", "fitting_limit", "other_limits", "service_budget"]

#: A limit proposed for another service: the most it was seen to use plus this share.
OTHER_HEADROOM = 0.25
#: Below this left for the service, no limit from the budget is proposed: the server is full.
MIN_BUDGET = 64 << 20


def _sampled_limit(view: ContainerView) -> int:
    latest = view.latest
    return limit_or_zero(latest.memory_limit_bytes) if latest else 0


def _peak(view: ContainerView) -> int:
    return max((s.memory_used_bytes for s in view.samples), default=0)


def _group(state: HostState, view: ContainerView, mine: set[str]) -> list[ContainerView]:
    """The other live containers that share `view`'s bound."""
    live = [v for v in state.containers.values() if not v.gone and v.info.id not in mine]
    parent = view.info.cgroup_parent
    if limit_scope(view.info.memory_limit_bytes, _sampled_limit(view)) is LimitScope.SHARED:
        if parent:
            return [v for v in live if v.info.cgroup_parent == parent]
        bound = _sampled_limit(view)
        return [v for v in live if not v.info.memory_limit_bytes and _sampled_limit(v) == bound]
    return live


def service_budget(
    state: HostState, views: Sequence[ContainerView]
) -> tuple[ServerBudget | None, list[ContainerView], str]:
    """The budget of the service whose containers are `views` (live first), when it has no
    limit of its own; (None, [], why) when it has one or nothing is measured.

    Returns:
        (budget, the other containers of the group, why there is no budget).
    """
    live = [v for v in views if not v.gone]
    if not live:
        return None, [], "no running container of the service"
    view = live[0]
    own, sampled = view.info.memory_limit_bytes, _sampled_limit(view)
    scope = limit_scope(own, sampled)
    if scope is LimitScope.OWN:
        return None, [], "the service has a limit of its own"
    group = _group(state, view, {v.info.id for v in views})
    others = {v.info.name: _peak(v) for v in group}
    if scope is LimitScope.SHARED:
        parent = view.info.cgroup_parent
        where = f"cgroup parent {parent}" if parent else "an ancestor cgroup"
        how = f"the limit {view.info.name} shares with {len(group)} other container(s), {where}"
        return server_budget(sampled, how, others), group, ""
    memory = state.memory[-1] if state.memory else None
    if memory is None:
        return None, group, "the host's memory is not measured yet"
    in_containers = sum(v.latest.memory_used_bytes for v in state.containers.values()
                        if not v.gone and v.latest)  # fmt: skip
    host = memory.total_bytes - memory.available_bytes - in_containers
    return server_budget(memory.total_bytes, "the host's RAM", others, host), group, ""


def fitting_limit(budget: ServerBudget) -> int:
    """The largest limit (a multiple of 32 MiB) within what the budget leaves; 0 when that is
    less than :data:`MIN_BUDGET` (the server is full: a limit would only kill the service)."""
    free = budget.free_bytes
    if free < MIN_BUDGET:
        return 0
    return max(math.floor(free / LIMIT_STEP), 1) * LIMIT_STEP


def other_limits(group: Sequence[ContainerView]) -> str:
    """'db 192M (seen at most 141.0 MiB), redis 32M (...)': a limit for each other container
    of the group that has none, from the most it was seen to use plus a quarter."""
    parts: list[str] = []
    for view in sorted(group, key=lambda v: (-_peak(v), v.info.name)):
        if view.info.memory_limit_bytes:
            continue
        peak = _peak(view)
        if peak <= 0:
            continue
        limit = max(math.ceil(peak * (1 + OTHER_HEADROOM) / LIMIT_STEP), 1) * LIMIT_STEP
        name = view.info.service or view.info.name
        parts.append(f"{name} {format_size(limit)} (seen at most {format_bytes(peak)})")
    return ", ".join(parts)


#: Seconds before a kill over which the containers' growth is compared.
CULPRIT_WINDOW_S = 300.0
#: Less growth than this is no culprit: the kills then name the service as before.
MIN_GROWTH = 16 << 20


#: A rise between two samples smaller than this is noise (page cache, allocator), not growth.
NOISE = 512 << 10
#: A container's rises this soon after it (re)started are its refill, not growth.
REFILL_S = 30.0


def _growth(view: ContainerView, since: float, until: float) -> int:
    """What the container grew over [since, until]: the sum of its rises between samples.

    A sum, not last minus first: a leaking backend whose workers are killed and respawned
    saws up and down, and its net change over a kill loop is nothing. Rises within
    :data:`REFILL_S` of a (re)start are left out: a db killed and restarted by docker fills
    its buffers again, which is recovery, not the cause.
    """
    starts = [e.time for e in view.events if e.action in ("start", "restart")]
    if view.info.started_at:
        starts.append(view.info.started_at)
    samples = [s for s in view.samples if since <= s.time <= until]
    grew = 0
    for a, b in zip(samples, samples[1:], strict=False):
        rise = b.memory_used_bytes - a.memory_used_bytes
        if rise > NOISE and not any(0 <= b.time - t <= REFILL_S for t in starts):
            grew += rise
    return grew


def culprit(state: HostState, project: str) -> tuple[str, str] | None:
    """The service that grew while a limit it shares (or the host's RAM) ran out, and why.

    A kill at a container's own limit names that container. A kill where the limit belongs
    to an ancestor or to nobody names only the victim: the kernel killed whatever scored
    highest, often not the one that grew. The culprit is the service whose containers rose
    the most over the minutes before those kills (over every sample seen, when the kills came
    before the console's samples). None when no kill was of that kind or nothing grew.
    """

    def mine(cid: str) -> bool:
        view = state.containers.get(cid)
        return view is not None and (not project or view.info.project == project)

    shared = [
        k for k in state.oom_kills
        if mine(k.container_id)
        and limit_scope(state.containers[k.container_id].info.memory_limit_bytes)
        is not LimitScope.OWN
    ]  # fmt: skip
    if not shared:
        return None
    # The victims' group: the containers under their cgroup parent, else the host's (in the
    # project when one is chosen).
    parents = {state.containers[k.container_id].info.cgroup_parent for k in shared}
    members = [
        v for v in state.containers.values()
        if (not project or v.info.project == project)
        and (v.info.cgroup_parent in parents if all(parents) else True)
    ]  # fmt: skip
    rises: dict[str, int] = {}
    for view in members:
        grew = sum(_growth(view, k.time - CULPRIT_WINDOW_S, k.time) for k in shared)
        if not grew:
            grew = _growth(view, 0.0, float("inf"))
        service = view.info.service or view.info.name
        rises[service] = rises.get(service, 0) + max(grew, 0)
    if not rises or max(rises.values()) < MIN_GROWTH:
        return None
    service = max(rises, key=lambda s: (rises[s], s))
    victims: dict[str, int] = {}
    for kill in shared:
        victims[kill.service or "?"] = victims.get(kill.service or "?", 0) + 1
    killed = ", ".join(f"{s} {n}" for s, n in sorted(victims.items(), key=lambda x: -x[1]))
    # Under a cgroup parent the group's limit ran out; without one, the server's RAM.
    ran_out = "a limit it shares" if all(parents) else "the server's memory"
    return service, (
        f"it grew the most (+{format_bytes(rises[service])}) while {ran_out} ran out: "
        f"the kernel killed {killed} (no container had a limit of its own)"
    )

"""The fix the runbook proposes: workers, memory limit and max-requests, each with its reason.

One proposal from everything the monitor has seen of the service (`domain.advice.propose_fix`
on the evidence of :mod:`incident_console.runbook.recycling`). With no limit anywhere (the
seed's server), the limit must also fit what the server has left for the service
(:mod:`incident_console.runbook.budget`): then the workers and max-requests are sized to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol

from incident_console.domain.advice import FixEvidence, FixProposal, propose_fix
from incident_console.monitor.state import ContainerView, HostState
from incident_console.runbook.budget import fitting_limit, other_limits, service_budget
from incident_console.runbook.recycling import SinceStart, measure
from incident_console.runbook.units import format_size, parse_size

MIB = 1024 * 1024


class Setter(Protocol):
    """The variables being filled in (runbook.variables.Variables)."""

    def set(self, name: str, value: object, why: str) -> None: ...


def propose(
    v: Setter,
    state: HostState,
    views: list[ContainerView],
    overrides: Mapping[str, str],
    skip_paths: list[str],
    since_start: SinceStart | None = None,
) -> None:
    """Set workers, mem_limit, max_requests and jitter: one proposal that holds together.

    Args:
        v: the variables being filled in.
        state: the monitor's state.
        views: the service's containers (live first, then removed ones: still evidence).
        overrides: `--set` values (workers and mem_limit are kept as given).
        skip_paths: request paths that are probes, not traffic.
        since_start: the live container's requests since it started.
    """
    if not views:
        project = overrides.get("project", "")
        why = (
            f"no running container of the service in project {project} to measure"
            if project
            else "no container of the service to measure (choose the project first)"
        )
        for name in ("current_workers", "worker_peak", "workers", "max_requests"):
            v.set(name, "", why)
        v.set("max_requests_jitter", "", why)
        v.set("mem_limit", "", why)
        v.set("other_limits", "", why)
        return
    evidence = measure(state, views, skip_paths=skip_paths, since_start=since_start)
    workers = overrides.get("workers", "")
    limit = overrides.get("mem_limit", "")
    chosen = int(workers) if workers.isdigit() and int(workers) > 0 else None
    proposal = propose_fix(
        evidence, workers=chosen, limit_bytes=parse_size(limit) if limit else None
    )
    if not limit and not evidence.limit_bytes:
        proposal = _fit_server(v, state, views, evidence, proposal, chosen)
    else:
        v.set("other_limits", "", "the service has a limit: the others are left as they are")
    v.set(
        "current_workers",
        evidence.current_workers or "",
        f"{evidence.current_workers} worker processes seen (master: {evidence.master_how}, "
        f"{evidence.master_bytes // MIB} MiB)"
        if evidence.current_workers
        else "no gunicorn worker processes measured yet",
    )
    v.set(
        "worker_peak",
        format_size(evidence.peak_bytes) if evidence.peak_bytes else "",
        f"largest RSS a worker reached: {evidence.peak_how}"
        if evidence.peak_bytes
        else "no worker measured yet",
    )
    v.set("workers", proposal.workers or "", proposal.why_workers)
    v.set("max_requests", proposal.max_requests or "", proposal.why_max_requests)
    v.set(
        "max_requests_jitter",
        proposal.jitter or "",
        "about a tenth more, at random, so workers do not all restart at once"
        if proposal.jitter
        else proposal.why_max_requests,
    )
    v.set("mem_limit", format_size(proposal.limit_bytes) if proposal.limit_bytes else "",
          proposal.why_limit)  # fmt: skip


def _fit_server(
    v: Setter,
    state: HostState,
    views: list[ContainerView],
    evidence: FixEvidence,
    proposal: FixProposal,
    workers: int | None,
) -> FixProposal:
    """No limit anywhere: the proposal's limit must fit what the server has left (its RAM,
    or the limit its group shares, minus the other containers and the host)."""
    service = views[0].info.service or views[0].info.name
    budget, group, no_budget = service_budget(state, views)
    v.set("other_limits", other_limits(group), (
        "the most each other container was seen to use, plus a quarter"
        if group else no_budget or "no other container in the group"
    ))  # fmt: skip
    if budget is None:
        return proposal
    cap = fitting_limit(budget)
    server = budget.describe(service)
    v.set("server_memory", format_size(budget.free_bytes), f"no limit anywhere: {server}")
    if not proposal.limit_bytes:
        return proposal
    if cap == 0:
        return replace(proposal, why_limit=f"{proposal.why_limit}; but the server is full "
                       f"({server}): limit the other services first")  # fmt: skip
    if proposal.limit_bytes <= cap:
        return replace(proposal, why_limit=f"{proposal.why_limit}; it fits the server: {server}")
    fitted = propose_fix(replace(evidence, limit_bytes=cap), workers=workers)
    if not fitted.limit_bytes:
        return proposal
    why = (
        f"no limit anywhere; the {format_size(proposal.limit_bytes)} the workers would need "
        f"is more than the server has: {server}; {format_size(cap)} is the most it can give"
    )
    if fitted.limit_bytes > cap:  # even one worker does not fit: propose_fix raised it
        why += f", and {fitted.why_limit}"
    else:
        why += f": {fitted.holds}"
    return replace(fitted, why_limit=why)

"""The postmortem's summary: what happened, the impact window, the likely cause, remediation.

Each line formats the facts; none computes its own: "no OOM kill since X" and the count of
kills after remediation are read from the same `kills_after` the kill table marks.
"""

from __future__ import annotations

from incident_console.domain.durations import format_bytes
from incident_console.report.model import IncidentFacts, Kill
from incident_console.report.text import duration, plural, utc


def likely_cause(facts: IncidentFacts) -> str:
    """One sentence naming the most common kind of kill, where, and against which limit."""
    if not facts.kills:
        return "No OOM kill is in the journal; the timeline below is all there is."
    groups: dict[tuple[str, str, str], list[Kill]] = {}
    for kill in facts.kills:
        groups.setdefault((kill.service, kill.container or "the host", kill.constraint), []).append(
            kill
        )
    (service, container, constraint), kills = max(
        groups.items(),
        key=lambda item: (sum(not k.replayed for k in item[1]), len(item[1]), item[0]),
    )
    where = f"the {service} service ({container})" if service else container
    processes = ", ".join(sorted({k.process for k in kills if k.process})) or "its"
    workers = "processes"
    if any("gunicorn" in k.sources for k in kills):
        workers = "processes (gunicorn workers, as gunicorn's own log confirms)"
    elif any(k.process == "gunicorn" for k in kills):
        workers = "processes (gunicorn workers)"
    rss = [k.anon_rss_bytes for k in kills if k.anon_rss_bytes]
    peak = f", anon-rss up to {format_bytes(max(rss))}" if rss else ""
    count = f"{plural(len(kills), 'kill')}{peak}"
    shared = [k for k in kills if k.scope == "shared-limit" and k.scope_text]
    if shared:
        # Not the container's own limit: say which ran out and who grew, as every view does.
        return (
            f"In {where}, `{processes}` {workers} were OOM-killed ({count}): "
            f"{shared[-1].scope_text}."
        )
    if constraint == "global":
        return (
            f"The host ran out of memory as a whole (global OOM): the kernel killed `{processes}` "
            f"{workers} of {where} ({count}). A container limit does not prevent this; "
            "the host needs less total memory in use, more swap or more RAM."
        )
    if constraint == "limit":
        limit = max(k.limit_bytes for k in kills)
        at = f"its {format_bytes(limit)} memory limit" if limit else "its memory limit"
        return (
            f"In {where}, `{processes}` {workers} were OOM-killed at {at} ({count}): "
            "the workers together need more memory than the limit allows."
        )
    return f"The kernel OOM-killed `{processes}` {workers} of {where} ({count})."


def _leak_sentence(facts: IncidentFacts) -> str:
    """What the console measured per route, after the cause: the request that grew the workers."""
    if not facts.likely_leak:
        return ""
    return f" The console tied the workers' growth to requests: {facts.likely_leak}."


def _what_happened(facts: IncidentFacts) -> list[str]:
    hosts = ", ".join(facts.hosts) or "the host"
    project = f" of project `{facts.project}`" if facts.project else ""
    if not facts.kills:
        return [f"- **What happened:** no OOM kill{project} on {hosts} is in the journal."]
    replayed = sum(k.replayed for k in facts.kills)
    names = ", ".join(dict.fromkeys(k.container or "the host" for k in facts.kills))
    what = f"{plural(len(facts.kills), 'OOM kill')}{project} on {hosts} ({names})"
    if replayed:
        what += f"; {replayed} of them read from the kernel log at start"
    lines = [f"- **What happened:** {what}."]
    if not facts.other_projects:
        return lines
    why = facts.project_reason
    others = ", ".join(
        (f"`{o.name}`" if o.name else "containers of no known project")
        + f" ({plural(len(o.kills), 'kill')})"
        for o in facts.other_projects
    )
    lines += [
        f"- **Affected project:** `{facts.project or '?'}` ({why}).",
        f"- **Other projects hit on this host:** {others}: listed under OOM kills, kept out of "
        "the impact window and the timeline.",
    ]
    return lines


def _window(facts: IncidentFacts) -> str:
    w = facts.window
    if w.start is None or w.end is None:
        return "- **Impact window:** no OOM kill, unhealthy container or failed probe was recorded."
    after = "; still affected when the journal ends" if w.still_affected else ""
    span = (
        f"at {utc(w.start)}"  # one moment: a single kill, nothing else went bad
        if utc(w.start) == utc(w.end)
        else f"{utc(w.start)} to {utc(w.end)} ({duration(w.end - w.start)})"
    )
    return f"- **Impact window:** {span}{after}: {'; '.join(w.evidence)}."


def _remediation(facts: IncidentFacts) -> list[str]:
    lines = []
    if facts.restarts:
        restarts = ", ".join(
            f"{r.target or '?'} at {utc(r.time)} by {r.who}" for r in facts.restarts
        )
        lines.append(f"- **Restarts (not remediation):** {restarts}.")
    if facts.remediation_at is None or facts.remediation_done is None:
        return [*lines, "- **Remediation:** none recorded in the journal."]
    done = ", ".join(f"{r.what} ({r.state})" for r in facts.remediation)
    undone = [u for u in facts.undos if u.time >= facts.remediation_at]
    undo = "; undone: " + ", ".join(f"{u.what} at {utc(u.time)}" for u in undone) if undone else ""
    lines.append(
        f"- **Remediation:** {done}, {utc(facts.remediation_at)} to "
        f"{utc(facts.remediation_done)}{undo}."
    )
    after = facts.kills_after
    if after:
        outcome = f"**{plural(len(after), 'OOM kill')} after remediation** at " + ", ".join(
            utc(k.time) for k in after
        )
    else:
        outcome = f"no OOM kill since {utc(facts.remediation_done)} (to {utc(facts.end)})"
    failed = facts.failed_verifications
    if failed:
        outcome += "; " + "; ".join(
            f"the verify step `{s.step}` failed ({s.verdict or 'no verdict'})" for s in failed
        )
    lines.append(f"- **Outcome:** {outcome}.")
    return lines


def _runbook_line(facts: IncidentFacts) -> list[str]:
    if not facts.steps:
        return []
    ran = facts.steps_run
    passed = sum(s.state == "passed" for s in ran)
    skipped = sum(s.state == "skipped" for s in facts.steps)
    refused = sum(s.refused for s in facts.steps)
    undone = sum(s.undone_at is not None for s in facts.steps)
    parts = [f"{plural(len(ran), 'step')} run ({passed} passed, {len(ran) - passed} failed)"]
    parts += [
        f"{n} {word}"
        for n, word in ((skipped, "skipped"), (refused, "refused"), (undone, "undone"))
        if n
    ]
    return [f"- **Runbook:** {', '.join(facts.runbooks) or '?'}: {', '.join(parts)}."]


def summary(facts: IncidentFacts) -> list[str]:
    """The summary section's lines."""
    return [
        "## Summary",
        "",
        *_what_happened(facts),
        _window(facts),
        f"- **Likely cause:** {likely_cause(facts)}{_leak_sentence(facts)}",
        *_remediation(facts),
        *_runbook_line(facts),
    ]

"""Derive an incident's facts once from its journal records (pure: no I/O, no clock).

The affected project is the compose project whose containers the kills hit (projects.py says
how one is chosen when several were); other projects on the host are named as such and kept
out of the impact window, the timeline and the charts. Everything is a function of the records alone:
the same journal, in any order, gives the same facts.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from incident_console.domain.leak import leak_followup
from incident_console.domain.redact import redact_record
from incident_console.report.kills import deduplicate
from incident_console.report.model import (
    IncidentFacts,
    Kill,
    MemoryPeriod,
    OtherProject,
    Window,
    when,
)
from incident_console.report.projects import (
    Container,
    acted_on,
    affected_project,
    containers_of,
    limit_of,
    project_of,
)
from incident_console.report.steps import derive_steps
from incident_console.report.timeline import build_timeline

#: The monitor's journal note naming a route (monitor/leaks.py LEAK_NOTE; report reads no monitor).
LEAK_NOTE = "likely leak"
#: Health values that mean users are affected, and those that mean recovered.
BAD_STATES = ("unhealthy", "exited", "dead", "restarting")
GOOD_STATES = ("healthy", "running")
#: Charts show at most this many containers.
MAX_CHARTED = 3

__all__ = ["derive_facts"]


def _window(
    records: Sequence[dict[str, Any]],
    kills: Sequence[Kill],
    project_of_record: dict[int, str],
    project: str,
    journal_end: float,
) -> Window:
    """First to last sign of trouble: a kill, an unhealthy state, a failed probe.

    A bad state lasts until it recovers, so the window runs to the recovery (or to the
    journal's end, still affected) when that is later than the last kill.
    """
    bad: list[float] = [k.time for k in kills]
    bad_since: dict[str, float] = {}
    counts: Counter[str] = Counter()
    containers: dict[str, None] = {k.container or "the host": None for k in kills}
    for record in records:
        kind = record.get("kind")
        if kind == "probe":
            key = f"probe {record.get('url', '')}"
            status = record.get("status")
            is_bad = not (isinstance(status, int) and 200 <= status < 400)
        elif kind == "health" and project_of_record.get(id(record)) == project:
            name = str(record.get("name") or record.get("service") or "?")
            key = f"health {name}"
            new = record.get("new")
            if new not in BAD_STATES and new not in GOOD_STATES:
                continue  # "starting" says nothing yet
            is_bad = new in BAD_STATES
            if is_bad:
                containers.setdefault(name)
        else:
            continue
        t = when(record)
        if is_bad:
            counts[key] += 1
            bad.append(t)
            bad_since.setdefault(key, t)
        elif key in bad_since:
            del bad_since[key]
            bad.append(t)  # trouble lasted until now
    if not bad:
        return Window(None, None, False, (), ())
    start, end = min(bad), max(bad)
    if bad_since:
        end = max(end, journal_end)
    evidence = []
    if kills:
        names = ", ".join(sorted({k.container or "the host" for k in kills}))
        evidence.append(f"{len(kills)} OOM kill{'s' if len(kills) != 1 else ''} in {names}")
    for key, n in sorted(counts.items()):
        times = f"{n} time{'s' if n != 1 else ''}"
        evidence.append(
            f"{key} failed {times}" if key.startswith("probe") else f"{key[7:]} unhealthy {times}"
        )
    return Window(start, end, bool(bad_since), tuple(evidence), tuple(containers))


def _memory(
    records: Sequence[dict[str, Any]],
    containers: dict[str, Container],
    project: str,
    kills: Sequence[Kill],
) -> dict[str, list[tuple[float, int, int]]]:
    memory: dict[str, list[tuple[float, int, int]]] = {}
    for record in records:
        if record.get("kind") != "sample":
            continue
        used = record.get("memory_used_bytes")
        cid = str(record.get("id", ""))
        known = containers.get(cid)
        if (
            not isinstance(used, int)
            or isinstance(used, bool)
            or (known.project if known else "") != project
        ):
            continue
        # Keyed by name: a recreated container (new id, same compose name) continues the line.
        name = (known.name if known else "") or cid[:12]
        limit = limit_of(record.get("memory_limit_bytes")) or (known.limit_bytes if known else 0)
        memory.setdefault(name, []).append((when(record), used, limit))
    return memory


def _charted(
    memory: dict[str, list[tuple[float, int, int]]], kills: Sequence[Kill]
) -> tuple[str, ...]:
    killed = [k.container for k in kills if k.container in memory]
    if killed:
        return tuple(dict.fromkeys(killed))[:MAX_CHARTED]
    peaks = sorted(
        ((max(p[1] for p in pts), n) for n, pts in memory.items()), key=lambda i: (-i[0], i[1])
    )
    return tuple(name for _, name in peaks[:MAX_CHARTED])


def _periods(
    memory: dict[str, list[tuple[float, int, int]]],
    charted: Sequence[str],
    start: float,
    end: float,
    done: float | None,
    undone: float | None,
) -> tuple[MemoryPeriod, ...]:
    if done is None:
        bounds = [("Whole journal (no remediation recorded)", start, end + 1)]
    else:
        after_end = undone if undone is not None else end + 1
        bounds = [("Before remediation", start, done), ("After remediation", done, after_end)]
        if undone is not None:
            bounds.append(("After the undo", undone, end + 1))
    return tuple(
        MemoryPeriod(
            title,
            lo,
            hi,
            tuple((n, tuple(p for p in memory.get(n, []) if lo <= p[0] < hi)) for n in charted),
        )
        for title, lo, hi in bounds
    )


def derive_facts(records: Sequence[dict[str, Any]], *, skipped_lines: int = 0) -> IncidentFacts:
    """The facts of an incident from its journal records (in any order).

    Args:
        records: the journal's records (not yet redacted: this redacts them again).
        skipped_lines: torn or corrupt lines the reader skipped, to say so.
    """
    ordered = sorted(
        (redact_record(r) for r in records if isinstance(r, dict)),
        # A total order (ties broken by the record's text): any order in, the same order out.
        key=lambda r: (when(r), str(r.get("kind", "")), json.dumps(r, sort_keys=True, default=str)),
    )
    start, end = (when(ordered[0]), when(ordered[-1])) if ordered else (0.0, 0.0)
    hosts = tuple(
        dict.fromkeys(
            str(r["host"]) for r in ordered if isinstance(r.get("host"), str) and r["host"]
        )
    )
    containers = containers_of(ordered)
    projects = sorted({c.project for c in containers.values() if c.project})
    project_of_record: dict[int, str] = {}
    bad_health: Counter[str] = Counter()
    for record in ordered:
        if record.get("kind") in ("health", "container_event", "log"):
            known = containers.get(str(record.get("id") or ""))
            project = (
                known.project
                if known
                else project_of(
                    str(record.get("name") or record.get("container") or ""),
                    str(record.get("service") or ""),
                    projects,
                )
            )
            project_of_record[id(record)] = project
            if record.get("kind") == "health" and record.get("new") in BAD_STATES:
                bad_health[project] += 1
    all_kills = deduplicate(ordered, containers)
    project, reason = affected_project(all_kills, acted_on(ordered, containers), bad_health)
    kills = tuple(k for k in all_kills if k.project == project)
    others: dict[str, list[Kill]] = {}
    for kill in all_kills:
        if kill.project != project:
            others.setdefault(kill.project, []).append(kill)
    steps = derive_steps(ordered, end)
    remediation_at = min((r.started for r in steps.remediation), default=None)
    remediation_done = max((r.finished for r in steps.remediation), default=None)
    undone = None
    if remediation_done is not None:
        undone = next((u.time for u in steps.undos if u.time >= remediation_done), None)
    memory = _memory(ordered, containers, project, kills)
    charted = _charted(memory, kills)
    timeline, hidden = build_timeline(
        ordered, kills, lambda r: project_of_record.get(id(r), "") == project
    )
    leak, leak_followups = _likely_leak(ordered, containers, project)
    return IncidentFacts(
        records=len(ordered),
        skipped_lines=skipped_lines,
        start=start,
        end=end,
        hosts=hosts,
        project=project,
        project_reason=reason,
        kills=kills,
        other_projects=tuple(OtherProject(n, tuple(k)) for n, k in sorted(others.items())),
        window=_window(ordered, kills, project_of_record, project, end),
        remediation=steps.remediation,
        remediation_at=remediation_at,
        remediation_done=remediation_done,
        kills_after=tuple(
            k for k in kills if remediation_done is not None and k.time >= remediation_done
        ),
        restarts=steps.restarts,
        undos=steps.undos,
        steps=steps.steps,
        failed_verifications=tuple(
            s for s in steps.steps if s.kind == "verify" and s.ran and s.state == "failed"
        ),
        runbooks=steps.runbooks,
        followups=tuple(dict.fromkeys((*leak_followups, *steps.followups))),
        other_commands=steps.other_commands,
        charted=charted,
        memory=_periods(memory, charted, start, end, remediation_done, undone),
        timeline=timeline,
        timeline_hidden=hidden,
        likely_leak=leak,
    )


def _likely_leak(
    ordered: Sequence[dict[str, Any]], containers: dict[str, Container], project: str
) -> tuple[str, tuple[str, ...]]:
    """The last 'likely leak' note of the project's containers, and its follow-up."""
    last: dict[str, Any] | None = None
    for record in ordered:
        data = record.get("data")
        if record.get("kind") != "note" or record.get("what") != LEAK_NOTE:
            continue
        if not isinstance(data, dict) or not isinstance(data.get("summary"), str):
            continue
        known = containers.get(str(data.get("container_id") or ""))
        if project and known is not None and known.project != project:
            continue
        last = data
    if last is None:
        return "", ()
    where = str(last.get("container") or last.get("service") or "")
    summary = f"{where}: {last['summary']}" if where else str(last["summary"])
    route, size = last.get("route"), last.get("bytes_per_request")
    if isinstance(route, str) and isinstance(size, int | float):
        return summary, (leak_followup(route, float(size)),)
    return summary, ()

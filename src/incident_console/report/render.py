"""The postmortem as Markdown: every section formats the one :class:`IncidentFacts`.

:func:`render_report` is a pure function of the journal's records: no clock, no host, no
terminal size, so the same journal gives the same report byte for byte. No section computes a
fact of its own: the summary's kill counts and the kill table read the same kill list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from incident_console.domain.durations import format_bytes
from incident_console.report.charts import memory_chart
from incident_console.report.facts import derive_facts
from incident_console.report.model import (
    MIN_CHART_SAMPLES,
    IncidentFacts,
    Kill,
    MemoryPeriod,
    StepRun,
    when,
)
from incident_console.report.summary import summary
from incident_console.report.text import duration, hms, plural, redact, table, utc
from incident_console.transport.base import command_line


def _limit(kill: Kill) -> str:
    if kill.scope == "shared-limit":
        return "shared limit (a parent cgroup's)"
    if kill.constraint == "global":
        return "global (host out of memory)"
    if kill.constraint == "limit":
        return f"limit {format_bytes(kill.limit_bytes)}" if kill.limit_bytes else "limit"
    return "unknown"


def _timeline(facts: IncidentFacts) -> list[str]:
    lines = ["## Timeline (UTC)", ""]
    if not facts.timeline:
        return [*lines, "Nothing notable was recorded."]
    many_hosts = len(facts.hosts) > 1
    rows = []
    for row in facts.timeline:
        text = row.text
        if row.count > 1:
            text += f" ×{row.count}"
        if row.until is not None and round(row.until) != round(row.time):
            text += f" (to {hms(row.until)})"
        host = f"{row.host} " if many_hosts and row.host else ""
        rows.append((utc(row.time, "%Y-%m-%d %H:%M:%S"), host + text))
    lines += table(("time (UTC)", "what"), rows)
    if facts.timeline_hidden:
        lines += [
            "",
            f"({facts.timeline_hidden} more entries not listed; the journal has them all)",
        ]
    return lines


def _kills_table(facts: IncidentFacts) -> list[str]:
    lines = ["## OOM kills", ""]
    if facts.project:
        lines += [
            f"Project `{facts.project}`; one row per kill, with the sources that reported it.",
            "",
        ]
    if not facts.kills:
        lines.append("None recorded.")
    else:
        rows = [
            (
                utc(k.time) + (" (replayed)" if k.replayed else ""),
                k.container or "-",
                k.service or "-",
                k.process or "?",
                k.pid or "?",
                format_bytes(k.anon_rss_bytes) if k.anon_rss_bytes is not None else "?",
                _limit(k),
                ", ".join(k.sources),
                facts.phase(k),
            )
            for k in facts.kills
        ]
        header = ("time (UTC)", "container", "service", "process", "pid", "anon-rss",
                  "limit / global", "reported by", "remediation")  # fmt: skip
        lines += table(header, rows)
        if any(k.replayed for k in facts.kills):
            lines += [
                "",
                "(replayed: read back from the kernel's ring buffer when the console began)",
            ]
    others = [k for other in facts.other_projects for k in other.kills]
    if others:
        lines += ["", "### Other projects on the host (not this incident)", ""]
        other_rows = [
            (
                utc(k.time) + (" (replayed)" if k.replayed else ""),
                k.project or "?",
                k.container or "-",
                k.service or "-",
                k.process or "?",
                k.pid or "?",
                _limit(k),
                ", ".join(k.sources),
            )
            for k in sorted(others, key=lambda k: (k.time, k.project, k.pid))
        ]
        other_header = ("time (UTC)", "project", "container", "service", "process", "pid",
                        "limit / global", "reported by")  # fmt: skip
        lines += table(other_header, other_rows)
    return lines


def _chart(period: MemoryPeriod, origin: float) -> list[str]:
    names = ", ".join(name for name, _ in period.series)
    lines = [f"### {period.title}: {names}", ""]
    n = period.samples
    if n < MIN_CHART_SAMPLES:
        what = (
            period.title.lower()
            if period.title.startswith(("Before", "After"))
            else "in the journal"
        )
        return [*lines, f"Too few samples {what} ({n}) to draw a chart.", ""]
    chart = memory_chart({name: points for name, points in period.series}, origin)
    return [*lines, "```text", chart, "```", ""]


def _charts(facts: IncidentFacts) -> list[str]:
    lines = ["## Memory", ""]
    points = [p for period in facts.memory for _, series in period.series for p in series]
    if not facts.charted or not points:
        return [*lines, "No memory samples in the journal."]
    origin = min(t for t, _, _ in points)
    lines += [
        f"Memory used (as `docker stats` counts it; the journal keeps a sample every 10 s); "
        f"minute 0 is {utc(origin)}.",
        "",
    ]
    for period in facts.memory:
        lines += _chart(period, origin)
    return lines[:-1]


def _command_lines(commands: Sequence[dict[str, Any]], indent: str = "   ") -> list[str]:
    lines = []
    for command in commands:
        argv = command.get("argv") or []
        text = command_line([str(a) for a in argv]) if argv else "(no command)"
        status = command.get("exit_status")
        result = f"exit {status}" if status is not None else f"error: {command.get('error', '?')}"
        took = command.get("duration_s")
        took_text = f", {took:.1f} s" if isinstance(took, int | float) else ""
        lines.append(
            f"{indent}- `{text}` → {result}{took_text}, by {command.get('who', '?')} "
            f"at {hms(when(command))}"
        )
    return lines


def _step_row(number: int, run: StepRun) -> tuple[object, ...]:
    took = duration(run.finished - run.started) if run.finished is not None and run.started else "-"
    return (
        number,
        f"{run.step}: {run.title}",
        run.kind,
        run.result,
        run.verdict or "-",
        run.who,
        hms(run.started) if run.started is not None else "-",
        took,
    )


def _steps(facts: IncidentFacts) -> list[str]:
    lines = ["## Runbook steps", ""]
    if not facts.steps:
        return [*lines, "No runbook step was run."]
    header = ("#", "step", "kind", "result", "verdict", "who", "started", "took")
    lines += table(header, (_step_row(i, run) for i, run in enumerate(facts.steps, 1)))
    lines.append("")
    for i, run in enumerate(facts.steps, 1):
        lines.append(f"{i}. **{run.step}** ({run.result})")
        if run.exit_status is not None:
            lines.append(f"   - exit status {run.exit_status}")
        lines += _command_lines(run.commands)
        for check in run.checks:
            detail = f": {check.detail}" if check.detail else ""
            lines.append(f"   - check {check.name}: {check.status}{detail}")
        if run.change is not None:
            lines.append(f"   - changed `{run.change[0]}` (backup `{run.change[1]}`)")
        if run.undone_at is not None:
            lines.append(f"   - undone at {hms(run.undone_at)}")
    if facts.other_commands:
        lines += [
            "",
            "Commands run outside the runbook:",
            "",
            *_command_lines(facts.other_commands, ""),
        ]
    return lines


def _followups(facts: IncidentFacts, extra: Sequence[str]) -> list[str]:
    items = list(dict.fromkeys([*facts.followups, *extra]))
    lines = ["## Follow-ups", ""]
    if not items:
        if facts.runbooks:
            return [*lines, f"None: runbook {', '.join(facts.runbooks)} lists no follow-ups."]
        return [*lines, "None: no runbook was run, so there is no 'if it persists' list."]
    intro = "If it persists (from the runbook):" if facts.runbooks else "Follow-ups:"
    return [*lines, intro, "", *(f"- [ ] {item}" for item in items)]


def render_facts(facts: IncidentFacts, *, followups: Sequence[str] = ()) -> str:
    """The Markdown postmortem of an incident's facts (the same facts, the same text)."""
    hosts = ", ".join(facts.hosts) or "unknown host"
    lines = [f"# Incident postmortem: {hosts}", ""]
    skipped = (
        f" {plural(facts.skipped_lines, 'torn or unreadable line')} of the journal "
        f"{'was' if facts.skipped_lines == 1 else 'were'} skipped."
        if facts.skipped_lines
        else ""
    )
    if not facts.records:
        return redact("\n".join([*lines, f"The journal has no records.{skipped}", ""]))
    lines.append(
        f"Journal: {facts.records} records from {utc(facts.start)} to {utc(facts.end)} "
        f"({duration(facts.end - facts.start)}). All times are UTC.{skipped}"
    )
    for section in (
        summary(facts),
        _timeline(facts),
        _kills_table(facts),
        _charts(facts),
        _steps(facts),
        _followups(facts, followups),
    ):
        lines += ["", *section]
    text = "\n".join(line.rstrip() for line in lines).rstrip("\n") + "\n"
    return redact(text)


def render_report(
    records: Sequence[dict[str, Any]], *, followups: Sequence[str] = (), skipped_lines: int = 0
) -> str:
    """The Markdown postmortem of an incident's journal records.

    Args:
        records: the journal's records, in any order.
        followups: extra "if it persists" items (the runbook's, when the journal lacks them).
        skipped_lines: lines of the journal file that could not be read (said in the report).

    Returns:
        The report; the same records give the same text byte for byte.
    """
    return render_facts(derive_facts(records, skipped_lines=skipped_lines), followups=followups)

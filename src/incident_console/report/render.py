"""The postmortem as Markdown: every section formats the one :class:`IncidentFacts`.

:func:`render_report` is a pure function of the journal's records: no clock, no host, no
terminal size, so the same journal gives the same report byte for byte. No section computes a
fact of its own: the summary's kill counts and the kill table read the same kill list.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

from incident_console.domain.durations import format_bytes
from incident_console.domain.redact import MASK, is_secret_name
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
from incident_console.transport.base import command_line

_NAME_VALUE = re.compile(r"(?<![A-Za-z0-9_.-])([A-Za-z_][A-Za-z0-9_.-]{0,64})=([^\s`|,;&\"']+)")


def redact(text: str) -> str:
    """Hide NAME=value secrets anywhere in the finished Markdown (a last line of defence).

    Records are redacted with the shared rule before rendering; this pass looks at every
    NAME=value on its own (also after "note: ...") and stops values at Markdown's `|` and `.
    """

    def hide(match: re.Match[str]) -> str:
        name, value = match[1], match[2]
        return f"{name}={MASK}" if is_secret_name(name) and value != MASK else match[0]

    return _NAME_VALUE.sub(hide, text)


def utc(t: float | None, fmt: str = "%Y-%m-%d %H:%M:%SZ") -> str:
    """Epoch seconds as UTC text ('?' when unknown)."""
    return "?" if t is None else time.strftime(fmt, time.gmtime(t))


def hms(t: float | None) -> str:
    """Epoch seconds as UTC time of day, the way the tables print it."""
    return utc(t, "%H:%M:%SZ")


def cell(value: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def plural(n: int, word: str) -> str:
    """'1 kill', '2 kills'."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def duration(seconds: float) -> str:
    """A duration as '1 h 02 min', '3 min 05 s' or '40 s'."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _limit(kill: Kill) -> str:
    if kill.constraint == "global":
        return "global (host out of memory)"
    if kill.constraint == "limit":
        return f"limit {format_bytes(kill.limit_bytes)}" if kill.limit_bytes else "limit"
    return "unknown"


def phase(facts: IncidentFacts, kill: Kill) -> str:
    """Where a kill falls against remediation: the kill table's column and the summary agree."""
    if facts.remediation_done is None or facts.remediation_at is None:
        return "-"
    if kill.time >= facts.remediation_done:
        return "after remediation"
    return "during remediation" if kill.time >= facts.remediation_at else "before remediation"


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
    for other in facts.other_projects:
        name = f"project `{other.name}`" if other.name else "containers of no known project"
        kills = ", ".join(f"{k.container or 'the host'} at {utc(k.time)}" for k in other.kills)
        lines.append(
            f"- **Not this incident:** {name} on the same host had "
            f"{plural(len(other.kills), 'OOM kill')} ({kills})."
        )
    return lines


def _window(facts: IncidentFacts) -> str:
    w = facts.window
    if w.start is None or w.end is None:
        return "- **Impact window:** no OOM kill, unhealthy container or failed probe was recorded."
    after = "; still affected when the journal ends" if w.still_affected else ""
    return (
        f"- **Impact window:** {utc(w.start)} to {utc(w.end)} ({duration(w.end - w.start)})"
        f"{after}: {'; '.join(w.evidence)}."
    )


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


def _summary(facts: IncidentFacts) -> list[str]:
    return [
        "## Summary",
        "",
        *_what_happened(facts),
        _window(facts),
        f"- **Likely cause:** {likely_cause(facts)}",
        *_remediation(facts),
        *_runbook_line(facts),
    ]


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
                phase(facts, k),
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
    for other in facts.other_projects:
        name = f"project `{other.name}`" if other.name else "no known project"
        kills = ", ".join(f"{k.container or 'the host'} at {hms(k.time)}" for k in other.kills)
        lines += ["", f"Not this incident ({name}): {kills}."]
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
        _summary(facts),
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

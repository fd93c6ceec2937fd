"""The postmortem: an incident journal turned into Markdown.

:func:`render_report` is a pure function of the journal's records: no clock, no host, no
terminal size, so the same journal gives the same report byte for byte. :func:`write_report`
reads a journal file and writes the report next to it (the console's `R` key and the
`incident-console report` command both call it).
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from incident_console.domain.durations import format_bytes
from incident_console.domain.redact import MASK, is_secret_name, redact_record
from incident_console.monitor.journal import read_journal
from incident_console.monitor.report_charts import memory_chart
from incident_console.monitor.report_facts import Facts, Kill, StepRun, gather, impact_window, when
from incident_console.monitor.report_timeline import timeline
from incident_console.transport.base import command_line

_NAME_VALUE = re.compile(r"(?<![A-Za-z0-9_.-])([A-Za-z_][A-Za-z0-9_.-]{0,64})=([^\s`|,;&\"']+)")
#: Charts show the services that were OOM-killed, or else the few that used the most memory.
MAX_CHARTED = 3


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


def cell(value: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _limit(kill: Kill, facts: Facts) -> str:
    if kill.constraint == "global":
        return "global (host out of memory)"
    limit = kill.limit_bytes or facts.limits.get(kill.container_id, 0)
    if kill.constraint == "limit":
        return f"limit {format_bytes(limit)}" if limit else "limit"
    return "unknown"


def _gunicorn_confirms(facts: Facts, kill: Kill) -> bool:
    return any(
        r.get("kind") == "log"
        and r.get("signal") == "worker_killed"
        and (r.get("container") == kill.container or r.get("id") == kill.container_id)
        for r in facts.records
    )


def likely_cause(facts: Facts) -> str:
    """One sentence naming the most common kind of kill, where, and against which limit."""
    if not facts.kills:
        return "No kernel OOM kill is in the journal; the timeline below is all there is."
    groups: dict[tuple[str, str, str], list[Kill]] = {}
    for kill in facts.kills:
        key = (kill.service, kill.container or "the host", kill.constraint)
        groups.setdefault(key, []).append(kill)
    # The container with the most kills seen live (replayed ones may predate this incident).
    (service, container, constraint), kills = max(
        groups.items(),
        key=lambda item: (
            item[0][1] in facts.focus,
            sum(not k.replayed for k in item[1]),
            len(item[1]),
            item[0],
        ),
    )
    where = f"the {service} service ({container})" if service else container
    processes = ", ".join(sorted({k.process for k in kills if k.process})) or "its"
    workers = "processes"
    if any(k.process == "gunicorn" for k in kills) or _gunicorn_confirms(facts, kills[0]):
        workers = "processes (gunicorn workers, as gunicorn's own log confirms)"
        if not _gunicorn_confirms(facts, kills[0]):
            workers = "processes (gunicorn workers)"
    rss = [k.anon_rss_bytes for k in kills if k.anon_rss_bytes]
    peak = f", anon-rss up to {format_bytes(max(rss))}" if rss else ""
    count = f"{len(kills)} kill{'s' if len(kills) != 1 else ''}{peak}"
    if constraint == "global":
        return (
            f"The host ran out of memory as a whole (global OOM): the kernel killed `{processes}` "
            f"{workers} of {where} ({count}). A container limit does not prevent this; "
            "the host needs less total memory in use, more swap or more RAM."
        )
    if constraint == "limit":
        limit = max((k.limit_bytes or facts.limits.get(k.container_id, 0)) for k in kills)
        at = f"its {format_bytes(limit)} memory limit" if limit else "its memory limit"
        return (
            f"In {where}, `{processes}` {workers} were OOM-killed at {at} ({count}): "
            "the workers together need more memory than the limit allows."
        )
    return f"The kernel OOM-killed `{processes}` {workers} of {where} ({count})."


def _summary(facts: Facts) -> list[str]:
    window = impact_window(facts)
    live = [k for k in facts.kills if not k.replayed]
    hosts = ", ".join(facts.hosts) or "the host"
    lines = ["## Summary", ""]
    what = f"{len(facts.kills)} kernel OOM kill{'s' if len(facts.kills) != 1 else ''} on {hosts}"
    if len(live) != len(facts.kills):
        what += f" ({len(facts.kills) - len(live)} of them read from the kernel log at start)"
    lines.append(f"- **What happened:** {what}.")
    if window.start is None:
        lines.append("- **Impact window:** no failed probe or unhealthy container was recorded.")
    else:
        end = "still affected when the journal ends" if window.end is None else utc(window.end)
        took = _duration((window.end or facts.end) - window.start)
        lines.append(
            f"- **Impact window:** {utc(window.start)} to {end} ({took}); "
            f"{'; '.join(window.evidence)}."
        )
    lines.append(f"- **Likely cause:** {likely_cause(facts)}")
    if facts.remediation_at is not None and facts.remediation_done is not None:
        after = [k for k in facts.kills if k.time >= facts.remediation_done]
        where = ", ".join(sorted({k.container or "the host" for k in after}))
        outcome = (
            "no OOM kill since"
            if not after
            else f"{len(after)} OOM kill{'s' if len(after) != 1 else ''} since, in {where}"
        )
        lines.append(
            f"- **Remediation:** {utc(facts.remediation_at)} to {utc(facts.remediation_done)}; "
            f"{outcome} (to {utc(facts.end)})."
        )
    else:
        lines.append("- **Remediation:** none recorded in the journal.")
    if facts.steps:
        passed = sum(1 for s in facts.steps if s.record.get("state") == "passed")
        failed = sum(1 for s in facts.steps if s.record.get("state") == "failed")
        lines.append(
            f"- **Runbook:** {', '.join(facts.runbooks)}: {len(facts.steps)} step(s) run, "
            f"{passed} passed, {failed} failed."
        )
    return lines


def _kills_table(facts: Facts) -> list[str]:
    lines = ["## OOM kills", ""]
    if not facts.kills:
        return [*lines, "None recorded."]
    rows = [
        (
            utc(k.time) + (" (replayed)" if k.replayed else ""),
            k.container or "-",
            k.service or "-",
            k.process or "?",
            k.pid or "?",
            format_bytes(k.anon_rss_bytes) if k.anon_rss_bytes is not None else "?",
            _limit(k, facts),
        )
        for k in facts.kills
    ]
    header = ("time (UTC)", "container", "service", "process", "pid", "anon-rss", "limit / global")
    lines += table(header, rows)
    if any(k.replayed for k in facts.kills):
        lines += ["", "(replayed: read back from the kernel's ring buffer when the console began)"]
    return lines


def _charted(facts: Facts) -> list[str]:
    killed = [k.container for k in facts.kills if k.container]
    live = [k.container for k in facts.kills if k.container and not k.replayed]
    own = [n for n in killed if n in facts.focus]
    # The incident's own containers alone when the commands name them (other stacks may share
    # the host); else those killed live, then any killed.
    names = own or [*live, *killed]
    chosen = [n for n in dict.fromkeys(names) if n in facts.memory][:MAX_CHARTED]
    if chosen:
        return chosen
    peaks = sorted(
        ((max(used for _, used, _ in points), name) for name, points in facts.memory.items()),
        key=lambda item: (-item[0], item[1]),
    )
    return [name for _, name in peaks[:MAX_CHARTED]]


def _charts(facts: Facts) -> list[str]:
    lines = ["## Memory", ""]
    names = _charted(facts)
    if not names:
        return [*lines, "No memory samples in the journal."]
    # Minute 0 is the first sample charted: replayed kills can date the journal's start earlier.
    origin = min(t for n in names for t, _, _ in facts.memory[n])
    lines += [f"Memory used (as `docker stats` counts it); minute 0 is {utc(origin)}.", ""]
    cut = facts.remediation_done
    parts: list[tuple[str, float, float]] = (
        [("Before remediation", facts.start, cut), ("After remediation", cut, facts.end + 1)]
        if cut is not None
        else [("Whole journal (no remediation recorded)", facts.start, facts.end + 1)]
    )
    for title, start, end in parts:
        series = {n: [p for p in facts.memory[n] if start <= p[0] < end] for n in names}
        chart = memory_chart(series, origin)
        lines += [f"### {title}: {', '.join(names)}", ""]
        lines += ["```text", chart, "```", ""] if chart else ["No samples in this period.", ""]
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
            f"at {utc(when(command), '%H:%M:%SZ')}"
        )
    return lines


def _step_row(number: int, run: StepRun) -> tuple[object, ...]:
    r = run.record
    took = _duration(run.finished - run.started) if run.finished is not None else "-"
    return (
        number,
        f"{r.get('step', '?')}: {r.get('title', '')}",
        r.get("step_kind", "?"),
        r.get("state", "?"),
        r.get("verdict", "") or "-",
        r.get("who", "?"),
        utc(run.started, "%H:%M:%SZ"),
        took,
    )


def _steps(facts: Facts) -> list[str]:
    lines = ["## Runbook steps", ""]
    if not facts.steps:
        return [*lines, "No runbook step was run."]
    header = ("#", "step", "kind", "result", "verdict", "who", "started", "took")
    lines += table(header, (_step_row(i, run) for i, run in enumerate(facts.steps, 1)))
    lines.append("")
    for i, run in enumerate(facts.steps, 1):
        r = run.record
        lines.append(f"{i}. **{r.get('step', '?')}** ({r.get('state', '?')})")
        if r.get("exit_status") is not None:
            lines.append(f"   - exit status {r['exit_status']}")
        lines += _command_lines(run.commands)
        for check in r.get("checks") or []:
            if isinstance(check, dict):
                detail = f": {check['detail']}" if check.get("detail") else ""
                lines.append(f"   - check {check.get('check', '?')}: {check.get('status')}{detail}")
        change = r.get("change")
        if isinstance(change, dict):
            lines.append(f"   - changed `{change.get('path')}` (backup `{change.get('backup')}`)")
    in_steps = {id(c) for run in facts.steps for c in run.commands}
    others = [c for c in facts.commands if id(c) not in in_steps]
    if others:
        lines += ["", "Commands run outside the runbook:", "", *_command_lines(others, "")]
    return lines


def _followups(facts: Facts, extra: Sequence[str]) -> list[str]:
    items = list(dict.fromkeys([*facts.followups, *extra]))
    lines = ["## Follow-ups", ""]
    if not items:
        if facts.runbooks:
            return [*lines, f"None: runbook {', '.join(facts.runbooks)} lists no follow-ups."]
        return [*lines, "None: no runbook was run, so there is no 'if it persists' list."]
    intro = "If it persists (from the runbook):" if facts.runbooks else "Follow-ups:"
    return [*lines, intro, "", *(f"- [ ] {item}" for item in items)]


def render_report(records: Sequence[dict[str, Any]], *, followups: Sequence[str] = ()) -> str:
    """The Markdown postmortem of an incident's journal records.

    Args:
        records: the journal's records (read_journal), in any order.
        followups: extra "if it persists" items (the runbook's, when the journal lacks them).

    Returns:
        The report; the same records give the same text byte for byte.
    """
    # Redacted again with the shared rule: a journal may come from an older or foreign writer.
    facts = gather([redact_record(r) for r in records if isinstance(r, dict)])
    hosts = ", ".join(facts.hosts) or "unknown host"
    lines = [f"# Incident postmortem: {hosts}", ""]
    if not facts.records:
        return redact("\n".join([*lines, "The journal is empty.", ""]))
    lines.append(
        f"Journal: {len(facts.records)} records from {utc(facts.start)} to {utc(facts.end)} "
        f"({_duration(facts.end - facts.start)}). All times are UTC."
    )
    for section in (
        _summary(facts),
        ["## Timeline (UTC)", "", *timeline(facts)],
        _kills_table(facts),
        _charts(facts),
        _steps(facts),
        _followups(facts, followups),
    ):
        lines += ["", *section]
    text = "\n".join(line.rstrip() for line in lines).rstrip("\n") + "\n"
    return redact(text)


def runbook_followups(names: Sequence[str]) -> list[str]:
    """The "if it persists" lists of the named runbooks (built-in or files), as found."""
    try:  # imported here: the runbook layer imports the monitor, not the other way round
        from incident_console.runbook.loader import load_runbook
    except ImportError:  # pragma: no cover - the runbook layer is optional here
        return []
    items: list[str] = []
    for name in names:
        try:
            items += load_runbook(name).followups
        except Exception:  # noqa: BLE001 - a runbook we cannot load has no follow-ups to offer
            continue
    return items


def report_path_for(journal: Path) -> Path:
    """Where a journal's report goes by default: beside it, `.md` for `.jsonl`."""
    return journal.with_suffix(".md")


def write_report(
    journal: Path,
    out: Path | None = None,
    *,
    followups: Callable[[Sequence[str]], list[str]] = runbook_followups,
) -> Path:
    """Read a journal, render its report and write it atomically. Returns the report's path.

    Raises:
        OSError: the journal cannot be read or the report cannot be written.
    """
    records = read_journal(journal)
    names = sorted({str(r["runbook"]) for r in records if r.get("runbook")})
    text = render_report(records, followups=followups(names))
    target = out or report_path_for(journal)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target

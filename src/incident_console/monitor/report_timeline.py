"""The postmortem's timeline: the records that tell the story, one line each (pure)."""

from __future__ import annotations

import time
from typing import Any

from incident_console.domain.durations import format_bytes
from incident_console.monitor.report_facts import Facts, when
from incident_console.transport.base import command_line

#: Lifecycle actions worth a line (exec_* and attach are noise).
LIFECYCLE = ("create", "start", "restart", "die", "kill", "oom", "stop", "destroy")
#: Log signals worth a line; the others are counted in the logs themselves.
LOG_SIGNALS = ("worker_killed", "worker_timeout")
#: The timeline is for reading: beyond this many lines the rest is counted, not listed.
MAX_LINES = 400
TEXT_CAP = 160


def _short(text: object) -> str:
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= TEXT_CAP else line[: TEXT_CAP - 1] + "…"


def _describe(record: dict[str, Any], facts: Facts, probe_ok: dict[str, bool]) -> str | None:
    kind = record.get("kind")
    if kind == "oom_kill":
        cid = str(record.get("container_id", ""))
        name = record.get("container") or (facts.label(cid) if cid else "")
        service = record.get("service")
        where = f"{name} ({service})" if name and service else name or service or "the host"
        rss = record.get("anon_rss_bytes")
        rss_text = f", anon-rss {format_bytes(rss)}" if isinstance(rss, int) else ""
        constraint = record.get("constraint")
        why = {"limit": "at its memory limit", "global": "host out of memory"}.get(
            str(constraint), "cause unknown"
        )
        replayed = " (read from the kernel log at start)" if record.get("replayed") else ""
        return (
            f"**OOM kill** in {where}: {record.get('process', '?')} pid {record.get('pid', '?')}"
            f"{rss_text}, {why}{replayed}"
        )
    if kind == "health":
        name = record.get("service") or record.get("name", "?")
        output = f": {_short(record['output'])}" if record.get("output") else ""
        return f"{name} {record.get('old') or '-'} → **{record.get('new', '?')}**{output}"
    if kind == "container_event" and record.get("action") in LIFECYCLE:
        code = record.get("exit_code")
        code_text = f" (exit {code})" if code is not None else ""
        return f"{record.get('name') or record.get('service', '?')}: {record['action']}{code_text}"
    if kind == "probe":
        url = str(record.get("url", ""))
        status = record.get("status")
        ok = isinstance(status, int) and 200 <= status < 400
        if probe_ok.get(url) == ok:
            return None  # only the changes
        first = url not in probe_ok
        probe_ok[url] = ok
        got = f"HTTP {status}" if status is not None else _short(record.get("error") or "no answer")
        if ok:
            return None if first else f"probe {url} answers again: {got}"
        return f"probe {url} **failing**: {got}"
    if kind == "log" and record.get("signal") in LOG_SIGNALS:
        return f"{record.get('container', '?')} log: {_short(record.get('text', ''))}"
    if kind == "link":
        reason = f" ({_short(record['reason'])})" if record.get("reason") else ""
        return f"connection to {record.get('host', 'host')}: {record.get('state', '?')}{reason}"
    if kind == "source" and not record.get("ok", True):
        return f"source {record.get('source')}: {record.get('method')}: {_short(record.get('detail', ''))}"
    if kind == "command":
        argv = [str(a) for a in record.get("argv") or []]
        status = record.get("exit_status")
        result = (
            f"exit {status}" if status is not None else f"error {_short(record.get('error', ''))}"
        )
        text = command_line(argv) if argv else "?"
        return f"`{_short(text)}` → {result} (by {record.get('who', '?')})"
    if kind == "action":
        target = record.get("container") or record.get("service") or ""
        error = f", failed: {_short(record['error'])}" if record.get("error") else ""
        return f"{record.get('what', 'action')} {target} (by {record.get('who', '?')}){error}"
    if kind == "runbook_step" and record.get("state") not in ("running", "pending"):
        return (
            f"runbook step {record.get('step', '?')} ({record.get('step_kind', '?')}): "
            f"**{record.get('state', '?')}**, {_short(record.get('verdict') or '-')}"
        )
    if kind == "runbook":
        event = record.get("event") or record.get("state") or ""
        return f"runbook {record.get('runbook') or record.get('name', '?')} {event}".rstrip()
    if kind == "file_change":
        return f"changed `{record.get('path', '?')}` (backup `{record.get('backup', '?')}`)"
    if kind == "file_restore":
        return f"restored `{record.get('path', '?')}` from its backup"
    if kind == "note":
        return f"note: {_short(record.get('what', ''))}"
    return None


def timeline(facts: Facts) -> list[str]:
    """Markdown table lines of the incident's timeline, in time order."""
    probe_ok: dict[str, bool] = {}
    rows: list[str] = []
    hidden = 0
    many_hosts = len(facts.hosts) > 1
    for record in facts.records:
        text = _describe(record, facts, probe_ok)
        if text is None:
            continue
        if len(rows) >= MAX_LINES:
            hidden += 1
            continue
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(when(record)))
        host = f"{record.get('host', '')} " if many_hosts else ""
        safe = text.replace("|", "\\|").replace("\n", " ")
        rows.append(f"| {stamp} | {host}{safe} |")
    if not rows:
        return ["Nothing notable was recorded."]
    lines = ["| time (UTC) | what |", "|---|---|", *rows]
    if hidden:
        lines += ["", f"({hidden} more entries not listed; the journal has them all)"]
    return lines

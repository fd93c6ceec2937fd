"""The postmortem's timeline: one row per kill, the records that tell the story, repeats folded.

A kill is one row however many sources reported it (the kill list of the facts, not the
records). Identical events close together fold into one row ("backend: restart x3"), and a
container's health flapping folds into one row that counts the changes. Other projects' events
stay out: the timeline is the affected project's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from incident_console.domain.durations import format_bytes
from incident_console.report.kills import is_kill_report
from incident_console.report.model import Kill, TimelineRow, when
from incident_console.transport.base import command_line

#: Lifecycle actions worth a line (exec_* and attach are noise; oom is a kill report).
LIFECYCLE = ("create", "start", "restart", "die", "kill", "stop", "destroy")
#: Log signals worth a line (a worker's SIGKILL is a kill report).
LOG_SIGNALS = ("worker_timeout",)
#: The same event again within this many seconds of the last folds into its row.
FOLD_S = 300.0
#: A container's health changing again within this many seconds is flapping (one row); a
#: recovery minutes later is news of its own.
HEALTH_FOLD_S = 60.0
#: Up to this many health changes are shown one by one in the folded row.
HEALTH_CHAIN = 3
#: The timeline is for reading: beyond this many rows the rest is counted, not listed.
MAX_ROWS = 400
TEXT_CAP = 160
_BAD_HEALTH = ("unhealthy", "exited", "dead", "restarting")


def short(text: object) -> str:
    """The first line of a text, capped for a table cell."""
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= TEXT_CAP else line[: TEXT_CAP - 1] + "…"


def kill_text(kill: Kill) -> str:
    """How the timeline (and nothing else) words one kill."""
    where = (
        f"{kill.container} ({kill.service})"
        if kill.container and kill.service
        else (kill.container or kill.service or "the host")
    )
    rss = f", anon-rss {format_bytes(kill.anon_rss_bytes)}" if kill.anon_rss_bytes else ""
    # The kernel's record says it as the console and diagnose do (domain.oom_scope).
    why = kill.scope_text or {"limit": "at its memory limit", "global": "host out of memory"}.get(
        kill.constraint, "cause unknown"
    )
    replayed = " (read from the kernel log at start)" if kill.replayed else ""
    return (
        f"**OOM kill** in {where}: {kill.process or '?'} pid {kill.pid or '?'}{rss}, {why}"
        f"{replayed}; reported by {', '.join(kill.sources)}"
    )


@dataclass(slots=True)
class _Row:
    time: float
    host: str
    key: tuple[str, ...]
    text: str
    count: int = 1
    until: float | None = None
    states: list[str] | None = None  # a health row's successive states
    old: str = ""  # a health row's state before the first change


def _describe(
    record: dict[str, Any], probe_ok: dict[str, bool]
) -> tuple[tuple[str, ...], str] | None:
    """(fold key, text) of a record worth a row, or None."""
    kind = str(record.get("kind"))
    if kind == "health":
        name = str(record.get("name") or record.get("service") or "?")
        return ("health", name), str(record.get("new") or "?")
    if kind == "container_event" and record.get("action") in LIFECYCLE:
        code = record.get("exit_code")
        code_text = f" (exit {code})" if code is not None else ""
        text = f"{record.get('name') or record.get('service', '?')}: {record['action']}{code_text}"
        return (text,), text
    if kind == "probe":
        url = str(record.get("url", ""))
        status = record.get("status")
        ok = isinstance(status, int) and 200 <= status < 400
        if probe_ok.get(url) == ok:
            return None  # only the changes
        first = url not in probe_ok
        probe_ok[url] = ok
        got = f"HTTP {status}" if status is not None else short(record.get("error") or "no answer")
        if ok:
            return None if first else (("probe", url, "ok"), f"probe {url} answers again: {got}")
        return ("probe", url, "failing"), f"probe {url} **failing**: {got}"
    if kind == "log" and record.get("signal") in LOG_SIGNALS:
        text = f"{record.get('container', '?')} log: {short(record.get('text', ''))}"
        return (text,), text
    if kind == "link":
        reason = f" ({short(record['reason'])})" if record.get("reason") else ""
        text = f"connection to {record.get('host', 'host')}: {record.get('state', '?')}{reason}"
        return (text,), text
    if kind == "source" and not record.get("ok", True):
        text = f"source {record.get('source')}: {record.get('method')}: {short(record.get('detail', ''))}"
        return (text,), text
    if kind == "command":
        argv = [str(a) for a in record.get("argv") or []]
        status = record.get("exit_status")
        result = (
            f"exit {status}" if status is not None else f"error {short(record.get('error', ''))}"
        )
        text = f"`{short(command_line(argv) if argv else '?')}` → {result} (by {record.get('who', '?')})"
        return (text,), text
    if kind == "change" and record.get("phase") in ("intent", "refused", "result"):
        # The one door's records: a refusal is news; a command's or restart's result has its
        # command/action twin in the journal; a write has none.
        what = short(record.get("what") or record.get("change") or "change")
        if record.get("phase") == "refused":
            text = f"refused: `{what}` ({short(record.get('reason') or '?')})"
        elif record.get("phase") == "result" and record.get("change") == "write":
            failed = f", failed: {short(record['error'])}" if record.get("error") else ""
            text = f"{what}{failed}"
        else:
            return None
        return (text,), text
    if kind in ("action", "change"):
        what = str(record.get("what") or record.get("action") or kind)
        target = record.get("container") or record.get("service") or record.get("target") or ""
        error = f", failed: {short(record['error'])}" if record.get("error") else ""
        note = " (a restart, not remediation)" if "restart" in what else ""
        text = f"{what} {target} (by {record.get('who', '?')}){error}{note}".replace("  ", " ")
        return (text,), text
    if kind == "runbook_step" and record.get("state") not in ("running", "pending"):
        state = str(record.get("state", "?"))
        if state == "failed" and record.get("started") is None:
            state = "refused"
        shown = {"rolled_back": "rolled back (undone)"}.get(state, state)
        text = (
            f"runbook step {record.get('step', '?')} ({record.get('step_kind', '?')}): "
            f"**{shown}**, {short(record.get('verdict') or '-')}"
        )
        return ("step", str(id(record))), text  # steps never fold
    if kind == "runbook":
        event = record.get("event") or record.get("state") or ""
        text = f"runbook {record.get('runbook') or record.get('name', '?')} {event}".rstrip()
        return (text,), text
    if kind == "file_change":
        text = f"changed `{record.get('path', '?')}` (backup `{record.get('backup', '?')}`)"
        return (text,), text
    if kind == "file_restore":
        text = f"undo: restored `{record.get('path', '?')}` from its backup"
        return (text,), text
    if kind == "note":
        text = f"note: {short(record.get('what', ''))}"
        return (text,), text
    return None


def _health_text(name: str, old: str, states: Sequence[str]) -> str:
    if len(states) <= HEALTH_CHAIN:
        return f"{name} {old or '-'} → " + " → ".join(f"**{s}**" for s in states)
    bad = sum(1 for s in states if s in _BAD_HEALTH)
    return (
        f"{name} health flapping: {len(states)} changes ({bad} to unhealthy), last **{states[-1]}**"
    )


def build_timeline(
    records: Sequence[dict[str, Any]],
    kills: Sequence[Kill],
    ours: Callable[[dict[str, Any]], bool],
) -> tuple[tuple[TimelineRow, ...], int]:
    """The timeline's rows, and how many more were left out beyond the cap.

    Args:
        records: the journal's records, in time order.
        kills: the affected project's kills (one row each).
        ours: whether a container record (health, event, log) is of the affected project.
    """
    probe_ok: dict[str, bool] = {}
    rows: list[_Row] = []
    open_rows: dict[tuple[str, ...], _Row] = {}
    items: list[tuple[float, int, Kill | dict[str, Any]]] = [(k.time, 0, k) for k in kills]
    items += [(when(r), 1, r) for r in records if not is_kill_report(r)]
    items.sort(key=lambda item: (item[0], item[1]))
    for t, _, item in items:
        if isinstance(item, Kill):
            rows.append(_Row(t, item.host, ("kill",), kill_text(item)))
            continue
        if item.get("kind") in ("health", "container_event", "log") and not ours(item):
            continue
        described = _describe(item, probe_ok)
        if described is None:
            continue
        key, text = described
        host = str(item.get("host") or "")
        key = (host, *key)
        row = open_rows.get(key)
        window = HEALTH_FOLD_S if row is not None and row.states is not None else FOLD_S
        if row is not None and t - (row.until or row.time) <= window:
            row.count += 1
            row.until = t
            if row.states is not None:
                row.states.append(text)
                row.text = _health_text(key[2], row.old, row.states)
            continue
        row = _Row(t, host, key, text)
        if key[1] == "health":
            row.states, row.old = [text], str(item.get("old") or "")
            row.text = _health_text(key[2], row.old, row.states)
        rows.append(row)
        open_rows[key] = row
    # A health row counts its changes in its text, not as "xN" of one text.
    shown = [
        TimelineRow(r.time, r.host, r.text, 1 if r.states else r.count, r.until)
        for r in rows[:MAX_ROWS]
    ]
    return tuple(shown), max(0, len(rows) - MAX_ROWS)

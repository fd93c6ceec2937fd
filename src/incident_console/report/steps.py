"""Runbook steps, remediation, restarts and undos, read from the journal's records.

Remediation is what was changed to fix the incident: a remediate step that ran to a verdict
(passed or failed; not skipped, not refused), a file changed outside a step, or a recorded
change (the one door's ``change`` record). A restart is not remediation: it is recorded and
shown, but a restarted container runs the same configuration. An undo reverts remediation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from incident_console.report.model import Check, Remediation, Restart, StepRun, Undo, when

_TERMINAL = ("passed", "failed", "skipped")
_UNDO_WORDS = ("undo", "restore", "roll back", "rollback", "rolled_back", "revert")
#: A file restored this close (seconds) to a step's rollback of that file is that rollback.
UNDO_MATCH_S = 5.0
_REFUSED = ("refused", "declined", "denied", "cancelled")


@dataclass(frozen=True, slots=True)
class StepFacts:
    """What the records say about the runbook: its steps and the changes around them."""

    steps: tuple[StepRun, ...]
    remediation: tuple[Remediation, ...]
    restarts: tuple[Restart, ...]
    undos: tuple[Undo, ...]
    runbooks: tuple[str, ...]
    followups: tuple[str, ...]
    other_commands: tuple[dict[str, Any], ...]


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(record: dict[str, Any], *keys: str) -> str:
    return " ".join(str(record.get(k) or "") for k in keys).strip()


def _step_run(history: list[dict[str, Any]], commands: list[dict[str, Any]], end: float) -> StepRun:
    terminal = [r for r in history if r.get("state") in _TERMINAL]
    rolled = [r for r in history if r.get("state") == "rolled_back"]
    last = terminal[-1] if terminal else history[-1]
    started = next((s for r in history if (s := _number(r.get("started"))) is not None), None)
    finished = _number(last.get("finished")) if terminal else None
    undone_at = (_number(rolled[-1].get("finished")) or when(rolled[-1])) if rolled else None
    state = str(last.get("state") or "?")
    if state == "rolled_back":  # a verdict record lost (a torn line): it ran, then was undone
        state = "passed"
    checks = tuple(
        Check(str(c.get("check", "?")), str(c.get("status", "?")), str(c.get("detail") or ""))
        for c in last.get("checks") or []
        if isinstance(c, dict)
    )
    change = next(
        (r["change"] for r in reversed(history) if isinstance(r.get("change"), dict)), None
    )
    status = last.get("exit_status")
    span_end = finished if finished is not None else end
    ran_commands = (
        tuple(c for c in commands if started <= when(c) <= span_end) if started is not None else ()
    )
    return StepRun(
        runbook=str(last.get("runbook") or ""),
        step=str(last.get("step") or "?"),
        title=str(last.get("title") or ""),
        kind=str(last.get("step_kind") or "?"),
        action=str(last.get("action") or ""),
        state=state,
        verdict=str(last.get("verdict") or ""),
        who=str(last.get("who") or "?"),
        started=started,
        finished=finished,
        undone_at=undone_at,
        exit_status=status if isinstance(status, int) and not isinstance(status, bool) else None,
        checks=checks,
        change=(str(change.get("path")), str(change.get("backup"))) if change else None,
        commands=ran_commands,
    )


def _attempts(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    attempts: dict[tuple[str, str, float], list[dict[str, Any]]] = {}
    for record in records:
        if record.get("kind") != "runbook_step":
            continue
        started = _number(record.get("started"))
        key = (
            str(record.get("runbook") or ""),
            str(record.get("step") or ""),
            # A step refused or skipped before it started has no start: each record is its own.
            started if started is not None else -when(record),
        )
        attempts.setdefault(key, []).append(record)
    return sorted(
        attempts.values(), key=lambda h: min(_number(r.get("started")) or when(r) for r in h)
    )


def _change_kind(record: dict[str, Any]) -> str:
    """restart, undo, refused or change: what a recorded action or change was."""
    text = _text(record, "what", "action", "change", "operation").lower()
    outcome = _text(record, "result", "outcome", "status", "state").lower()
    if record.get("refused") or any(word in outcome for word in _REFUSED):
        return "refused"
    if "restart" in text:
        return "restart"
    if any(word in text for word in _UNDO_WORDS):
        return "undo"
    return "change"


def derive_steps(records: list[dict[str, Any]], end: float) -> StepFacts:
    """Steps, remediation, restarts and undos of the records (in time order)."""
    commands = [r for r in records if r.get("kind") == "command"]
    steps = tuple(_step_run(h, commands, end) for h in _attempts(records))
    remediation: list[Remediation] = []
    restarts: list[Restart] = []
    undos: list[Undo] = []
    for s in steps:
        if not s.ran or s.started is None:
            continue
        if s.is_restart:
            restarts.append(Restart(s.started, f"runbook step `{s.step}`", s.who, ""))
        elif s.kind == "remediate":
            done = s.finished if s.finished is not None else s.started
            remediation.append(Remediation(f"`{s.step}`", s.started, done, s.state, s.undone_at))
        if s.undone_at is not None:
            undos.append(Undo(s.undone_at, f"runbook step `{s.step}` rolled back"))
    step_changes = {s.change[0] for s in steps if s.change}
    rolled_back: dict[str, list[float]] = {}
    for s in steps:
        if s.change and s.undone_at is not None:
            rolled_back.setdefault(s.change[0], []).append(s.undone_at)
    for record in records:
        kind, t = record.get("kind"), when(record)
        if kind == "file_restore":
            if any(
                abs(t - u) <= UNDO_MATCH_S for u in rolled_back.get(str(record.get("path")), [])
            ):
                continue  # the file restore of a step's undo: that step's rollback says it
            undos.append(Undo(t, f"restored `{record.get('path', '?')}` from its backup"))
        elif (
            kind == "file_change"
            and not record.get("step")
            and record.get("path") not in step_changes
        ):
            remediation.append(
                Remediation(f"changed `{record.get('path', '?')}`", t, t, "done", None)
            )
        elif kind in ("action", "change"):
            what = _change_kind(record)
            took = _number(record.get("duration_s")) or 0.0
            target = (
                _text(record, "container") or _text(record, "service") or _text(record, "target")
            )
            error = str(record.get("error") or "")
            if what == "restart":
                restarts.append(Restart(t, target, str(record.get("who") or "?"), error))
            elif what == "undo":
                undos.append(Undo(t, _text(record, "what", "action") or "undo"))
            elif what == "change" and kind == "change" and not record.get("step"):
                label = _text(record, "what", "action") or "change"
                state = "failed" if error or record.get("ok") is False else "done"
                remediation.append(Remediation(label, t, t + took, state, None))
    runbooks: dict[str, None] = {}
    followups: dict[str, None] = {}
    for record in records:
        if record.get("kind") == "runbook":
            name = str(record.get("runbook") or record.get("name") or "")
            if name:
                runbooks.setdefault(name)
            for item in record.get("followups") or []:
                if isinstance(item, str):
                    followups.setdefault(item)
    for s in steps:
        if s.runbook:
            runbooks.setdefault(s.runbook)
    in_steps = {id(c) for s in steps for c in s.commands}
    # Undos after the remediation they revert; a remediation undone later says so.
    undos.sort(key=lambda u: (u.time, u.what))
    return StepFacts(
        steps=steps,
        remediation=tuple(sorted(remediation, key=lambda r: (r.started, r.what))),
        restarts=tuple(sorted(restarts, key=lambda r: (r.time, r.target))),
        undos=tuple(undos),
        runbooks=tuple(runbooks),
        followups=tuple(followups),
        other_commands=tuple(c for c in commands if id(c) not in in_steps),
    )

"""Runbook steps, remediation, restarts and undos, read from the journal's records.

Remediation is what was changed to fix the incident: a remediate step that ran to a verdict
(passed or failed; not skipped, not refused), a file changed outside a step, or a recorded
change (the one door's ``change`` record). A restart is not remediation: it is recorded and
shown, but a restarted container runs the same configuration. An undo reverts remediation.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    if record.get("refused") or record.get("phase") in ("intent", "refused"):
        return "refused"  # an intent is followed by its result (or refusal): count that
    outcome = _text(record, "result", "outcome", "status", "state").lower()
    if any(word in outcome for word in _REFUSED):
        return "refused"
    text = _text(record, "what", "action", "change", "operation").lower()
    if "restart" in text:
        return "restart"
    if any(word in f"{text} {_text(record, 'why').lower()}" for word in _UNDO_WORDS):
        return "undo"
    return "change"


def _changes(
    records: list[dict[str, Any]], steps: Sequence[StepRun], end: float
) -> tuple[list[Remediation], list[Restart], list[Undo]]:
    """Remediation, restarts and undos from the records outside the runbook's own steps.

    The one door journals each change as an intent and a result (``kind: change``) beside
    the records the report always read (``command``, ``action`` for a restart): the twins
    share a ``change_id`` and count once. A change while a runbook step ran is that step's.
    """
    remediation: list[Remediation] = []
    restarts: list[Restart] = []
    undos: list[Undo] = []
    spans = [(st.started, st.finished or end) for st in steps if st.ran and st.started is not None]
    step_changes = {st.change[0] for st in steps if st.change}
    rolled_back: dict[str, list[float]] = {}
    for st in steps:
        if st.change and st.undone_at is not None:
            rolled_back.setdefault(st.change[0], []).append(st.undone_at)
            undos.append(Undo(st.undone_at, f"runbook step `{st.step}` rolled back"))
    restart_ids: set[str] = set()
    door_undos: list[Undo] = []
    # A result says what happened; its intent says why and to what (read together).
    intents = {
        str(r["change_id"]): r
        for r in records
        if r.get("kind") == "change" and r.get("phase") == "intent" and r.get("change_id")
    }
    for record in records:
        kind, t = record.get("kind"), when(record)
        if kind == "change" and record.get("phase") == "result":
            record = {**intents.get(str(record.get("change_id")), {}), **record}
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
            change_id = str(record.get("change_id") or "")
            error = str(record.get("error") or "")
            if what == "restart":
                if change_id and change_id in restart_ids:
                    continue  # the door's result and its action record: one restart
                restart_ids.add(change_id)
                target = (
                    _text(record, "container")
                    or _text(record, "target")
                    or _text(record, "what").removeprefix("restart ")
                )
                restarts.append(Restart(t, target, str(record.get("who") or "?"), error))
            elif what == "undo":
                door_undos.append(Undo(t, _text(record, "what", "action") or "undo"))
            elif what == "change" and kind == "change" and not record.get("step"):
                if any(lo <= t <= hi for lo, hi in spans):
                    continue  # a runbook step's own command or write
                took = _number(record.get("duration_s")) or 0.0
                state = "failed" if error or record.get("ok") is False else "done"
                label = f"`{_text(record, 'what', 'action') or 'change'}`"
                remediation.append(Remediation(label, t, t + took, state, None))
    # An undo's copy through the door and its file_restore record are one undo.
    undos += [u for u in door_undos if not any(abs(u.time - v.time) <= UNDO_MATCH_S for v in undos)]
    return remediation, restarts, undos


def derive_steps(records: list[dict[str, Any]], end: float) -> StepFacts:
    """Steps, remediation, restarts and undos of the records (in time order)."""
    commands = [r for r in records if r.get("kind") == "command"]
    steps = tuple(_step_run(h, commands, end) for h in _attempts(records))
    remediation, restarts, undos = _changes(records, steps, end)
    for st in steps:
        if not st.ran or st.started is None:
            continue
        if st.is_restart:
            restarts.append(Restart(st.started, f"runbook step `{st.step}`", st.who, ""))
        elif st.kind == "remediate":
            done = st.finished if st.finished is not None else st.started
            remediation.append(
                Remediation(f"`{st.step}`", st.started, done, st.state, st.undone_at)
            )
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

"""The runbook engine: a pure state machine over a runbook's steps.

No I/O and no asyncio here. The runner (runner.py) asks the actions layer to perform a step and
to evaluate its checks, and hands the results to :meth:`Engine.decide`; the UI and the headless
command read the engine's step records. A step goes pending -> running -> passed | failed, or
pending -> skipped; a step whose change was undone is rolled_back.
"""

from __future__ import annotations

import contextlib
import enum
from dataclasses import dataclass, field
from typing import Any

from incident_console.domain.commands import CommandClass, classify_argv, classify_shell
from incident_console.runbook.schema import Runbook, Step, render


class StepState(enum.StrEnum):
    """Where a step stands."""

    PENDING = "pending"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ROLLED_BACK = "rolled_back"


class CheckStatus(enum.StrEnum):
    """One check's verdict so far: pending means not decided yet (keep watching)."""

    PASSED = "passed"
    FAILED = "failed"
    PENDING = "pending"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """A check's verdict with a one-line reason."""

    name: str
    status: CheckStatus
    detail: str = ""

    def to_record(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status.value, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class FileChange:
    """A file a step changed, and the backup that restores it byte for byte."""

    path: str
    backup: str
    sha256_before: str
    sha256_after: str


@dataclass(slots=True)
class StepRecord:
    """What happened to one step."""

    step: Step
    state: StepState = StepState.PENDING
    started: float | None = None
    finished: float | None = None
    checks: list[CheckResult] = field(default_factory=list)
    #: The action's output (command output, diff, what was done); the UI shows it live.
    output: str = ""
    exit_status: int | None = None
    digest: dict[str, Any] = field(default_factory=dict)
    change: FileChange | None = None
    verdict: str = ""

    @property
    def done(self) -> bool:
        return self.state not in (StepState.PENDING, StepState.RUNNING)

    def to_record(self, runbook: str, variables: dict[str, str] | None = None) -> dict[str, Any]:
        """The journal record of kind 'runbook_step' (the title rendered with `variables`)."""
        title = self.step.title
        if variables:
            with contextlib.suppress(KeyError):
                title = render(title, variables)
        record: dict[str, Any] = {
            "kind": "runbook_step",
            "runbook": runbook,
            "step": self.step.id,
            "title": title,
            "step_kind": self.step.kind,
            "action": self.step.action,
            "state": self.state.value,
            "verdict": self.verdict,
            "checks": [c.to_record() for c in self.checks],
            "started": self.started,
            "finished": self.finished,
            "exit_status": self.exit_status,
            "output": self.digest,
        }
        if self.change is not None:
            record["change"] = {
                "path": self.change.path,
                "backup": self.change.backup,
                "sha256_before": self.change.sha256_before,
                "sha256_after": self.change.sha256_after,
            }
        return record


def classify_step(step: Step) -> CommandClass | None:
    """The classifier's verdict on a `run` step's command (None for any other action)."""
    if step.action != "run" or step.run is None:
        return None
    if isinstance(step.run, list):
        return classify_argv(step.run)
    return classify_shell(step.run)


def changes_server(step: Step) -> bool:
    """True when the step may change the server: by its kind or action, or because the
    classifier does not call its command read-only (deny by default, whatever its kind)."""
    if step.mutates:
        return True
    verdict = classify_step(step)
    return verdict is not None and verdict.changes


class StepRefused(Exception):
    """The step may not run now (read-only, already running, a missing variable)."""


class Engine:
    """The state of one runbook walk: which step is current, what each step did."""

    def __init__(
        self, runbook: Runbook, variables: dict[str, str], *, read_only: bool = False
    ) -> None:
        self.runbook = runbook
        self.variables = dict(variables)
        self.read_only = read_only
        self.records = [StepRecord(step) for step in runbook.steps]
        self.cursor = 0

    # Navigation ------------------------------------------------------------------------

    @property
    def current(self) -> StepRecord:
        return self.records[self.cursor]

    def move(self, delta: int) -> StepRecord:
        """Move the cursor by `delta` steps (clamped) and return the current step."""
        self.cursor = max(0, min(len(self.records) - 1, self.cursor + delta))
        return self.current

    def index(self, step_id: str) -> int:
        for i, record in enumerate(self.records):
            if record.step.id == step_id:
                return i
        raise KeyError(step_id)

    # Rules -----------------------------------------------------------------------------

    def refusal(self, i: int) -> str:
        """Why step `i` may not run now, or '' when it may."""
        record = self.records[i]
        step = record.step
        if record.state is StepState.RUNNING:
            return "already running"
        if self.read_only and changes_server(step):
            verdict = classify_step(step)
            if verdict is not None and verdict.changes:
                return f"read-only: its command may change the server ({verdict.reason})"
            return f"read-only: a {step.kind} step that changes the server ({step.action})"
        if step.action == "manual":
            return "manual step: do it yourself, then mark it with s"
        missing = [
            name
            for name in (*self.runbook.requires, *step.requires)
            if not self.variables.get(name)
        ]
        if missing:
            sets = " ".join(f"--set {name}=..." for name in missing)
            return f"needs {', '.join(missing)}: not discovered on the host ({sets})"
        return ""

    def needs_confirmation(self, i: int) -> bool:
        """Remediate steps (and anything that may change the server) confirm first."""
        return changes_server(self.records[i].step)

    # Transitions -----------------------------------------------------------------------

    def start(self, i: int, now: float) -> StepRecord:
        """pending/failed/... -> running. Raises StepRefused with the reason."""
        reason = self.refusal(i)
        if reason:
            raise StepRefused(reason)
        record = self.records[i]
        record.state = StepState.RUNNING
        record.started = now
        record.finished = None
        record.checks = []
        record.output = ""
        record.exit_status = None
        record.digest = {}
        record.verdict = ""
        return record

    def decide(
        self,
        i: int,
        results: list[CheckResult],
        *,
        window_over: bool,
        now: float,
        error: str = "",
    ) -> StepState | None:
        """Fold check results into the step; returns the final state once decided, else None.

        A failed check ends the step at once. A `wait` step passes only when its window is
        over; other steps pass as soon as every check passed. Checks still pending when the
        window is over fail ("not seen").
        """
        record = self.records[i]
        record.checks = list(results)
        if error:
            return self._finish(record, StepState.FAILED, error, now)
        failed = [r for r in results if r.status is CheckStatus.FAILED]
        if failed:
            return self._finish(record, StepState.FAILED, _reasons(failed), now)
        pending = [r for r in results if r.status is CheckStatus.PENDING]
        if not window_over and (pending or record.step.action == "wait"):
            return None
        if pending:
            record.checks = [
                CheckResult(r.name, CheckStatus.FAILED, r.detail or "not seen in time")
                if r.status is CheckStatus.PENDING
                else r
                for r in results
            ]
            return self._finish(record, StepState.FAILED, _reasons(record.checks), now)
        verdict = "all checks passed" if results else "done (no checks)"
        return self._finish(record, StepState.PASSED, verdict, now)

    def _finish(self, record: StepRecord, state: StepState, verdict: str, now: float) -> StepState:
        record.state = state
        record.verdict = verdict
        record.finished = now
        return state

    def skip(self, i: int, now: float, why: str = "skipped by the operator") -> StepRecord:
        record = self.records[i]
        if record.state is StepState.RUNNING:
            raise StepRefused("a running step cannot be skipped")
        record.state = StepState.SKIPPED
        record.verdict = why
        record.finished = now
        return record

    def rolled_back(self, i: int, now: float) -> StepRecord:
        record = self.records[i]
        if record.change is None:
            raise StepRefused("this step changed no file: nothing to undo")
        record.state = StepState.ROLLED_BACK
        record.verdict = f"restored {record.change.path} from {record.change.backup}"
        record.finished = now
        return record

    # Summary ---------------------------------------------------------------------------

    def exit_code(self) -> int:
        """0 when no step failed (passed or skipped), 1 when one failed or none ran."""
        if any(r.state is StepState.FAILED for r in self.records):
            return 1
        return 0 if any(r.state is StepState.PASSED for r in self.records) else 1


def _reasons(results: list[CheckResult]) -> str:
    bad = [r for r in results if r.status is not CheckStatus.PASSED]
    return "; ".join(f"{r.name}: {r.detail}" if r.detail else r.name for r in bad)

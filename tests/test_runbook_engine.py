"""The engine's state machine and the runner, driven by a fake executor (no host needed)."""

from __future__ import annotations

from typing import Any

import pytest

from incident_console.runbook.engine import (
    CheckResult,
    CheckStatus,
    Engine,
    FileChange,
    StepRecord,
    StepRefused,
    StepState,
)
from incident_console.runbook.loader import parse_runbook
from incident_console.runbook.runner import Runner
from incident_console.runbook.schema import Check, Step

RUNBOOK = """
name: t
title: test
steps:
  - id: look
    title: Look
    kind: diagnose
    run: [free, -m]
    checks:
      - exit_status: 0
  - id: fix
    title: Fix
    kind: remediate
    requires: [compose_file]
    compose_set:
      environment: {GUNICORN_WORKERS: '{{workers}}'}
  - id: watch
    title: Watch
    kind: verify
    wait: '{{watch}}'
    checks:
      - no_new_oom: true
  - id: by-hand
    title: By hand
    kind: remediate
    manual: push the image
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeExecutor:
    """Scripted outcomes: exit status of run steps, check verdicts per call."""

    def __init__(self, clock: Clock, exit_status: int = 0, oom_at: float | None = None) -> None:
        self.clock = clock
        self.exit_status = exit_status
        self.oom_at = oom_at
        self.performed: list[str] = []
        self.undone: list[FileChange] = []
        self.journaled: list[dict[str, Any]] = []

    async def preview(self, step: Step, variables: dict[str, str]) -> str:
        return f"preview {step.id}"

    async def perform(self, record: StepRecord, variables: dict[str, str], on_output: Any) -> None:
        self.performed.append(record.step.id)
        if record.step.action == "run":
            record.exit_status = self.exit_status
            record.output = "Mem: 1 2 3"
        if record.step.action == "compose_set":
            record.change = FileChange("/srv/c.yml", "/srv/c.yml.bak", "a", "b")
        on_output(record)

    async def evaluate(
        self, check: Check, record: StepRecord, variables: dict[str, str], memo: dict[str, Any]
    ) -> CheckResult:
        # Each evaluation moves time on, as the real poll loop would.
        self.clock.now += 10
        if check.exit_status is not None:
            ok = record.exit_status == check.exit_status
            return CheckResult("exit_status", CheckStatus.PASSED if ok else CheckStatus.FAILED)
        if check.no_new_oom is not None:
            if self.oom_at is not None and self.clock.now >= self.oom_at:
                return CheckResult("no_new_oom", CheckStatus.FAILED, "1 OOM kill")
            return CheckResult("no_new_oom", CheckStatus.PASSED)
        return CheckResult(check.name, CheckStatus.PENDING, "not yet")

    async def undo(self, change: FileChange) -> None:
        self.undone.append(change)

    def journal(self, record: dict[str, Any]) -> None:
        self.journaled.append(record)


def make(read_only: bool = False, **kw: Any) -> tuple[Engine, Runner, FakeExecutor, Clock]:
    clock = Clock()
    runbook = parse_runbook(RUNBOOK)
    variables = {"compose_file": "/srv/c.yml", "workers": "2", "watch": "60s"}
    engine = Engine(runbook, variables, read_only=read_only)
    executor = FakeExecutor(clock, **kw)
    runner = Runner(engine, executor, clock=clock, poll_s=0)
    return engine, runner, executor, clock


async def test_run_all_passes_and_skips_manual_steps() -> None:
    engine, runner, executor, _ = make()
    code = await runner.run_all(confirm=None)
    states = [r.state for r in engine.records]
    assert states == [StepState.PASSED, StepState.PASSED, StepState.PASSED, StepState.SKIPPED]
    assert code == 0
    assert executor.performed == ["look", "fix", "watch"]
    kinds = {r["kind"] for r in executor.journaled}
    assert kinds == {"runbook_step"}
    final = [r for r in executor.journaled if r["state"] == "passed"]
    assert [r["step"] for r in final] == ["look", "fix", "watch"]
    assert final[1]["change"]["backup"] == "/srv/c.yml.bak"


async def test_wait_step_lasts_its_window() -> None:
    engine, runner, _, clock = make()
    i = engine.index("watch")
    start = clock.now
    assert await runner.run(i) is StepState.PASSED
    record = engine.records[i]
    assert record.finished is not None and record.finished - start >= 60


async def test_oom_kill_in_the_window_fails_at_once() -> None:
    engine, runner, _, clock = make(oom_at=1030.0)
    i = engine.index("watch")
    assert await runner.run(i) is StepState.FAILED
    record = engine.records[i]
    assert "1 OOM kill" in record.verdict
    assert record.finished is not None and record.finished < 1000.0 + 60


async def test_failed_check_gives_exit_1() -> None:
    engine, runner, _, _ = make(exit_status=3)
    code = await runner.run_all(confirm=None)
    assert engine.records[0].state is StepState.FAILED
    assert code == 1


async def test_read_only_runs_diagnose_and_verify_only() -> None:
    engine, runner, executor, _ = make(read_only=True)
    assert "read-only" in engine.refusal(engine.index("fix"))
    with pytest.raises(StepRefused):
        await runner.run(engine.index("fix"))
    code = await runner.run_all(confirm=None)
    assert executor.performed == ["look", "watch"]
    assert engine.records[1].state is StepState.SKIPPED
    assert code == 0


async def test_declined_confirmation_leaves_step_pending() -> None:
    engine, runner, executor, _ = make()
    seen: list[str] = []

    async def no(record: StepRecord, preview: str) -> bool:
        seen.append(preview)
        return False

    assert await runner.run(engine.index("fix"), no) is None
    assert seen == ["preview fix"]
    assert engine.records[1].state is StepState.PENDING
    assert executor.performed == []


async def test_missing_variable_is_refused_with_the_fix() -> None:
    clock = Clock()
    engine = Engine(parse_runbook(RUNBOOK), {"workers": "2", "watch": "1s"})
    reason = engine.refusal(engine.index("fix"))
    assert "compose_file" in reason and "--set compose_file=" in reason
    code = await Runner(engine, FakeExecutor(clock), clock=clock, poll_s=0).run_all()
    assert code == 2


async def test_undo_rolls_back_the_step() -> None:
    engine, runner, executor, _ = make()
    i = engine.index("fix")
    await runner.run(i)
    await runner.undo(i)
    assert engine.records[i].state is StepState.ROLLED_BACK
    assert executor.undone == [FileChange("/srv/c.yml", "/srv/c.yml.bak", "a", "b")]
    with pytest.raises(StepRefused):
        await runner.undo(engine.index("look"))


def test_decide_is_pure_and_fails_pending_checks_at_window_end() -> None:
    engine = Engine(parse_runbook(RUNBOOK), {"watch": "1s"})
    engine.start(0, 1.0)
    pending = [CheckResult("exit_status", CheckStatus.PENDING, "")]
    assert engine.decide(0, pending, window_over=False, now=2.0) is None
    assert engine.decide(0, pending, window_over=True, now=3.0) is StepState.FAILED
    assert engine.records[0].checks[0].status is CheckStatus.FAILED
    assert "not seen in time" in engine.records[0].verdict


def test_navigation_clamps() -> None:
    engine = Engine(parse_runbook(RUNBOOK), {})
    assert engine.move(-1).step.id == "look"
    assert engine.move(10).step.id == "by-hand"
    assert engine.move(-1).step.id == "watch"


def test_journaled_title_is_rendered_with_the_variables() -> None:
    runbook = parse_runbook(RUNBOOK.replace("title: Watch", "title: 'Watch for {{watch}}'"), "t")
    record = StepRecord(step=runbook.steps[2])
    assert record.to_record("t", {"watch": "90s"})["title"] == "Watch for 90s"
    # A variable the run does not know leaves the template as written, never a crash.
    assert record.to_record("t", {})["title"] == "Watch for {{watch}}"

"""The runner: drives the pure Engine with an executor, on the event loop.

It asks the executor to preview (command or diff) and perform a step, then evaluates the step's
checks every `poll_s` until the engine decides; `wait` steps watch for their whole window.
Every step is journaled when it starts and when it ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from incident_console.runbook.engine import (
    CheckResult,
    Engine,
    FileChange,
    StepRecord,
    StepRefused,
    StepState,
    changes_server,
)
from incident_console.runbook.schema import Check, Step, render
from incident_console.runbook.units import DurationError, parse_duration


class Executor(Protocol):
    """What the runner needs from the actions layer (actions.HostExecutor; fakes in tests)."""

    async def preview(self, step: Step, variables: dict[str, str]) -> str: ...

    async def perform(
        self, record: StepRecord, variables: dict[str, str], on_output: Callable[[StepRecord], None]
    ) -> None: ...

    async def evaluate(
        self, check: Check, record: StepRecord, variables: dict[str, str], memo: dict[str, Any]
    ) -> CheckResult: ...

    async def undo(self, change: FileChange) -> None: ...

    def journal(self, record: dict[str, Any]) -> None: ...


#: Asked before a step that changes the server: (record, preview) -> go ahead?
Confirm = Callable[[StepRecord, str], Awaitable[bool]]
Listener = Callable[[StepRecord], None]


class Runner:
    """Runs steps of an Engine with an Executor."""

    def __init__(
        self,
        engine: Engine,
        executor: Executor,
        *,
        clock: Callable[[], float] = time.time,
        poll_s: float = 1.0,
        on_change: Listener | None = None,
    ) -> None:
        self.engine = engine
        self.executor = executor
        self.clock = clock
        self.poll_s = poll_s
        self.on_change = on_change

    def _notify(self, record: StepRecord) -> None:
        if self.on_change is not None:
            self.on_change(record)

    def _window(self, step: Step) -> float:
        text = step.wait if step.action == "wait" and step.wait else step.settle
        return parse_duration(render(text, self.engine.variables))

    def _journal(self, record: StepRecord) -> None:
        self.executor.journal(record.to_record(self.engine.runbook.name, self.engine.variables))

    async def run(self, i: int, confirm: Confirm | None = None) -> StepState | None:
        """Run step `i` to its verdict. Returns None when the operator declined.

        Raises:
            StepRefused: the engine will not run it now (read-only, manual, missing variable).
        """
        engine = self.engine
        reason = engine.refusal(i)
        if reason:
            raise StepRefused(reason)
        record = engine.records[i]
        variables = engine.variables
        if confirm is not None and engine.needs_confirmation(i):
            preview = await self.executor.preview(record.step, variables)
            if not await confirm(record, preview):
                return None
        engine.start(i, self.clock())
        self._notify(record)
        self._journal(record)
        try:
            state = await self._drive(i, record, variables)
        except asyncio.CancelledError:
            engine.decide(i, record.checks, window_over=True, now=self.clock(), error="cancelled")
            self._journal(record)
            self._notify(record)
            raise
        self._journal(record)
        self._notify(record)
        return state

    async def _drive(self, i: int, record: StepRecord, variables: dict[str, str]) -> StepState:
        engine = self.engine
        try:
            window = self._window(record.step)
        except DurationError as exc:
            return (
                engine.decide(i, [], window_over=True, now=self.clock(), error=str(exc))
                or StepState.FAILED
            )
        try:
            await self.executor.perform(record, variables, self._notify)
        except Exception as exc:  # an action's failure is the step's verdict, not a crash
            error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return (
                engine.decide(i, [], window_over=True, now=self.clock(), error=error)
                or StepState.FAILED
            )
        # The window of a wait step starts once its action is done (immediately).
        deadline = self.clock() + window
        memos: list[dict[str, Any]] = [{} for _ in record.step.checks]
        while True:
            results = [
                await self.executor.evaluate(check, record, variables, memo)
                for check, memo in zip(record.step.checks, memos, strict=True)
            ]
            now = self.clock()
            state = engine.decide(i, results, window_over=now >= deadline, now=now)
            self._notify(record)
            if state is not None:
                return state
            await asyncio.sleep(min(self.poll_s, max(0.0, deadline - now)) or self.poll_s)

    async def undo(self, i: int) -> StepRecord:
        """Restore the file step `i` changed from its backup; the step becomes rolled_back."""
        record = self.engine.records[i]
        if record.change is None:
            raise StepRefused("this step changed no file: nothing to undo")
        if self.engine.read_only:
            raise StepRefused("read-only: undo refused")
        await self.executor.undo(record.change)
        self.engine.rolled_back(i, self.clock())
        self._journal(record)
        self._notify(record)
        return record

    async def run_all(
        self,
        confirm: Confirm | None = None,
        *,
        on_start: Listener | None = None,
        on_done: Listener | None = None,
    ) -> int:
        """Run every step in order. Returns 0 all passed, 1 a check failed, 2 an error.

        Manual steps and (in read-only mode) steps that may change the server are skipped with
        the reason (the monitor's door would refuse them anyway). A failed remediate step stops
        the run: verifying a fix that was not applied proves nothing.
        """
        engine = self.engine
        for i, record in enumerate(engine.records):
            engine.cursor = i
            reason = engine.refusal(i)
            if reason:
                if record.step.action == "manual" or (
                    engine.read_only and changes_server(record.step)
                ):
                    engine.skip(i, self.clock(), reason)
                    self._journal(record)
                    if on_done:
                        on_done(record)
                    continue
                record.verdict = reason
                record.state = StepState.FAILED
                self._journal(record)
                if on_done:
                    on_done(record)
                return 2
            if on_start:
                on_start(record)
            state = await self.run(i, confirm)
            if state is None:
                engine.skip(i, self.clock(), "declined by the operator")
                self._journal(record)
            if on_done:
                on_done(record)
            if state is StepState.FAILED and record.step.kind == "remediate":
                break
        return engine.exit_code()

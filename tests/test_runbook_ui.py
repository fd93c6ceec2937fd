"""Pilot tests of the runbook walkthrough screen with a fake monitor and a fake executor."""

from __future__ import annotations

from textual.app import App
from textual.widgets import ListView, Static

from incident_console.runbook.engine import FileChange, StepState
from incident_console.runbook.loader import parse_runbook
from incident_console.ui.demo import RecordingMonitor, demo_monitor
from incident_console.ui.screens.confirm import ConfirmScreen
from incident_console.ui.screens.runbook import RunbookScreen
from test_runbook_engine import RUNBOOK, Clock, FakeExecutor

SIZE = (150, 45)
VARIABLES = {"compose_file": "/srv/c.yml", "workers": "2", "watch": "1s"}


class Host(App[None]):
    def __init__(self, screen: RunbookScreen) -> None:
        super().__init__()
        self.rb = screen

    def on_mount(self) -> None:
        self.push_screen(self.rb)


def screen_for(read_only: bool = False) -> tuple[RunbookScreen, FakeExecutor]:
    executor = FakeExecutor(Clock())
    screen = RunbookScreen(
        RecordingMonitor("prod", read_only=read_only),
        parse_runbook(RUNBOOK),
        executor=executor,
        variables=dict(VARIABLES),
    )
    return screen, executor


async def settle(pilot: object, screen: RunbookScreen, i: int) -> None:
    for _ in range(100):
        await pilot.pause(0.05)  # type: ignore[attr-defined]
        if screen.engine.records[i].done:
            return


async def test_enter_runs_remediate_confirms_and_undo_restores() -> None:
    screen, executor = screen_for()
    app = Host(screen)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert len(screen.query_one("#rb-steps", ListView).children) == 4
        await pilot.press("enter")
        await settle(pilot, screen, 0)
        assert screen.engine.records[0].state is StepState.PASSED
        assert "exit_status" in str(screen.query_one("#rb-checks", Static).render())

        await pilot.press("n")
        assert screen.engine.cursor == 1
        await pilot.pause()
        assert "preview fix" in str(screen.query_one("#rb-action", Static).render())
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)  # remediate steps confirm first
        assert executor.performed == ["look"]
        await pilot.press("y")
        await settle(pilot, screen, 1)
        assert screen.engine.records[1].state is StepState.PASSED

        await pilot.press("u")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        for _ in range(40):
            await pilot.pause(0.05)
            if screen.engine.records[1].state is StepState.ROLLED_BACK:
                break
        assert screen.engine.records[1].state is StepState.ROLLED_BACK
        assert executor.undone == [FileChange("/srv/c.yml", "/srv/c.yml.bak", "a", "b")]

        await pilot.press("n", "s")
        assert screen.engine.records[2].state is StepState.SKIPPED
        assert screen.engine.cursor == 3
        await pilot.press("p")
        assert screen.engine.cursor == 2


async def test_declining_leaves_the_step_pending() -> None:
    screen, executor = screen_for()
    async with Host(screen).run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("n", "enter")
        await pilot.pause()
        await pilot.press("n")  # the confirm screen's "no"
        await pilot.pause(0.2)
        assert screen.engine.records[1].state is StepState.PENDING
        assert executor.performed == []


async def test_read_only_runs_diagnose_and_verify_and_disables_the_rest() -> None:
    screen, executor = screen_for(read_only=True)
    app = Host(screen)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "read-only" in str(screen.query_one("#rb-banner", Static).render())
        await pilot.press("n", "enter")  # the remediate step
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmScreen)
        assert screen.engine.records[1].state is StepState.PENDING
        assert "read-only" in str(screen.query_one("#rb-step-title", Static).render())
        assert executor.performed == []
        assert screen.check_action("undo_step", ()) is False
        await pilot.press("n", "enter")  # the verify step still runs
        await settle(pilot, screen, 2)
        assert screen.engine.records[2].state is StepState.PASSED
        assert executor.performed == ["watch"]


async def test_builtin_runbook_opens_on_the_demo_monitor() -> None:
    monitor = demo_monitor()
    screen = RunbookScreen(monitor, "oom-after-deploy")
    async with Host(screen).run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert len(screen.engine.records) == 10
        assert screen.engine.variables["service"] == "backend"
        assert screen.engine.variables["watch"] == "30m"
        await pilot.press("n")
        await pilot.pause(0.2)
        action = str(screen.query_one("#rb-action", Static).render())
        assert "dmesg" in action

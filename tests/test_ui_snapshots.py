"""Snapshot tests: every screen and state a user meets, at 120x40 and 200x50.

The demo incident (and a lab's stack beside it) with a frozen clock and local time in UTC:
the dashboard with a kill in each theme, read-only, a stale link, a first connection, two
host tabs, a burst of kills folded into one toast, a filter; the container detail with a
short and a long history; the walkthrough at a diagnose, a remediate (its diff) and a verify
step; the restart confirmation; help.

Regenerate after an intended change with ``pytest tests/test_ui_snapshots.py --snapshot-update``
and look at the report before committing the new SVGs.
"""

from __future__ import annotations

import difflib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from incident_console.config import Settings
from incident_console.domain.events import OomConstraint, OomKill
from incident_console.runbook.engine import StepRecord
from incident_console.runbook.schema import Step
from incident_console.transport.base import ConnectionState, LinkState
from incident_console.ui.app import IncidentApp, make_app
from incident_console.ui.demo import DEMO_NOW, MiB, RecordingMonitor, demo_monitor, lab_monitor
from incident_console.ui.screens.runbook import RunbookScreen

THEMES = Path(__file__).resolve().parents[1] / "themes"
SIZES = {"120x40": (120, 40), "200x50": (200, 50)}
sizes = pytest.mark.parametrize("size", list(SIZES))


@pytest.fixture(autouse=True)
def utc_clock() -> object:
    """Local time is UTC, so hh:mm:ss in the screenshots is the same on every machine."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


def app_for(*monitors: RecordingMonitor, theme: str = "incident-dark") -> IncidentApp:
    return make_app(
        Settings(theme=theme),
        list(monitors),
        clock=lambda: DEMO_NOW,
        theme_dirs=[THEMES],
    )


def snap(snap_compare: Any, app: IncidentApp, size: str, **kwargs: Any) -> None:
    assert snap_compare(app, terminal_size=SIZES[size], **kwargs)


# The dashboard -----------------------------------------------------------------------------


@sizes
@pytest.mark.parametrize("theme", ["incident-dark", "incident-light", "projector"])
def test_dashboard_with_a_kill(snap_compare: Any, theme: str, size: str) -> None:
    snap(snap_compare, app_for(lab_monitor(), theme=theme), size)


@sizes
def test_dashboard_read_only(snap_compare: Any, size: str) -> None:
    snap(snap_compare, app_for(lab_monitor(read_only=True)), size)


@sizes
def test_dashboard_stale_link(snap_compare: Any, size: str) -> None:
    monitor = lab_monitor()
    monitor.set_link(ConnectionState(LinkState.STALE, since=DEMO_NOW - 25, reason="no keepalive"))
    snap(snap_compare, app_for(monitor), size)


@sizes
def test_dashboard_first_connection(snap_compare: Any, size: str) -> None:
    # serve connecting for the first time: nothing read yet, so nothing is "last known".
    monitor = RecordingMonitor("prod")
    monitor.host.state = ConnectionState(LinkState.CONNECTING, since=DEMO_NOW - 3)
    monitor.state.link, monitor.state.link_since = "connecting", DEMO_NOW - 3
    snap(snap_compare, app_for(monitor), size)


@sizes
def test_two_host_tabs(snap_compare: Any, size: str) -> None:
    snap(snap_compare, app_for(lab_monitor("prod"), demo_monitor("staging", read_only=True)), size)


@sizes
def test_burst_of_kills_is_one_toast(snap_compare: Any, size: str) -> None:
    monitor = lab_monitor()

    async def burst(pilot: Any) -> None:
        await pilot.pause()
        backend = next(
            v.info.id
            for v in monitor.state.containers.values()
            if v.info.name == "icbench31926_backend_1"
        )
        for k in range(3):
            monitor.post(
                OomKill(
                    time=DEMO_NOW - 20 + k * 10,
                    pid=32000 + k,
                    process="gunicorn",
                    constraint=OomConstraint.LIMIT,
                    anon_rss_bytes=230 * MiB,
                    container_id=backend,
                    container="icbench31926_backend_1",
                    service="backend",
                    source="dmesg",
                )
            )
        await pilot.pause()

    app = app_for(monitor)
    snap(snap_compare, app, size, run_before=burst)


@sizes
def test_dashboard_filtered(snap_compare: Any, size: str) -> None:
    snap(
        snap_compare,
        app_for(lab_monitor()),
        size,
        press=["slash", "f", "r", "o", "n", "t", "enter"],
    )


@sizes
def test_confirm_restart(snap_compare: Any, size: str) -> None:
    snap(snap_compare, app_for(lab_monitor()), size, press=["r"])


@sizes
def test_help(snap_compare: Any, size: str) -> None:
    snap(snap_compare, app_for(lab_monitor()), size, press=["question_mark"])


# The container detail ------------------------------------------------------------------------


@sizes
def test_detail_short_history(snap_compare: Any, size: str) -> None:
    # Two minutes of samples: the time axis is two minutes, not a half hour.
    snap(snap_compare, app_for(lab_monitor(minutes=2)), size, press=["down", "enter"])


@sizes
def test_detail_long_history(snap_compare: Any, size: str) -> None:
    # Forty minutes of samples: the axis stops at the half hour the chart keeps.
    snap(snap_compare, app_for(lab_monitor(minutes=40)), size, press=["down", "enter"])


# The walkthrough -----------------------------------------------------------------------------

COMPOSE_BEFORE = """services:
  backend:
    image: icbench/backend:lab
    environment:
      GUNICORN_WORKERS: "4"
    mem_limit: 256m
"""


class DiffExecutor:
    """A walkthrough executor for pictures: a compose step's preview is a real unified diff
    of a compose file; nothing is run (the steps shown have not been run)."""

    async def preview(self, step: Step, variables: dict[str, str]) -> str:
        after = COMPOSE_BEFORE.replace('"4"', '"2"\n      GUNICORN_MAX_REQUESTS: "200"')
        return "".join(
            difflib.unified_diff(
                COMPOSE_BEFORE.splitlines(keepends=True),
                after.splitlines(keepends=True),
                "docker-compose.yml",
                "docker-compose.yml (after)",
            )
        )

    async def perform(self, record: StepRecord, variables: dict[str, str], on_output: Any) -> None:
        raise AssertionError("the pictures run no step")

    async def evaluate(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the pictures run no step")

    async def undo(self, change: Any) -> None:
        raise AssertionError("the pictures undo nothing")

    def journal(self, record: dict[str, Any]) -> None:
        pass


def walkthrough_at(step: int) -> Callable[[Any], Any]:
    async def open_and_move(pilot: Any) -> None:
        app = pilot.app
        screen = RunbookScreen(
            app.monitors[0], "oom-after-deploy", executor=DiffExecutor(), selected=None
        )
        await app.push_screen(screen)
        await pilot.pause()
        # As the variables form (v) sets them: what `lab load` traffic would have measured
        # (the demo has no access lines to measure).
        screen._apply(
            {"workers": "2", "max_requests": "200", "max_requests_jitter": "50"},
            "set in the walkthrough",
        )
        # Its toast goes after a few seconds: a slow run would picture it or not.
        await pilot.pause()
        app.clear_notifications()
        await pilot.pause()
        for _ in range(step):
            await pilot.press("n")
        await pilot.pause(0.2)

    return open_and_move


@sizes
@pytest.mark.parametrize(("kind", "step"), [("diagnose", 1), ("remediate", 5), ("verify", 8)])
def test_walkthrough(snap_compare: Any, size: str, kind: str, step: int) -> None:
    snap(snap_compare, app_for(demo_monitor()), size, run_before=walkthrough_at(step))

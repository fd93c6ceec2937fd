"""Snapshot tests: the demo incident with a frozen clock, in every theme, detail and help.

Regenerate after an intended change with ``pytest tests/test_ui_snapshots.py --snapshot-update``
and look at the report before committing the new SVGs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from incident_console.config import Settings
from incident_console.ui.app import IncidentApp, make_app
from incident_console.ui.demo import DEMO_NOW, demo_monitor

THEMES = Path(__file__).resolve().parents[1] / "themes"
SIZE = (160, 45)


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


def demo_app(theme: str = "incident-dark", **kwargs: object) -> IncidentApp:
    return make_app(
        Settings(theme=theme),
        [demo_monitor(**kwargs)],  # type: ignore[arg-type]
        clock=lambda: DEMO_NOW,
        theme_dirs=[THEMES],
    )


@pytest.mark.parametrize("theme", ["incident-dark", "incident-light", "projector"])
def test_dashboard(snap_compare: object, theme: str) -> None:
    assert snap_compare(demo_app(theme), terminal_size=SIZE)  # type: ignore[operator]


def test_dashboard_read_only(snap_compare: object) -> None:
    assert snap_compare(demo_app(read_only=True), terminal_size=SIZE)  # type: ignore[operator]


def test_detail(snap_compare: object) -> None:
    assert snap_compare(demo_app(), press=["enter"], terminal_size=SIZE)  # type: ignore[operator]


def test_help(snap_compare: object) -> None:
    assert snap_compare(demo_app(), press=["question_mark"], terminal_size=SIZE)  # type: ignore[operator]

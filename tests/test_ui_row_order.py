"""The containers table keeps its order when values tie and jitter; the cursor keeps its row.

Seen: rows swapped places every ~2 s when their memory shares were close, three presses of
Down toward the backend landed on redis, and a restart dialog named the frontend.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from incident_console.config import Settings
from incident_console.domain.events import ContainerSample
from incident_console.domain.forecast import Forecast
from incident_console.ui.app import IncidentApp, make_app
from incident_console.ui.demo import DEMO_NOW, MiB, RecordingMonitor, demo_monitor
from incident_console.ui.screens.confirm import ConfirmScreen
from incident_console.ui.widgets.container_rows import forecast_cell
from incident_console.ui.widgets.containers import ContainersTable

THEMES = Path(__file__).resolve().parents[1] / "themes"
SIZE = (160, 45)
#: Rows whose share of the limit we set by hand (the backend stays first: OOM + unhealthy).
JITTERING = ("app-frontend-1", "app-db-1", "app-proxy-1", "app-worker-5", "app-worker-6",
             "app-worker-7")  # fmt: skip


def app_for(monitor: RecordingMonitor) -> IncidentApp:
    return make_app(Settings(), [monitor], clock=lambda: DEMO_NOW, theme_dirs=[THEMES])


def names(app: IncidentApp) -> list[str]:
    table = app.query_one(ContainersTable)
    return [str(table.get_cell(key, "name")) for key in table._keys]


def selected_name(app: IncidentApp) -> str:
    table = app.query_one(ContainersTable)
    assert table.selected_id is not None
    return str(table.get_cell(table.selected_id, "name"))


def jitter(monitor: RecordingMonitor, round_: int) -> None:
    """One refresh's samples: every jittering row at 15% +- 1%, the signs flipping each round
    (so any order by the raw share flips too), two of them exactly tied."""
    views = {v.info.name: v for v in monitor.state.containers.values()}
    for i, name in enumerate(JITTERING):
        view = views[name]
        limit = view.info.memory_limit_bytes
        share = 0.15 if i in (0, 1) else 0.15 + (0.01 if (i + round_) % 2 else -0.01)
        monitor.post(
            ContainerSample(
                time=DEMO_NOW + round_,
                id=view.info.id,
                memory_used_bytes=int(limit * share),
                memory_limit_bytes=limit,
                cpu_percent=1.0,
            )  # fmt: skip
        )


async def test_tied_jittering_rows_keep_their_place_under_the_cursor() -> None:
    monitor = demo_monitor(containers=8)
    app = app_for(monitor)
    async with app.run_test(size=SIZE) as pilot:
        jitter(monitor, 0)
        app.refresh_views()
        await pilot.pause()
        order = names(app)
        assert order[0] == "app-backend-1"
        assert selected_name(app) == "app-backend-1"
        for round_ in range(1, 7):
            jitter(monitor, round_)
            app.refresh_views()
            await pilot.pause()
            assert names(app) == order, f"round {round_}: rows moved"
            if round_ <= 3:
                await pilot.press("down")
                await pilot.pause()
                assert selected_name(app) == order[round_]
        # Three presses of Down from the top land on the fourth row as it was shown.
        target = order[3]
        assert selected_name(app) == target
        await pilot.press("r")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ConfirmScreen)
        assert f"docker restart {target}" in screen.action_text.plain
        await pilot.press("y")
        await pilot.pause()
        await app.workers.wait_for_complete()
        view = next(v for v in monitor.state.containers.values() if v.info.name == target)
        assert monitor.restarted == [view.info.id]


async def test_a_row_moves_when_its_rank_really_changes_and_the_cursor_follows_it() -> None:
    monitor = demo_monitor(containers=8)
    app = app_for(monitor)
    async with app.run_test(size=SIZE) as pilot:
        jitter(monitor, 0)
        app.refresh_views()
        await pilot.pause()
        order = names(app)
        await pilot.press("end")
        await pilot.pause()
        last = order[-1]
        assert selected_name(app) == last
        view = next(v for v in monitor.state.containers.values() if v.info.name == last)
        if view.info.memory_limit_bytes:
            # From 15% to 80% of its limit: a real change of rank.
            limit = view.info.memory_limit_bytes
            monitor.post(ContainerSample(time=DEMO_NOW + 1, id=view.info.id,
                                         memory_used_bytes=int(limit * 0.8),
                                         memory_limit_bytes=limit, cpu_percent=1.0))  # fmt: skip
        else:
            # No limit to measure against: it turns unhealthy instead.
            monitor.post(dataclasses.replace(view.info, health="unhealthy", time=DEMO_NOW))
        app.refresh_views()
        await pilot.pause()
        moved = names(app)
        assert moved.index(last) == 1  # right after the backend (OOM + unhealthy)
        assert selected_name(app) == last  # the cursor stayed on its container
        assert monitor.state.containers[view.info.id].info.name == last
        # One MiB more is no new rank: nothing moves again.
        monitor.post(ContainerSample(time=DEMO_NOW + 2, id=view.info.id,
                                     memory_used_bytes=(view.latest.memory_used_bytes
                                                        if view.latest else 0) + MiB,
                                     memory_limit_bytes=view.info.memory_limit_bytes or 2**63,
                                     cpu_percent=1.0))  # fmt: skip
        app.refresh_views()
        await pilot.pause()
        assert names(app) == moved


def test_to_limit_cell_says_which_and_never_zero_below_the_limit() -> None:
    assert forecast_cell(None) == "-"
    assert forecast_cell(Forecast("too_little_data", span_s=14.0)) == "<2m data"
    assert forecast_cell(Forecast("stable", 0.0, None, 1.0, 300.0)) == "stable"
    assert forecast_cell(Forecast("at_limit")) == "at limit"
    assert forecast_cell(Forecast("shrinking", -5.0)) == "falling"
    assert forecast_cell(Forecast("growing", 1.0, 0.3, horizon_s=600.0)) == "1s"
    assert forecast_cell(Forecast("growing", 1.0, 294.0, horizon_s=600.0)) == "4m54s"
    assert forecast_cell(Forecast("growing", 1.0, None, horizon_s=1800.0)) == "not soon"

"""Where the engineer looks: the OOM pop-up's 'likely leak' line and the detail's routes table."""

from __future__ import annotations

from pathlib import Path

from incident_console.config import Settings
from incident_console.domain.events import OomConstraint, OomKill
from incident_console.ui.app import IncidentApp, make_app
from incident_console.ui.demo import DEMO_NOW, RecordingMonitor, demo_monitor
from incident_console.ui.screens.detail import ContainerDetailScreen
from incident_console.ui.widgets.routes import RoutesTable

THEMES = Path(__file__).resolve().parents[1] / "themes"
SIZE = (160, 45)


def app_for(monitor: RecordingMonitor) -> IncidentApp:
    return make_app(Settings(), [monitor], clock=lambda: DEMO_NOW, theme_dirs=[THEMES])


def _backend(monitor: RecordingMonitor) -> str:
    return next(c for c, v in monitor.state.containers.items() if v.info.service == "backend")


async def test_oom_popup_names_the_likely_leak() -> None:
    monitor = demo_monitor()
    app = app_for(monitor)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        monitor.post(
            OomKill(
                time=DEMO_NOW, pid=7, process="gunicorn", container_id=_backend(monitor),
                constraint=OomConstraint.LIMIT, anon_rss_bytes=200 << 20,
            )
        )  # fmt: skip
        await pilot.pause()
        texts = [n.message for n in app._notifications]
        popup = next(t for t in texts if "gunicorn pid 7" in t)
        assert "\nlikely leak: GET /api/v1/items, ~1.0 MiB/request" in popup


async def test_oom_popup_without_estimate_has_no_leak_line() -> None:
    monitor = demo_monitor()
    monitor.state.leaks.clear()
    app = app_for(monitor)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        monitor.post(
            OomKill(
                time=DEMO_NOW, pid=8, process="gunicorn", container_id=_backend(monitor),
                constraint=OomConstraint.LIMIT, anon_rss_bytes=200 << 20,
            )
        )  # fmt: skip
        await pilot.pause()
        popup = next(n.message for n in app._notifications if "gunicorn pid 8" in n.message)
        assert "likely leak" not in popup


async def test_detail_shows_the_routes_worst_first() -> None:
    monitor = demo_monitor()
    app = app_for(monitor)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.push_screen(ContainerDetailScreen(monitor, _backend(monitor), read_only=False))
        await pilot.pause()
        table = app.screen.query_one(RoutesTable)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert rows[0][:5] == ["! GET /api/v1/items", "412", "1024", "21", "93%"]
        assert [r[0].strip() for r in rows[1:]] == ["GET /api/v1/orders", "GET /api/v1/health"]
        assert str(table.border_title).startswith("Routes: likely leak GET /api/v1/items")
        # The estimate changes: the table follows it; no estimate says so.
        monitor.state.leaks.clear()
        monitor.state.version += 1
        app.refresh_views()
        await pilot.pause()
        assert table.row_count == 0
        assert str(table.border_title) == "Routes: no requests seen yet"

"""The log pane under a stream (bounded, rows and matches in step, the rate said, rows drawn
the same on the fast path) and the table's row-level repaint."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from textual.strip import Strip

from incident_console.config import Settings
from incident_console.domain.events import LogLine, LogSignal
from incident_console.ui.app import IncidentApp, make_app
from incident_console.ui.demo import DEMO_NOW, RecordingMonitor, demo_monitor
from incident_console.ui.widgets.containers import ContainersTable
from incident_console.ui.widgets.logs import LogPane

THEMES = Path(__file__).resolve().parents[1] / "themes"
SIZE = (160, 45)


def app_for(monitor: RecordingMonitor) -> IncidentApp:
    return make_app(Settings(), [monitor], clock=lambda: DEMO_NOW, theme_dirs=[THEMES])


async def test_a_stream_past_the_cap_keeps_rows_matches_and_the_view_in_step() -> None:
    monitor = demo_monitor()
    backend = next(iter(monitor.state.containers))
    app = app_for(monitor)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        logs = app.query_one(LogPane)
        logs.cap = 300
        logs._lines = type(logs._lines)(logs._lines, maxlen=300)
        logs._shown = type(logs._shown)(logs._shown, maxlen=300)
        logs.set_search("needle")
        for n in range(1000):
            text = f"line {n}" + (" needle" if n % 100 == 7 else "")
            monitor.post(LogLine(time=DEMO_NOW, id=backend, container="app-backend-1", text=text))
            if n % 250 == 249:
                app.refresh_views()
        app.refresh_views()
        await pilot.pause()
        assert len(logs._shown) == 300
        assert logs._shown[-1].text == "line 999"
        # Lines 707, 807, 907 are within the last 300; earlier matches left with their rows.
        assert logs.match_count == 3
        logs.action_next_match()
        assert logs._shown[logs.current_row].text == "line 707 needle"
        logs.action_next_match()
        assert logs._shown[logs.current_row].text == "line 807 needle"
        # What is on screen is rendered from the kept lines, plain text.
        assert "line 807 needle" in logs.lines[logs.current_row].text
        assert logs.received >= 1000


async def test_an_unreadable_rate_is_said_in_the_border() -> None:
    monitor = demo_monitor()
    backend = next(iter(monitor.state.containers))
    app = app_for(monitor)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        logs = app.query_one(LogPane)
        assert "showing the latest" not in str(logs.border_subtitle)
        logs._rate_since -= 1.0  # a second of arrivals, without sleeping one
        for n in range(500):
            monitor.post(LogLine(time=DEMO_NOW, id=backend, container="app-backend-1", text=f"{n}"))
        app.refresh_views()
        await pilot.pause()
        assert "lines/s, showing the latest" in str(logs.border_subtitle)
        assert logs._shown[-1].text == "499"


async def test_a_changed_cell_is_painted_and_its_neighbours_kept() -> None:
    # The table repaints only the lines whose cells changed; the others keep their strips.
    monitor = demo_monitor()
    app = app_for(monitor)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.query_one(ContainersTable)
        before = "\n".join(strip.text for strip in table.render_lines(table.region.reset_offset))
        assert "77%" not in before
        view = monitor.state.containers[table._keys[0]]
        latest = view.samples[-1]
        monitor.post(replace(latest, time=latest.time + 1, cpu_percent=77.0))
        app.refresh_views()
        await pilot.pause()
        after = "\n".join(strip.text for strip in table.render_lines(table.region.reset_offset))
        assert "77%" in after
        assert str(table.get_cell(table._keys[1], "name")) in after


async def test_a_row_drawn_on_the_fast_path_is_the_row_rich_draws() -> None:
    # Rows on screen are built from segments directly (no Rich console); they must be the
    # same cells and styles as rendering the row's Text would give.
    monitor = demo_monitor()
    backend = next(iter(monitor.state.containers))
    app = app_for(monitor)
    texts = ["plain GET /x 200", "wide 日本語 ok", "[bold]not markup[/]", "x" * 400]
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        logs = app.query_one(LogPane)
        for text in texts:
            monitor.post(LogLine(time=DEMO_NOW, id=backend, container="app-backend-1", text=text))
        monitor.post(
            LogLine(
                time=DEMO_NOW,
                id=backend,
                container="a-very-long-container-name-1",
                text="[ERROR] Worker (pid:7) was sent SIGKILL!",
                signal=LogSignal.WORKER_KILLED,
            )
        )
        app.refresh_views()
        await pilot.pause()
        style = logs.rich_style
        shown = list(logs._shown)[-5:]
        assert [line.text for line in shown[:4]] == texts
        for line in shown:
            fast = Strip(*logs._row_segments(line, style)).simplify()
            rich = logs._strip(line).apply_style(style).simplify()
            assert fast.cell_length == rich.cell_length
            assert [(s.text, s.style) for s in fast] == [(s.text, s.style) for s in rich]

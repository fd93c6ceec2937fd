"""What the screen says back (issue 17): toasts folded, the theme named, the filter shown and
applied to the Health pane, the palette's host, a restart's outcome, a first connection, and
lines that fit their panes. Pilot tests on the demo incident with a frozen clock."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static

from incident_console.config import Settings
from incident_console.domain.events import ContainerEvent, OomConstraint, OomKill
from incident_console.transport.base import ConnectionState, LinkState
from incident_console.ui import format as fmt
from incident_console.ui.app import IncidentApp, make_app
from incident_console.ui.demo import DEMO_NOW, MiB, RecordingMonitor, demo_monitor, lab_monitor
from incident_console.ui.screens.confirm import ConfirmScreen
from incident_console.ui.screens.detail import chart_span, folded_events
from incident_console.ui.screens.help import help_entries
from incident_console.ui.toasts import break_path
from incident_console.ui.widgets.containers import ContainersTable
from incident_console.ui.widgets.panes import HealthPane, HostMemoryPane, OomFeed

THEMES = Path(__file__).resolve().parents[1] / "themes"
SIZE = (120, 40)


def app_for(monitor: RecordingMonitor) -> IncidentApp:
    return make_app(Settings(), [monitor], clock=lambda: DEMO_NOW, theme_dirs=[THEMES])


def toasts(app: IncidentApp) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


def kill(monitor: RecordingMonitor, name: str, at: float, pid: int) -> None:
    view = monitor.state.container_by_name(name)
    assert view is not None
    monitor.post(
        OomKill(
            time=at,
            pid=pid,
            process="gunicorn",
            constraint=OomConstraint.LIMIT,
            anon_rss_bytes=200 * MiB,
            container_id=view.info.id,
            container=name,
            service=view.info.service,
            source="dmesg",
        )
    )


async def test_a_burst_of_kills_is_one_toast_and_many_containers_do_not_stack() -> None:
    monitor = lab_monitor()
    app = app_for(monitor)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause()
        for k in range(3):
            kill(monitor, "icbench31926_backend_1", DEMO_NOW - 20 + k * 10, 100 + k)
        await pilot.pause()
        shown = [t for t in toasts(app) if "OOM" in t]
        assert shown == [
            "3 OOM kills: prod: 3 OOM kills of icbench31926_backend_1 (backend) in 20 s"
            " [limit]\nlast: gunicorn pid 102 rss 200M"
        ]
        # Four more containers killed: two toasts of their own at most, the rest gathered.
        for k, name in enumerate(
            ("app-db-1", "app-proxy-1", "app-frontend-1", "icbench31926_loadgen_1")
        ):
            kill(monitor, name, DEMO_NOW - 5 + k, 200 + k)
        await pilot.pause()
        shown = [t for t in toasts(app) if "OOM" in t]
        assert len(shown) == 3, shown
        assert shown[-1] == (
            "3 OOM kills: prod: 3 more OOM kills in 2 s:"
            " app-proxy-1, app-frontend-1, icbench31926_loadgen_1"
        )


def test_a_long_path_breaks_after_a_slash() -> None:
    path = "/root/.local/share/incident-console/journals/prod-20261201T165828Z-local.jsonl"
    lines = break_path(path, 44).split("\n")
    assert "".join(lines) == path
    assert all(len(line) <= 44 for line in lines[:-1])
    assert all(line.endswith("/") for line in lines[:-1])  # never inside a name
    assert break_path("short words stay", 44) == "short words stay"


async def test_t_says_which_theme_is_on() -> None:
    app = app_for(demo_monitor())
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("t")
        await pilot.pause()
        assert app.theme == "incident-light"
        assert "theme: theme incident-light (2 of 3)" in toasts(app)


async def test_a_filter_shows_on_the_table_and_filters_the_health_pane() -> None:
    app = app_for(lab_monitor())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", "f", "r", "o", "n", "t", "enter")
        await pilot.pause()
        table = app.query_one(ContainersTable)
        assert table.border_subtitle == "filter 'front': 2 of 8"
        health = app.query_one(HealthPane)
        text = str(health.render())
        assert "icbench31926_frontend_1" in text and "app-frontend-1" in text
        assert "app-backend-1" not in text and "app-db-1" not in text
        assert health.border_subtitle == "filter 'front'"
        await pilot.press("escape")  # clears the filter, in both panes
        await pilot.pause()
        assert not table.border_subtitle and not health.border_subtitle
        assert "app-backend-1" in str(health.render())


async def test_the_palette_finds_the_one_host() -> None:
    app = app_for(demo_monitor())
    async with app.run_test(size=SIZE):
        names = [command.name for command in app.command_table()]
        assert "host prod" in names
        assert "container app-backend-1 (prod)" in names


async def test_a_confirmed_restart_says_it_started_and_finished() -> None:
    monitor = demo_monitor()
    app = app_for(monitor)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        for _ in range(40):
            await pilot.pause(0.05)
            if any(t.startswith("restart done") for t in toasts(app)):
                break
        said = toasts(app)
        assert "restart: restarting app-backend-1 on prod..." in said
        assert any(t.startswith("restart done: app-backend-1 restarted (") for t in said), said
        assert monitor.restarted == [next(iter(monitor.state.containers))]


async def test_a_declined_restart_says_nothing_changed() -> None:
    monitor = demo_monitor()
    app = app_for(monitor)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("n")
        await pilot.pause()
        assert "restart: app-backend-1 left as it is" in toasts(app)
        assert monitor.restarted == []


async def test_a_first_connection_is_not_called_stale() -> None:
    monitor = RecordingMonitor("prod")
    monitor.host.state = ConnectionState(LinkState.CONNECTING, since=DEMO_NOW - 3)
    monitor.state.link, monitor.state.link_since = "connecting", DEMO_NOW - 3
    app = app_for(monitor)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        for pane in (HostMemoryPane, OomFeed, HealthPane):
            text = str(app.query_one(pane).render())
            assert text == "connecting, nothing read yet", text
        assert app.query_one(ContainersTable).border_subtitle == "connecting: nothing read yet"


async def test_a_lost_link_after_readings_is_stale() -> None:
    monitor = demo_monitor()
    monitor.set_link(ConnectionState(LinkState.STALE, since=DEMO_NOW - 5))
    app = app_for(monitor)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "STALE since 03:11:55: last known values" in str(
            app.query_one(HostMemoryPane).render()
        )
        assert app.query_one(ContainersTable).border_subtitle == "STALE: last known values"


async def test_every_kill_is_one_line_of_the_feed_at_the_dashboards_widths() -> None:
    for size in ((120, 40), (160, 45), (200, 50)):
        app = app_for(lab_monitor())
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            feed = app.query_one(OomFeed)
            width = feed.content_region.width
            lines = str(feed.render()).split("\n")
            assert len(lines) == len(app.monitors[0].state.oom_kills)
            assert all(len(line) <= width for line in lines), (size, width, lines)
            assert "icbench" in lines[0] and "_1" in lines[0]  # both ends of the name


def test_a_counted_kill_with_a_long_detail_is_one_line() -> None:
    monitor = lab_monitor()
    monitor.post(
        OomKill(
            time=DEMO_NOW - 1,
            pid=0,
            process="",
            constraint=OomConstraint.GLOBAL,
            anon_rss_bytes=0,
            container_id="",
            container="",
            service="",
            source="vmstat",
            detail="a host-wide kill outside any container's counter; pid unknown: not in the"
            " kernel log within 10 s",
        )
    )
    feed = OomFeed()
    newest = monitor.state.oom_kills[-1]
    for width in (44, 76):
        line = feed.kill_line(monitor.state, newest, width).plain
        assert len(line) <= width, line
        assert line.startswith("03:11:59 ") and "host" in line


async def test_names_are_elided_in_the_middle_and_columns_fit_the_longest() -> None:
    assert fmt.elide_middle("icbench31926_frontend_1", 16) == "icbench…ontend_1"
    assert fmt.elide_middle("short", 16) == "short"
    app = app_for(lab_monitor())
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        table = app.query_one(ContainersTable)
        assert table._widths[1] == len("icbench31926_frontend_1")
        # As tall as its rows: a header, 8 rows and the border.
        assert table.outer_size.height == 1 + 8 + 2


def test_a_run_of_oom_events_is_one_line() -> None:
    monitor = lab_monitor()
    view = monitor.state.container_by_name("icbench31926_backend_1")
    assert view is not None
    for dt in (1.0, 2.5):  # docker's events of one kill come over a few seconds
        monitor.post(
            ContainerEvent(
                time=DEMO_NOW - 20 + dt,
                id=view.info.id,
                name=view.info.name,
                service="backend",
                action="oom",
            )
        )
    runs = folded_events(view)
    assert [(action, count) for _, action, count, _ in runs] == [("oom", 9)]
    assert runs[0][3] == 2.5


def test_the_chart_spans_the_data() -> None:
    view = lab_monitor(minutes=2).state.container_by_name("icbench31926_backend_1")
    assert view is not None
    assert chart_span(view, DEMO_NOW) == 120
    long = lab_monitor(minutes=40).state.container_by_name("icbench31926_backend_1")
    assert long is not None
    assert 1799 <= chart_span(long, DEMO_NOW) <= 1800  # the half hour the chart keeps


def test_help_lists_an_action_once_and_the_moving_keys_together() -> None:
    from textual.app import App
    from textual.binding import Binding

    from incident_console.ui import keys

    bindings = [
        b for b in [*keys.CONSOLE, *keys.CONTAINERS_TABLE, *App.BINDINGS] if isinstance(b, Binding)
    ]
    bindings += [
        Binding("up", "scroll_up", "Up", show=False),
        Binding("left", "scroll_left", "Scroll Left"),
    ]
    entries = help_entries(bindings)
    names = [e.name for e in entries]
    assert len(names) == len(set(names)), names
    assert all(e.what.lower() != e.name.lower() for e in entries)
    moving = entries[-1]
    assert moving.keys == "moving" and "up" in moving.what and "left" in moving.what
    quit_ = next(e for e in entries if e.name == "Quit")
    assert quit_.what == "Leave the console (the server is untouched)"


async def test_the_detail_shows_a_legend_and_the_whole_traceback() -> None:
    app = app_for(lab_monitor(minutes=2))
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.press("down", "enter")
        await pilot.pause(0.3)
        legend = str(app.screen.query_one("#chart-legend", Static).render())
        assert "used" in legend and "limit 256M" in legend and "OOM kill" in legend
        await pilot.press("escape")
        await pilot.pause()
        monitor = app.monitors[0]
        frontend = monitor.state.container_by_name("icbench31926_frontend_1")
        assert frontend is not None
        app.open_detail(monitor, frontend.info.id)
        await pilot.pause(0.3)
        health = str(app.screen.query_one("#health-log", Static).render())
        assert "Traceback (most recent call last):" in health
        assert "URLError" in health


async def test_a_kill_at_a_shared_limit_marks_the_victim_and_the_container_that_grew() -> None:
    monitor = demo_monitor()
    victim = monitor.state.container_by_name("app-db-1")
    grew = monitor.state.container_by_name("app-backend-1")
    assert victim is not None and grew is not None
    monitor.post(
        OomKill(
            time=DEMO_NOW - 5,
            pid=4242,
            process="postgres",
            constraint=OomConstraint.LIMIT,
            anon_rss_bytes=300 * MiB,
            container_id=victim.info.id,
            container="app-db-1",
            service="db",
            source="dmesg",
            scope="shared-limit",
            oom_memcg="/incident-console-lab-app",
            culprit_id=grew.info.id,
            culprit="app-backend-1",
            culprit_growth_bytes=200 * MiB,
            culprit_window_s=120.0,
        )
    )
    app = app_for(monitor)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        table = app.query_one(ContainersTable)
        cells = table._cells
        assert str(cells[grew.info.id][0]).endswith("↑")
        assert str(cells[victim.info.id][0]) == "OOM"
        assert "↑ grew most before a shared-limit or host-wide kill" in table.border_subtitle

"""Pilot tests of the console against fake monitors: keys, panes, read-only, themes, help."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, TabbedContent

from incident_console.config import Settings
from incident_console.domain.events import LogLine, LogSignal, OomConstraint, OomKill
from incident_console.transport.base import ConnectionState, LinkState
from incident_console.ui.app import IncidentApp, make_app
from incident_console.ui.demo import DEMO_NOW, RecordingMonitor, demo_monitor
from incident_console.ui.screens.confirm import ConfirmScreen
from incident_console.ui.screens.detail import ContainerDetailScreen
from incident_console.ui.screens.help import HelpScreen
from incident_console.ui.widgets.containers import ContainersTable
from incident_console.ui.widgets.dashboard import HostDashboard
from incident_console.ui.widgets.logs import LogPane

THEMES = Path(__file__).resolve().parents[1] / "themes"
SIZE = (160, 45)


def app_for(*monitors: RecordingMonitor, **settings: object) -> IncidentApp:
    return make_app(
        Settings(**settings), list(monitors), clock=lambda: DEMO_NOW, theme_dirs=[THEMES]
    )


def help_keys(app: IncidentApp) -> set[str]:
    screen = app.screen
    assert isinstance(screen, HelpScreen)
    return {b.key for b in screen.bindings}


def table_names(app: IncidentApp) -> list[str]:
    table = app.query_one(ContainersTable)
    return [str(table.get_cell(key, "name")) for key in table._keys]


async def test_dashboard_lists_containers_worst_first() -> None:
    app = app_for(demo_monitor())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        names = table_names(app)
        assert names[0] == "app-backend-1"  # recent OOM kills + unhealthy
        assert set(names) == {
            "app-backend-1",
            "app-frontend-1",
            "app-db-1",
            "app-redis-1",
            "app-proxy-1",
        }
        assert (
            str(
                app.query_one(ContainersTable).get_cell(
                    app.query_one(ContainersTable)._keys[0], "oom"
                )
            )
            == "OOM"
        )


async def test_enter_opens_detail_and_escape_goes_back() -> None:
    app = app_for(demo_monitor())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("down", "up", "enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ContainerDetailScreen)
        assert app.monitors[0].state.containers[screen.container_id].info.name == "app-backend-1"
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ContainerDetailScreen)


async def test_table_keys_and_mouse_move_the_cursor_and_a_second_click_opens() -> None:
    app = app_for(demo_monitor())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.query_one(ContainersTable)
        logs = app.query_one(LogPane)
        last = table.row_count - 1
        await pilot.press("end")
        assert table.cursor_row == last
        await pilot.press("home", "down")
        assert table.cursor_row == 1
        assert logs.follow_id == table.selected_id  # the log pane follows the cursor
        # Row r is drawn at y = 1 (border) + 1 (header) + r, below the table's scroll.
        await pilot.click(ContainersTable, offset=(10, 2 + 2))
        await pilot.pause()
        assert table.cursor_row == 2 and not isinstance(app.screen, ContainerDetailScreen)
        chosen = table.selected_id
        await pilot.click(ContainersTable, offset=(10, 2 + 2))
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ContainerDetailScreen) and screen.container_id == chosen


async def test_tab_moves_between_panes() -> None:
    app = app_for(demo_monitor())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.focused, ContainersTable)
        seen = set()
        for _ in range(6):
            await pilot.press("tab")
            seen.add(app.focused.id if app.focused else None)
        assert {"host-memory", "health", "oom-feed", "logs"} <= seen


async def test_filter_narrows_containers_and_escape_clears() -> None:
    app = app_for(demo_monitor())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"redis")
        await pilot.pause()
        assert table_names(app) == ["app-redis-1"]
        await pilot.press("enter")
        assert isinstance(app.focused, ContainersTable)
        await pilot.press("escape")
        await pilot.pause()
        assert len(table_names(app)) == 5


async def test_filter_and_search_in_logs() -> None:
    app = app_for(demo_monitor())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        logs = app.query_one(LogPane)
        logs.focus()
        await pilot.press("slash", *"GET", "enter")
        await pilot.pause()
        assert logs.filter_text == "GET"
        assert len(logs.lines) == 3
        await pilot.press("slash", "ctrl+u", "enter")  # clear the filter
        await pilot.pause()
        assert len(logs.lines) == 8
        await pilot.press("s", *"worker", "enter")
        await pilot.pause()
        assert logs.match_count == 3  # Booting worker, Worker (pid..), WORKER TIMEOUT
        first = logs.current_row
        await pilot.press("n")
        assert logs.current_row > first
        await pilot.press("N")
        assert logs.current_row == first
        await pilot.press("x")  # next signal after the current row
        assert logs._shown[logs.current_row].signal is not None


async def test_logs_pause_keeps_lines_and_resume_shows_them() -> None:
    monitor = demo_monitor()
    app = app_for(monitor)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        logs = app.query_one(LogPane)
        logs.focus()
        await pilot.press("p")
        backend = next(iter(monitor.state.containers))
        monitor.post(
            LogLine(
                time=DEMO_NOW, id=backend, container="app-backend-1", text="late line", signal=None
            )
        )
        app.refresh_views()
        await pilot.pause()
        assert len(logs.lines) == 8 and "PAUSED (+1)" in str(logs.border_subtitle)
        await pilot.press("p")
        await pilot.pause()
        assert len(logs.lines) == 9


async def test_restart_confirm_shows_the_command_and_runs_on_yes() -> None:
    monitor = demo_monitor()
    app = app_for(monitor)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("r")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ConfirmScreen)
        assert "docker restart app-backend-1" in screen.action_text.plain
        assert "/restart" in screen.action_text.plain
        await pilot.press("n")
        await pilot.pause()
        assert monitor.restarted == []
        await pilot.press("r", "y")
        await pilot.pause()
        await app.workers.wait_for_complete()
        assert monitor.restarted == [app.query_one(ContainersTable)._keys[0]]


async def test_read_only_removes_mutating_bindings() -> None:
    for app in (app_for(demo_monitor(), read_only=True), app_for(demo_monitor(read_only=True))):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert "r" not in app.screen.active_bindings
            await pilot.press("r")
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmScreen)
            assert app.monitors[0].restarted == []  # type: ignore[attr-defined]
            header = str(app.query_one(".host-header").render())
            assert "READ-ONLY" in header
            assert not any("restart" in c.name for c in app.command_table())
            await pilot.press("question_mark")
            assert "r" not in help_keys(app)


async def test_help_lists_every_binding() -> None:
    app = app_for(demo_monitor())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        expected = set(app.screen.active_bindings) | {"f", "p", "s", "n", "N", "x"}
        await pilot.press("question_mark")
        await pilot.pause()
        keys = help_keys(app)
        assert expected <= keys
        for key in (
            "question_mark",
            "slash",
            "ctrl+p",
            "tab",
            "enter",
            "escape",
            "q",
            "r",
            "b",
            "t",
        ):
            assert key in keys, key
        text = " ".join(str(s.render()) for s in app.screen.query(".help-what"))
        assert "Restart the selected container" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_theme_cycles_through_the_three_themes() -> None:
    app = app_for(demo_monitor())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.theme == "incident-dark"
        seen = [app.theme]
        for _ in range(3):
            await pilot.press("t")
            seen.append(app.theme)
        assert set(seen) == {"incident-dark", "incident-light", "projector"}
        app.set_theme("projector")
        await pilot.pause()
        assert app.query_one(HostDashboard).glyphs == "_.-:=+*#"
        assert app.theme_variables["oom"] == "#ff3030"


async def test_theme_from_settings_and_unknown_theme_falls_back() -> None:
    app = app_for(demo_monitor(), theme="projector")
    async with app.run_test(size=SIZE):
        assert app.theme == "projector"
    app = app_for(demo_monitor(), theme="nope")
    async with app.run_test(size=SIZE):
        assert app.theme == "incident-dark"
        assert any("unknown theme 'nope'" in m for m in app.messages_at_start)


async def test_keymap_remaps_a_binding() -> None:
    app = app_for(demo_monitor(), keymap={"help": "f1"})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)


async def test_new_oom_kill_marks_row_and_notifies() -> None:
    monitor = RecordingMonitor("prod")
    source = demo_monitor()
    for view in source.state.containers.values():
        monitor.post(view.info)
    app = app_for(monitor)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        redis = next(v for v in monitor.state.containers.values() if v.info.service == "redis")
        monitor.post(
            OomKill(
                time=DEMO_NOW,
                pid=42,
                process="redis-server",
                constraint=OomConstraint.LIMIT,
                container_id=redis.info.id,
                container="app-redis-1",
                service="redis",
            )
        )
        app.refresh_views()
        await pilot.pause()
        assert table_names(app)[0] == "app-redis-1"
        assert any("app-redis-1" in n.message for n in app._notifications)


async def test_stale_host_says_stale_and_hides_current_numbers() -> None:
    monitor = demo_monitor()
    app = app_for(monitor)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        monitor.set_link(ConnectionState(LinkState.STALE, since=DEMO_NOW - 5))
        app.refresh_views()
        await pilot.pause()
        table = app.query_one(ContainersTable)
        assert str(table.get_cell(table._keys[0], "used")) == "stale"
        assert "STALE" in str(app.query_one("#host-memory").render())
        assert "stale since" in str(app.query_one(".host-header").render())


async def test_several_hosts_get_tabs_and_a_fleet_row() -> None:
    app = app_for(demo_monitor("prod"), demo_monitor("staging", read_only=True))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        fleet = str(app.query_one("#fleet").render())
        assert "prod" in fleet and "staging" in fleet and "oom/h 2" in fleet
        assert "r" in app.screen.active_bindings
        app.query_one(TabbedContent).active = "host-1"
        await pilot.pause()
        assert app.active_dashboard.monitor.host.name == "staging"
        assert "r" not in app.screen.active_bindings


async def test_world_text_is_shown_literally_and_escapes_are_stripped() -> None:
    monitor = demo_monitor()
    backend = next(iter(monitor.state.containers))
    monitor.post(
        LogLine(
            time=DEMO_NOW,
            id=backend,
            container="app-backend-1",
            text="clear\x1b[2Jscreen [bold red]x[/]",
            signal=LogSignal.ERROR,
        )
    )
    app = app_for(monitor)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        logs = app.query_one(LogPane)
        rendered = [strip.text for strip in logs.lines]
        assert any("clearscreen [bold red]x[/]" in line for line in rendered)
        assert not any("\x1b" in line for line in rendered)


async def test_quit_stops_the_monitors() -> None:
    monitor = demo_monitor()
    app = app_for(monitor)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert monitor.started
        await pilot.press("q")
        await pilot.pause()
    assert monitor.stopped
    assert app.return_code == 0


async def test_only_kills_seen_live_pop_up_whatever_their_stamp() -> None:
    """A replayed kill stamped 'now' stays in the feed; a live one stamped early still pops up.

    The old rule compared the stamp with the moment the console opened: the kernel's clock
    drifts from the wall clock, and dmesg's replay can end after the console opened, so history
    from the minute before popped up as new kills and a live kill could stay silent.
    """
    monitor = RecordingMonitor("prod")
    source = demo_monitor()
    for view in source.state.containers.values():
        monitor.post(view.info)
    app = app_for(monitor)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        redis = next(v for v in monitor.state.containers.values() if v.info.service == "redis")
        db = next(v for v in monitor.state.containers.values() if v.info.service == "db")

        def kill(view: object, pid: int, when: float, replayed: bool) -> OomKill:
            info = view.info  # type: ignore[attr-defined]
            return OomKill(
                time=when, pid=pid, process="x", constraint=OomConstraint.LIMIT,
                container_id=info.id, container=info.name, service=info.service,
                replayed=replayed,
            )  # fmt: skip

        monitor.post(kill(redis, 41, DEMO_NOW, replayed=True))
        monitor.post(kill(db, 42, DEMO_NOW - 120, replayed=False))
        app.refresh_views()
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any(db.info.name in m for m in messages), messages
        assert not any(redis.info.name in m for m in messages), messages

"""The Textual console: one dashboard per host, fed by monitors handed to the constructor.

The app never talks SSH or docker: it reads HostState snapshots (at most 10 times a second,
and only when ``state.version`` moved) and posts intents (restart a container, open a runbook)
back to the monitor, which journals them and refuses them in read-only mode.
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import Footer, TabbedContent, TabPane

from incident_console.config import Settings
from incident_console.domain.events import Event, OomKill
from incident_console.locations import builtin_theme_dirs, user_theme_dir
from incident_console.monitor.leaks import likely_leak
from incident_console.ui import format as fmt
from incident_console.ui import keys
from incident_console.ui.commands import ConsoleCommands, PaletteCommand
from incident_console.ui.intents import IntentActions
from incident_console.ui.messages import HostEventPosted
from incident_console.ui.protocol import MonitorLike
from incident_console.ui.screens.help import HelpScreen
from incident_console.ui.themes import DEFAULT_THEME, LoadedTheme, fallback_theme, load_themes
from incident_console.ui.toasts import KillToasts, break_path
from incident_console.ui.widgets.containers import ContainersTable
from incident_console.ui.widgets.dashboard import HostDashboard
from incident_console.ui.widgets.header import FleetRow
from incident_console.ui.widgets.logs import LogPane
from incident_console.ui.widgets.panes import OomFeed

#: Widgets redraw at most this often; the monitors' events arrive much faster in bursts.
REFRESH_INTERVAL_S = 0.1
DEFAULT_RUNBOOK = "oom-after-deploy"
MUTATING_ACTIONS = frozenset({"restart"})


#: Allocations between two collections of the youngest generation (CPython's default: 700).
GC_YOUNG_THRESHOLD = 5_000
_gc_tuned = False


class IncidentApp(IntentActions):
    """The console. Build it with :func:`make_app`."""

    CSS_PATH = "app.tcss"
    TITLE = "incident-console"
    COMMANDS: ClassVar = {ConsoleCommands}
    BINDINGS: ClassVar[list[BindingType]] = keys.CONSOLE

    def __init__(
        self,
        settings: Settings,
        monitors: Sequence[MonitorLike],
        *,
        themes: Sequence[LoadedTheme],
        theme_errors: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
        start_monitors: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.monitors = list(monitors)
        self.clock = clock
        self.start_monitors = start_monitors
        self.messages_at_start = list(theme_errors)
        self.glyphs: dict[str, str] = {}
        for loaded in themes or [fallback_theme()]:
            self.register_theme(loaded.theme)
            self.glyphs[loaded.theme.name] = loaded.glyphs
        self.theme_names = list(self.glyphs)
        wanted = settings.theme if settings.theme in self.glyphs else DEFAULT_THEME
        if settings.theme not in self.glyphs:
            self.messages_at_start.append(f"unknown theme {settings.theme!r}: using {wanted}")
        self.theme = wanted if wanted in self.glyphs else self.theme_names[0]
        self.set_keymap(settings.keymap)
        self._unsubscribe: list[Callable[[], None]] = []
        self.opened_at = clock()
        #: Found once at mount: a query walks the DOM, and the views refresh 10 times a second.
        self._dashboards: list[HostDashboard] = []
        self._fleet_rows: list[FleetRow] = []
        self.kill_toasts = KillToasts(self)
        #: Wall time when the first frame was drawn (None before); the benchmark reads it.
        self.first_frame_at: float | None = None

    # Layout and the refresh loop -------------------------------------------------------------

    def compose(self) -> ComposeResult:
        glyphs = fmt.PLAIN if self.glyphs.get(self.theme) == "plain" else fmt.BLOCKS
        if len(self.monitors) > 1:
            yield FleetRow(id="fleet")
            with TabbedContent(id="hosts"):
                for index, monitor in enumerate(self.monitors):
                    with TabPane(fmt.clean(monitor.host.name), id=f"host-{index}"):
                        yield HostDashboard(
                            monitor, read_only=self.is_read_only(monitor), glyphs=glyphs
                        )
        else:
            yield HostDashboard(
                self.monitors[0], read_only=self.is_read_only(self.monitors[0]), glyphs=glyphs
            )
        yield Footer()

    def on_mount(self) -> None:
        self._dashboards = list(self.query(HostDashboard))
        self._fleet_rows = list(self.query(FleetRow))
        for monitor in self.monitors:
            name = monitor.host.name
            self._unsubscribe.append(monitor.subscribe(functools.partial(self._on_event, name)))
        # The monitors connect once the first frame is on screen: connecting (and importing
        # the SSH and docker libraries) took a second of the loop before it.
        self.call_after_refresh(self._first_frame_shown)
        for message in self.messages_at_start:
            self.notify(message, severity="warning", timeout=10)
        journal = self.journal()
        if journal is not None:
            self.notify(break_path(str(journal.path)), title="incident journal", timeout=8)
        self.refresh_views(force=True)
        self.set_interval(REFRESH_INTERVAL_S, self.refresh_views)
        self.set_interval(1.0, self.check_journal)
        self.query_one(ContainersTable).focus()

    def _first_frame_shown(self) -> None:
        self.first_frame_at = time.time()
        # What exists now (modules, classes, the screen) lives as long as the app: out of the
        # collector's sight, a full collection walks only what came since (145,000 -> 80,000
        # objects). A log stream makes thousands of short-lived objects a second: collecting
        # the youngest every 5,000 allocations instead of 700 lets most die first, and full
        # collections (98-143 ms pauses of the loop, i.e. of key presses) stop coming every
        # 10-15 s. Measured over 40 s following 1,000 lines/s: GC 541 -> 191 ms, no full one.
        # Once a process: a test run starts many apps, and what each left behind would stay.
        global _gc_tuned  # noqa: PLW0603 - a process-wide setting, like the collector's own
        if not _gc_tuned:
            _gc_tuned = True
            gc.freeze()
            gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        if self.start_monitors:
            for monitor in self.monitors:
                self._start_monitor(monitor)

    def refresh_views(self, force: bool = False) -> None:
        """Redraw what changed since the last call, in one batch.

        Only the host in view is redrawn (its tab catches up when it is shown); the fleet row
        summarises every host.
        """
        if not self.screen_stack:
            return  # the app is closing: its screens are gone before its timers
        now = self.clock()
        with self.batch_update():
            # A full screen over the dashboards (the walkthrough, the detail) hides them: they
            # catch up when it closes. Redrawn behind it, they cost the loop a layout each tick.
            if not self._dashboards_hidden():
                shown = self._dashboards if len(self._dashboards) < 2 else [self.active_dashboard]
                for dashboard in shown:
                    dashboard.update_view(now, force=force)
                for fleet in self._fleet_rows:
                    fleet.show(self.monitors, now)
            # A pushed screen that shows live state (the container detail) redraws with us.
            update = getattr(self.screen, "update_view", None)
            if callable(update):
                update(now, force=force)

    def _dashboards_hidden(self) -> bool:
        """True when a screen that is not a dialog covers the first (the dashboards')."""
        covering = [s for s in self.screen_stack[1:] if not isinstance(s, ModalScreen)]
        return bool(covering)

    @work(group="monitors", exit_on_error=False)
    async def _start_monitor(self, monitor: MonitorLike) -> None:
        try:
            await monitor.start()
        except Exception as error:  # noqa: BLE001 - any failure becomes one line on screen
            self.notify(
                f"{monitor.host.name}: {fmt.clean(str(error))}", severity="error", timeout=30
            )

    def _on_event(self, host: str, event: Event) -> None:
        # Kills replayed from the kernel log's history are in the feed; only new ones pop up.
        # (Not by their stamp: the kernel's clock drifts, and a replay can end after we open.)
        if isinstance(event, OomKill) and not event.replayed:
            self.post_message(HostEventPosted(host, event))

    @on(HostEventPosted)
    def _notify_oom(self, message: HostEventPosted) -> None:
        kill = message.event
        assert isinstance(kill, OomKill)
        monitor = next((m for m in self.monitors if m.host.name == message.host), None)
        if monitor is not None:
            who, about = OomFeed.whose(monitor.state, kill)  # as the feed names it
        else:
            who, about = kill.container or kill.container_id[:12] or "host", kill.service or "-"
        leak = likely_leak(monitor.state, kill.container_id) if monitor is not None else ""
        self.kill_toasts.show(message.host, who, about, kill, also=leak)

    # Where the user is -------------------------------------------------------------------------

    def is_read_only(self, monitor: MonitorLike) -> bool:
        """Read-only by flag, config, or for this host."""
        return self.settings.read_only or monitor.read_only

    @property
    def active_dashboard(self) -> HostDashboard:
        """The dashboard of the host in view."""
        if len(self.monitors) > 1:
            pane = self.query_one(TabbedContent).active_pane
            if pane is not None:
                return pane.query_one(HostDashboard)
        return self.query_one(HostDashboard)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # False removes the binding (footer, help, key): read-only has no mutating keys at all.
        if action in MUTATING_ACTIONS:
            try:
                return not self.active_dashboard.read_only
            except Exception:  # noqa: BLE001 - before compose there is nothing to mutate
                return False
        if action == "runbook":
            # A viewer of serve's shared collection has no host of its own to run steps on.
            try:
                return getattr(self.active_dashboard.monitor, "runs_runbooks", True) is not False
            except Exception:  # noqa: BLE001 - before compose
                return True
        return True

    @on(TabbedContent.TabActivated)
    def _host_switched(self) -> None:
        self.refresh_bindings()
        if self._dashboards:
            self.active_dashboard.update_view(self.clock(), force=True)

    @on(ContainersTable.DetailRequested)
    def _open_detail(self, message: ContainersTable.DetailRequested) -> None:
        dashboard = self.active_dashboard
        self.open_detail(dashboard.monitor, message.container_id)

    def open_detail(self, monitor: MonitorLike, container_id: str) -> None:
        """Show the detail screen of a container."""
        # Imported here: it pulls in plotext, which the first frame does not need.
        from incident_console.ui.screens.detail import ContainerDetailScreen

        screen = ContainerDetailScreen(monitor, container_id, read_only=self.is_read_only(monitor))
        self.push_screen(screen)

    # Actions -----------------------------------------------------------------------------------

    def action_help(self) -> None:
        bindings = [active.binding for active in self.screen.active_bindings.values()]
        # The keys of panes that are not focused right now belong to this screen too.
        for pane in self.screen.query(LogPane):
            keys = {b.key for b in bindings}
            bindings += [b for b in pane.BINDINGS if isinstance(b, Binding) and b.key not in keys]
            break
        self.push_screen(HelpScreen(bindings))

    def action_filter(self) -> None:
        self.active_dashboard.open_filter()

    def action_escape_pane(self) -> None:
        dashboard = self.active_dashboard
        if not dashboard.close_prompt() and dashboard.table.filter_text:
            dashboard.apply_filter("containers", "")

    def action_cycle_theme(self) -> None:
        names = self.theme_names
        self.set_theme(
            names[(names.index(self.theme) + 1) % len(names)] if self.theme in names else names[0]
        )

    def set_theme(self, name: str) -> None:
        """Switch theme (and the glyphs the theme asks for), and say which one is on."""
        self.theme = name
        position = f" ({self.theme_names.index(name) + 1} of {len(self.theme_names)})"
        self.notify(
            f"theme {name}" + (position if name in self.theme_names else ""),
            title="theme",
            timeout=3,
        )
        glyphs = fmt.PLAIN if self.glyphs.get(name) == "plain" else fmt.BLOCKS
        for dashboard in self.query(HostDashboard):
            dashboard.set_glyphs(glyphs)
        self.refresh_views()

    def action_runbook(self, name: str = DEFAULT_RUNBOOK) -> None:
        try:
            from incident_console.ui.screens.runbook import RunbookScreen
        except ImportError:
            self.notify("the runbook screen is not available in this build", severity="warning")
            return
        dashboard = self.active_dashboard
        # The selected row's project is offered first when the service runs in several.
        self.push_screen(RunbookScreen(dashboard.monitor, name, selected=dashboard.selected_id))

    def command_table(self) -> list[PaletteCommand]:
        """Every palette entry for the app as it is now: hosts (one too: "host" always finds
        it), containers, the runbook, themes, and the actions this host allows."""
        table: list[PaletteCommand] = []
        for index, monitor in enumerate(self.monitors):
            host = fmt.clean(monitor.host.name)
            link = fmt.clean(monitor.host.state.describe(self.clock()))
            table.append(
                PaletteCommand(
                    f"host {host}",
                    f"show this host ({link})",
                    functools.partial(self.show_host, index),
                )
            )
            for view in list(monitor.state.containers.values()):
                table.append(
                    PaletteCommand(
                        f"container {fmt.clean(view.info.name)} ({host})",
                        "open its detail",
                        functools.partial(self.open_detail, monitor, view.info.id),
                    )
                )
        table.append(
            PaletteCommand(
                f"runbook {DEFAULT_RUNBOOK}",
                "walk through it",
                functools.partial(self.action_runbook, DEFAULT_RUNBOOK),
            )
        )
        for theme in self.theme_names:
            table.append(
                PaletteCommand(
                    f"theme {theme}", "switch theme", functools.partial(self.set_theme, theme)
                )
            )
        for binding in keys.CONSOLE:
            if not isinstance(binding, Binding) or binding.action == "command_palette":
                continue
            if self.check_action(binding.action, ()):
                table.append(
                    PaletteCommand(
                        f"action {binding.description.lower()}",
                        binding.tooltip,
                        functools.partial(self.run_action, binding.action),
                    )
                )
        return table

    def show_host(self, index: int) -> None:
        """Bring host `index` into view (its tab, when there are several) with its table focused."""
        if len(self.monitors) > 1:
            self.query_one(TabbedContent).active = f"host-{index}"
        self.active_dashboard.table.focus()


def make_app(
    settings: Settings,
    monitors: Sequence[MonitorLike],
    *,
    clock: Callable[[], float] = time.time,
    start_monitors: bool = True,
    theme_dirs: Iterable[Path] | None = None,
) -> IncidentApp:
    """Build the console: the one factory used by the CLI and by the tests.

    Args:
        settings: the config (theme, read-only, keymap); command-line flags already applied.
        monitors: one per host, in tab order (at least one).
        clock: the time source (tests freeze it).
        start_monitors: start each monitor when the app mounts (the CLI may start them itself).
        theme_dirs: where to read themes; default: shipped, user folder, then settings.theme_dirs.
    """
    if not monitors:
        raise ValueError("the console needs at least one host")
    folders = (
        list(theme_dirs)
        if theme_dirs is not None
        else [*builtin_theme_dirs(), user_theme_dir(), *settings.theme_dirs]
    )
    themes, errors = load_themes(folders)
    return IncidentApp(
        settings,
        monitors,
        themes=themes,
        theme_errors=errors,
        clock=clock,
        start_monitors=start_monitors,
    )

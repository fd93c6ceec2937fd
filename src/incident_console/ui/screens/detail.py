"""Container detail: memory chart with limit and markers, processes, health, logs, settings."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.color import Color
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual_plotext import PlotextPlot

from incident_console.domain.redact import redact_env, redact_record
from incident_console.monitor.state import ContainerView
from incident_console.ui import format as fmt
from incident_console.ui.protocol import MonitorLike
from incident_console.ui.widgets.header import HostHeader
from incident_console.ui.widgets.routes import RoutesTable

MiB = 1024 * 1024
CHART_WINDOW_S = 1800
RECENT_LOG_LINES = 40


class MemoryChart(PlotextPlot):
    """Memory over time against the limit, with OOM kill, restart and deploy markers."""

    def draw(self, view: ContainerView, now: float, live: bool) -> None:
        """Plot `view`'s samples of the last half hour (minutes before `now` on the x axis)."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        colours = self.app.theme_variables

        def rgb(name: str) -> tuple[int, int, int]:
            return Color.parse(colours.get(name, "#888888")).rgb

        samples = [s for s in view.samples if s.time >= now - CHART_WINDOW_S]
        title = "memory (MiB), minutes before now"
        if not live:
            title += "  [STALE: last known]"
        plt.title(title)
        plt.xlabel("min")
        if samples:
            xs = [(s.time - now) / 60 for s in samples]
            plt.plot(
                xs,
                [s.memory_used_bytes / MiB for s in samples],
                color=rgb("primary"),
                label="used",
                marker="braille",
            )
        limit = view.info.memory_limit_bytes or (samples[-1].memory_limit_bytes if samples else 0)
        if fmt.has_limit(limit):
            plt.hline(limit / MiB, color=rgb("error"))
            plt.ylim(0, limit / MiB * 1.1)
        markers = []
        if view.last_oom is not None:
            markers.append((view.last_oom, "oom"))
        for event in view.events:
            if event.action in ("restart", "start", "die"):
                markers.append((event.time, "warning"))
            elif event.action == "create":
                markers.append((event.time, "accent"))
        for when, colour in markers:
            if when >= now - CHART_WINDOW_S:
                plt.vline((when - now) / 60, color=rgb(colour))
        plt.xlim(-CHART_WINDOW_S / 60 if len(samples) > 1 else -2, 0)
        self.refresh()


class ContainerDetailScreen(Screen[None]):
    """Everything about one container."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="back", tooltip="Back to the dashboard"),
    ]

    def __init__(self, monitor: MonitorLike, container_id: str, *, read_only: bool) -> None:
        super().__init__()
        self.monitor = monitor
        self.container_id = container_id
        self.read_only = read_only
        self._version = -1
        self._ready = False

    def compose(self) -> ComposeResult:
        yield HostHeader(classes="host-header")
        yield Static(id="detail-title")
        with Horizontal(id="detail-top"):
            yield MemoryChart(id="memory-chart")
            with Vertical(id="detail-side"):
                yield DataTable(id="processes", cursor_type="row")
                yield RoutesTable(id="routes")
                yield Static(id="limits", classes="detail-pane")
        with Horizontal(id="detail-bottom"):
            with VerticalScroll(classes="detail-pane"):
                yield Static(id="health-log")
            with VerticalScroll(classes="detail-pane"):
                yield Static(id="environment")
            with VerticalScroll(classes="detail-pane", id="recent-logs-box"):
                yield Static(id="recent-logs")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#processes", DataTable)
        table.add_columns("pid", "process", "rss", "peak")
        table.border_title = "Processes (RSS)"
        self.query_one("#limits").border_title = "Limits and compose"
        self.query_one("#health-log").parent.border_title = "Health log"  # type: ignore[union-attr]
        self.query_one("#environment").parent.border_title = "Environment"  # type: ignore[union-attr]
        self.query_one("#recent-logs-box").border_title = "Recent logs"
        self._ready = True
        self.update_view(self.app.clock(), force=True)  # type: ignore[attr-defined]

    @property
    def view(self) -> ContainerView | None:
        return self.monitor.state.containers.get(self.container_id)

    def on_unmount(self) -> None:
        self._ready = False

    def update_view(self, now: float, *, force: bool = False) -> None:
        """Redraw from the monitor's state if it changed."""
        if not self._ready:
            return
        try:
            self._redraw(now, force)
        except NoMatches:
            # Closing (popped, or the app quitting): the widgets are already gone while the
            # app's refresh timer still ticks. There is nothing left to draw.
            self._ready = False

    def _redraw(self, now: float, force: bool) -> None:
        self.query_one(HostHeader).show(self.monitor, now, self.read_only)
        state = self.monitor.state
        view = self.view
        if view is None or (state.version == self._version and not force):
            return
        self._version = state.version
        info = view.info
        live = state.is_live
        title = Content.assemble(
            (fmt.clean(info.name), "bold"),
            f"  service {fmt.clean(info.service) or '-'}  ",
            f"image {fmt.clean(info.image) or '-'}  state {fmt.clean(info.state)}  ",
            (
                f"health {fmt.clean(info.health) or '-'}",
                "bold $unhealthy" if info.health == "unhealthy" else "",
            ),
            (f"  OOM kills {view.oom_kills}", "bold $oom" if view.oom_kills else ""),
            ("  STALE: last known values" if not live else "", "bold $stale"),
        )
        self.query_one("#detail-title", Static).update(title)
        self.query_one(MemoryChart).draw(view, now, live)
        self._processes(view)
        self.query_one(RoutesTable).show(state.leaks.get(self.container_id))
        self._limits(view)
        self._health(view, now)
        # Redacted at the source already; again here, with the same rule, to be sure.
        env = [fmt.clean(e) for e in redact_env(info.environment)] or ["(none)"]
        self.query_one("#environment", Static).update(Text("\n".join(env)))
        logs = [line for line in state.logs if line.id == self.container_id][-RECENT_LOG_LINES:]
        text = Text()
        for line in logs:
            text.append(f"{fmt.clock(line.time)} ", style="dim")
            text.append(fmt.clean(line.text) + "\n", style="bold" if line.signal else "")
        self.query_one("#recent-logs", Static).update(text or Text("(no log lines yet)"))

    def _processes(self, view: ContainerView) -> None:
        table = self.query_one("#processes", DataTable)
        table.clear()
        procs = sorted(
            view.processes.processes if view.processes else (), key=lambda p: -p.rss_bytes
        )
        for proc in procs:
            table.add_row(
                Text(str(proc.pid)),
                Text(fmt.clean(proc.name)),
                Text(fmt.size(proc.rss_bytes)),
                Text(fmt.size(view.peak_rss.get(proc.pid, proc.rss_bytes))),
            )

    def _limits(self, view: ContainerView) -> None:
        info = view.info
        limit = info.memory_limit_bytes
        lines = [
            f"memory limit   {fmt.size(limit) if fmt.has_limit(limit) else 'none'}",
            f"reservation    {fmt.size(info.memory_reservation_bytes) if info.memory_reservation_bytes else 'none'}",
            f"restart policy {fmt.clean(info.restart_policy) or '-'}",
            f"restarts       {info.restarts}",
            f"project        {fmt.clean(info.project) or '-'}",
            f"compose file   {fmt.clean(', '.join(info.config_files)) or '-'}",
            f"working dir    {fmt.clean(info.working_dir) or '-'}",
            f"command        {fmt.clean(' '.join(redact_record(list(info.command)))) or '-'}",
        ]
        self.query_one("#limits", Static).update(Text("\n".join(lines)))

    def _health(self, view: ContainerView, now: float) -> None:
        text = Text()
        since = fmt.duration(now - view.health_since) if view.health_since else "-"
        text.append(f"now {view.info.health or 'no healthcheck'} for {since}\n")
        for change in reversed(view.health_log):
            text.append(f"{fmt.clock(change.time)} {change.old or '-'} -> {change.new}")
            if change.failing_streak:
                text.append(f" (streak {change.failing_streak})")
            if change.output:
                text.append("\n    " + fmt.clean(change.output)[:200], style="dim")
            text.append("\n")
        for event in reversed(view.events):
            text.append(f"{fmt.clock(event.time)} {fmt.clean(event.action)}", style="dim")
            if event.exit_code is not None:
                text.append(f" exit {event.exit_code}", style="dim")
            text.append("\n")
        self.query_one("#health-log", Static).update(text)

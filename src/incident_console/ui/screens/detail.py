"""Container detail: memory chart with limit and markers, processes, health, logs, settings."""

from __future__ import annotations

import re
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.color import Color
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual_plotext import PlotextPlot

from incident_console.domain.memory import is_shared_limit
from incident_console.domain.redact import redact_env, redact_record
from incident_console.monitor.state import ContainerView
from incident_console.ui import format as fmt
from incident_console.ui import keys
from incident_console.ui.protocol import MonitorLike
from incident_console.ui.widgets.header import HostHeader
from incident_console.ui.widgets.routes import RoutesTable

MiB = 1024 * 1024
CHART_WINDOW_S = 1800
#: The chart's time axis covers at least this much (a first sample is not a line).
MIN_CHART_SPAN_S = 120
#: Events of one action this close together are one line of the health log.
FOLD_EVENTS_S = 10.0
#: The label column of the "Limits and compose" facts.
FACT_LABEL = 15
RECENT_LOG_LINES = 40


def chart_span(view: ContainerView, now: float) -> float:
    """How many seconds the chart's time axis covers: the span of the data, at least
    MIN_CHART_SPAN_S and at most CHART_WINDOW_S (two minutes of samples are not drawn in the
    last columns of a half-hour axis)."""
    first = next((s.time for s in view.samples if s.time >= now - CHART_WINDOW_S), now)
    return max(MIN_CHART_SPAN_S, min(CHART_WINDOW_S, now - first))


def chart_marks(view: ContainerView, now: float, span: float) -> list[tuple[float, str, str]]:
    """The vertical marks in the chart's span: (time, theme colour, what it stands for)."""
    marks = []
    if view.last_oom is not None:
        marks.append((view.last_oom, "oom", "OOM kill"))
    for event in view.events:
        if event.action in ("restart", "start", "die"):
            marks.append((event.time, "warning", "restart/start/die"))
        elif event.action == "create":
            marks.append((event.time, "accent", "created (deploy)"))
    return [mark for mark in marks if mark[0] >= now - span]


class MemoryChart(PlotextPlot):
    """Memory over time against the limit, with OOM kill, restart and deploy markers."""

    def draw(self, view: ContainerView, now: float, live: bool) -> list[tuple[str, str]]:
        """Plot `view`'s samples over their span (minutes before `now` on the x axis); returns
        the legend: (theme colour, what it stands for) of every mark drawn."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        colours = self.app.theme_variables

        def rgb(name: str) -> tuple[int, int, int]:
            return Color.parse(colours.get(name, "#888888")).rgb

        span = chart_span(view, now)
        samples = [s for s in view.samples if s.time >= now - span]
        title = "memory (MiB), minutes before now"
        if not live:
            title += "  [STALE: last known]"
        plt.title(title)
        plt.xlabel("min")
        legend: list[tuple[str, str]] = []
        if samples:
            xs = [(s.time - now) / 60 for s in samples]
            plt.plot(
                xs,
                [s.memory_used_bytes / MiB for s in samples],
                color=rgb("primary"),
                marker="braille",
            )
            legend.append(("primary", "used"))
        limit = view.info.memory_limit_bytes or (samples[-1].memory_limit_bytes if samples else 0)
        if fmt.has_limit(limit):
            plt.hline(limit / MiB, color=rgb("error"))
            plt.ylim(0, limit / MiB * 1.1)
            shared = " shared" if is_shared_limit(view.info.memory_limit_bytes, limit) else ""
            legend.append(("error", f"limit {fmt.size(limit)}{shared}"))
        for when, colour, what in chart_marks(view, now, span):
            plt.vline((when - now) / 60, color=rgb(colour))
            if (colour, what) not in legend:
                legend.append((colour, what))
        plt.xlim(-span / 60, 0)
        self.refresh()
        return legend


def legend_line(legend: list[tuple[str, str]]) -> Content:
    """The chart's legend: a coloured mark and its meaning for each line drawn."""
    parts: list[Content] = []
    for colour, what in legend:
        glyph = "━━" if what == "used" or what.startswith("limit") else "│"
        parts.append(Content.assemble((glyph, f"bold ${colour}"), " ", what))
    return Content("   ").join(parts) if parts else Content("")


def fold_path(label: str, path: str, width: int) -> list[str]:
    """`label` and `path` on lines of at most `width` cells, the path broken after a '/'
    (never inside a name) and continued under itself."""
    indent = " " * len(label)
    room = max(12, width - len(label))
    lines = [""]
    for part in re.findall(r"[^/]*/|[^/]+$", path) or [path]:
        if lines[-1] and len(lines[-1]) + len(part) > room:
            lines.append("")
        lines[-1] += part
    return [(label if i == 0 else indent) + line for i, line in enumerate(lines)]


def folded_events(view: ContainerView) -> list[tuple[float, str, int, float]]:
    """The container's events newest first, a run of one action within FOLD_EVENTS_S told
    once: (its first time, the action, how many, seconds from first to last). Docker sends an
    "oom" per process the kernel looked at: seven to two dozen for one kill, over 3 s."""
    out: list[tuple[float, str, int, float]] = []
    newest: float | None = None
    for event in reversed(view.events):
        action = fmt.clean(event.action)
        if event.exit_code is not None:
            action += f" exit {event.exit_code}"
        if (
            out
            and out[-1][1] == action
            and newest is not None
            and newest - event.time <= FOLD_EVENTS_S
        ):
            _, _, count, _ = out[-1]
            out[-1] = (event.time, action, count + 1, newest - event.time)
        else:
            newest = event.time
            out.append((event.time, action, 1, 0.0))
    return out


class ContainerDetailScreen(Screen[None]):
    """Everything about one container."""

    BINDINGS: ClassVar[list[BindingType]] = keys.CONTAINER_DETAIL

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
            with Vertical(id="memory-box"):
                yield MemoryChart(id="memory-chart")
                yield Static(id="chart-legend")
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
        # Once laid out, again: the facts fold their paths to the pane's width.
        self.call_after_refresh(lambda: self.update_view(self.app.clock(), force=True))  # type: ignore[attr-defined]

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
        legend = self.query_one(MemoryChart).draw(view, now, live)
        self.query_one("#chart-legend", Static).update(legend_line(legend))
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

    def facts(self, view: ContainerView) -> list[tuple[str, str]]:
        """The "Limits and compose" pane's facts: (label, value), in the order shown."""
        info = view.info
        limit = info.memory_limit_bytes
        reservation = info.memory_reservation_bytes
        sampled = view.latest.memory_limit_bytes if view.latest else 0
        said = fmt.size(limit) if fmt.has_limit(limit) else "none"
        if is_shared_limit(limit, sampled):
            # An ancestor's limit bounds it (a cgroup_parent, a slice): the group's, not its own.
            parent = f" by {fmt.clean(info.cgroup_parent)}" if info.cgroup_parent else ""
            said = f"{said} of its own; {fmt.size(sampled)} shared{parent}"
        return [
            ("memory limit", said),
            ("reservation", fmt.size(reservation) if reservation else "none"),
            ("restart policy", fmt.clean(info.restart_policy) or "-"),
            ("restarts", str(info.restarts)),
            *self._v2_facts(view),
            ("project", fmt.clean(info.project) or "-"),
            ("compose file", fmt.clean(", ".join(info.config_files)) or "-"),
            ("working dir", fmt.clean(info.working_dir) or "-"),
            ("command", fmt.clean(" ".join(redact_record(list(info.command)))) or "-"),
        ]

    def _limits(self, view: ContainerView) -> None:
        pane = self.query_one("#limits", Static)
        width = pane.content_region.width or 60
        lines: list[str] = []
        for label, value in self.facts(view):
            label = f"{label:<{FACT_LABEL}}"
            if "/" in value and " " not in value and len(label) + len(value) > width:
                lines += fold_path(label, value, width)  # a path: broken between names
            else:
                lines.append(label + value)
        pane.update(Text("\n".join(lines)))

    def _v2_facts(self, view: ContainerView) -> list[tuple[str, str]]:
        """cgroup v2's memory.peak and memory.pressure, or why they are not shown."""
        latest = view.latest
        peak = latest.memory_peak_bytes if latest else None
        some = latest.memory_pressure_some if latest else None
        stats = self.monitor.state.sources.get("stats")
        absent = "n/a on cgroup v1" if stats and "cgroup v1" in stats.detail else "-"
        return [
            ("memory peak", fmt.size(peak) if peak is not None else absent),
            ("mem pressure", f"some {some:.2f}% (avg10)" if some is not None else absent),
        ]

    def _health(self, view: ContainerView, now: float) -> None:
        text = Text()
        since = fmt.duration(now - view.health_since) if view.health_since else "-"
        text.append(f"now {view.info.health or 'no healthcheck'} for {since}\n")
        for change in reversed(view.health_log):
            text.append(f"{fmt.clock(change.time)} {change.old or '-'} -> {change.new}")
            if change.failing_streak:
                text.append(f" (streak {change.failing_streak})")
            # The whole output (a traceback too): the dashboard shows only its last line.
            for line in fmt.clean_lines(change.output)[-40:]:
                text.append("\n    " + line[:300], style="dim")
            text.append("\n")
        for when, action, count, span in folded_events(view):
            text.append(f"{fmt.clock(when)} {action}", style="dim")
            if count > 1:
                over = f" over {span:.0f} s" if span >= 1 else ""
                text.append(f" x{count}{over}", style="dim")
            text.append("\n")
        self.query_one("#health-log", Static).update(text)

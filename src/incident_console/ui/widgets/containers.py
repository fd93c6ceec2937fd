"""The containers table: worst first, a memory sparkline against the limit, OOM rows marked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from incident_console.monitor.diagnosis import container_forecast
from incident_console.monitor.state import ContainerView, HostState
from incident_console.ui import format as fmt

#: A kill this recent marks its row.
OOM_MARK_S = 600
SPARK_WIDTH = 10
#: A running container's newest sample older than this is not shown as its memory now.
SAMPLE_STALE_S = 10.0
#: The forecast of a container is worked out again once its samples moved on this far.
FORECAST_EVERY_S = 5.0

#: (key, label, width): fixed widths, so a row never jumps as its numbers change.
COLUMNS = (
    ("oom", "!", 3),
    ("name", "Container", 22),
    ("service", "Service", 9),
    ("state", "State", 7),
    ("health", "Health", 9),
    ("spark", "Memory", SPARK_WIDTH),
    ("used", "Used/Limit", 11),
    ("pct", "%", 4),
    ("ttl", "To limit", 8),
    ("cpu", "CPU", 4),
    ("restarts", "Restarts", 8),
)


def severity(view: ContainerView, now: float) -> tuple[int, float]:
    """Sort key, worst first: recent OOM, unhealthy, not running, then % of limit."""
    latest = view.latest
    pct = 0.0
    if latest and fmt.has_limit(latest.memory_limit_bytes):
        pct = latest.memory_used_bytes / latest.memory_limit_bytes
    rank = 0
    if view.last_oom is not None and now - view.last_oom < OOM_MARK_S:
        rank += 4
    if view.info.health == "unhealthy":
        rank += 2
    if view.info.state not in ("running", ""):
        rank += 1
    return (-rank, -pct)


class ContainersTable(DataTable[Content]):
    """One row per container of a host."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "enter",
            "open_detail",
            "Detail",
            id="detail",
            tooltip="Open the selected container: memory chart, processes, health, env",
        ),
    ]

    filter_text: reactive[str] = reactive("")
    """Only rows whose name or service contains this (case-insensitive) are shown."""

    def __init__(self, *, glyphs: str = fmt.BLOCKS, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.glyphs = glyphs
        self._keys: list[str] = []
        self._cells: dict[str, tuple[Content, ...]] = {}
        #: container id -> (newest sample time when worked out, what the cell says).
        self._forecasts: dict[str, tuple[float, str]] = {}
        self.state: HostState | None = None
        self.now = 0.0

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)
        self.border_title = "Containers"

    @property
    def selected_id(self) -> str | None:
        """The container under the cursor."""
        if not self._keys or not 0 <= self.cursor_row < len(self._keys):
            return None
        return self._keys[self.cursor_row]

    @dataclass
    class DetailRequested(Message):
        """The user asked for the detail of a container (enter, or a click on its row)."""

        container_id: str

    def action_open_detail(self) -> None:
        if self.selected_id is not None:
            self.post_message(self.DetailRequested(self.selected_id))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # A click on the highlighted row: the mouse way to the detail view.
        event.stop()
        self.action_open_detail()

    def watch_filter_text(self) -> None:
        if self.state is not None:
            self.show(self.state, self.now, force=True)

    def show(self, state: HostState, now: float, *, force: bool = False) -> None:
        """Bring the rows up to date with `state` (cells that did not change are left alone)."""
        self.state, self.now = state, now
        needle = self.filter_text.lower()
        views = [
            v
            for v in state.containers.values()
            if not v.gone
            and (not needle or needle in v.info.name.lower() or needle in v.info.service.lower())
        ]
        views.sort(key=lambda v: (severity(v, now), v.info.name))
        live = state.is_live
        rows = {v.info.id: self._cells_for(v, now, live) for v in views}
        for gone in set(self._forecasts) - set(rows):
            del self._forecasts[gone]
        keys = list(rows)
        selected = self.selected_id
        if keys != self._keys or force:
            self.clear()
            for key in keys:
                self.add_row(*rows[key], key=key)
            self._keys = keys
            if selected in keys:
                self.move_cursor(row=keys.index(selected), animate=False)
        else:
            changes: dict[str, dict[str, Content]] = {}
            for key in keys:
                old = self._cells.get(key, ())
                for (column, _, _), new, before in zip(COLUMNS, rows[key], old, strict=False):
                    if new != before:
                        changes.setdefault(key, {})[column] = new
            if changes:
                self._update_cells(changes)
        self._cells = rows
        subtitle = "STALE: last known values" if not live else ""
        if subtitle != (self.border_subtitle or ""):
            self.border_subtitle = subtitle  # a set repaints the whole table
        self.set_class(not live, "stale")

    def _update_cells(self, changes: dict[str, dict[str, Content]]) -> None:
        """`update_cell` for many cells, re-rendering only the rows they are in.

        DataTable.update_cell bumps a table-wide counter that is part of every cached cell,
        row and line key, so one changed cell re-renders every visible cell: with 54
        containers sampled each second that was a third of the console's CPU. Here the cells
        are set and only their rows' cache entries dropped. It reaches into DataTable's
        private caches (textual is pinned, ==8.2.8); without them it falls back to
        update_cell.
        """
        caches = ("_cell_render_cache", "_row_render_cache", "_row_renderable_cache")
        if not all(hasattr(self, name) for name in (*caches, "_data", "_line_cache")):
            for key, cells in changes.items():
                for column, value in cells.items():
                    self.update_cell(key, column, value)
            return
        rows = {RowKey(key) for key in changes}
        for key, cells in changes.items():
            data = self._data[RowKey(key)]
            for column, value in cells.items():
                data[ColumnKey(column)] = value
        indexes = {self._row_locations.get(row) for row in rows}
        # (the caches are LRUCaches: they have keys() but are not iterable)
        cell_cache, row_cache, renderables = (
            self._cell_render_cache,
            self._row_render_cache,
            self._row_renderable_cache,
        )
        for cell_key in [k for k in list(cell_cache.keys()) if k[0] in rows]:
            cell_cache.discard(cell_key)
        for row_part in [k for k in list(row_cache.keys()) if k[0] in rows]:
            row_cache.discard(row_part)
        for index_key in [k for k in list(renderables.keys()) if k[1] in indexes]:
            renderables.discard(index_key)
        self._line_cache.clear()
        self.refresh()

    def _to_limit(self, view: ContainerView, newest: float) -> str:
        """The same forecast diagnose and watch use (robust, 'stable' when flat), cached."""
        cached = self._forecasts.get(view.info.id)
        if cached is not None and 0 <= newest - cached[0] < FORECAST_EVERY_S:
            return cached[1]
        forecast = container_forecast(view)
        text = "-"
        if forecast is not None:
            if forecast.status == "growing" and forecast.seconds_to_limit is not None:
                text = fmt.duration(forecast.seconds_to_limit)
            elif forecast.status in ("stable", "at_limit"):
                text = "at limit" if forecast.status == "at_limit" else "stable"
        self._forecasts[view.info.id] = (newest, text)
        return text

    def _cells_for(self, view: ContainerView, now: float, live: bool) -> tuple[Content, ...]:
        info = view.info
        latest = view.latest
        marked = view.last_oom is not None and now - view.last_oom < OOM_MARK_S
        oom = Content.styled("OOM" if marked else "", "bold $oom")
        health_style = {"healthy": "$healthy", "unhealthy": "bold $unhealthy"}.get(info.health, "")
        cells: list[Content] = [
            oom,
            Content(fmt.clean(info.name)),
            Content(fmt.clean(info.service)),
            Content(fmt.clean(info.state)),
            Content.styled(fmt.clean(info.health) or "-", health_style),
        ]
        fresh = latest is not None and now - latest.time <= SAMPLE_STALE_S
        if not live or latest is None or not fresh or info.state != "running":
            # The last sample of a stopped container, or one the sampler stopped reporting,
            # is not its memory now: say so rather than show it as current.
            word = "stale" if not live else "no data" if info.state == "running" else "-"
            cells += [Content.styled(word, "$stale")] * 5
        else:
            limit = latest.memory_limit_bytes
            used = latest.memory_used_bytes
            values = [float(s.memory_used_bytes) for s in view.samples]
            top = float(limit) if fmt.has_limit(limit) else 0.0
            pct = used / limit * 100 if fmt.has_limit(limit) else None
            pct_style = (
                "bold $error" if pct and pct >= 90 else "$warning" if pct and pct >= 75 else ""
            )
            cells += [
                Content.styled(fmt.sparkline(values, SPARK_WIDTH, top, self.glyphs), pct_style),
                Content(f"{fmt.size(used)}/{fmt.size(limit) if top else 'none'}"),
                Content.styled(f"{pct:.0f}%" if pct is not None else "-", pct_style),
                Content(self._to_limit(view, latest.time)),
                Content(f"{latest.cpu_percent:.0f}%"),
            ]
        restarts = f"{info.restarts}" + (f" ({view.oom_kills}oom)" if view.oom_kills else "")
        cells.append(Content(restarts))
        return tuple(cells)

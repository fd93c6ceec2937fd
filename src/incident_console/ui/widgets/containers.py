"""The containers table: worst first, a memory sparkline against the limit, OOM rows marked."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import ClassVar

from textual import events
from textual.binding import BindingType
from textual.cache import LRUCache
from textual.content import Content
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.visual import Visual

from incident_console.domain.events import ContainerInfo
from incident_console.domain.memory import is_shared_limit
from incident_console.monitor.diagnosis import container_forecast
from incident_console.monitor.state import ContainerView, HostState
from incident_console.ui import format as fmt
from incident_console.ui import keys
from incident_console.ui.widgets.container_rows import (
    COLUMN_INDEX,
    COLUMNS,
    DATA_COLUMNS,
    OOM_MARK_S,
    ROW_WIDTH,
    SHARED_MARK,
    SPARK_COLUMN,
    SPARK_WIDTH,
    column_widths,
    forecast_cell,
    memory_band,
    memory_share,
    severity,
)
from incident_console.ui.widgets.panes import has_readings

#: A running container's newest sample older than this is not shown as its memory now.
SAMPLE_STALE_S = 10.0
#: The forecast of a container is worked out again once its samples moved on this far.
FORECAST_EVERY_S = 5.0


class ContainersTable(ScrollView, can_focus=True):
    """One row per container of a host: a header line, then rows under a cursor.

    A line-API view rather than a DataTable: a row is rendered into one strip when its cells
    change and that strip is reused until they change again; a stats frame repaints only the
    lines whose cells changed. (A DataTable re-rendered every visible cell once a second for
    54 sampled containers: most of the console's idle CPU.)
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"containers--header", "containers--cursor"}

    DEFAULT_CSS = """
    ContainersTable {
        background: $surface;
        color: $foreground;
        &:focus {
            background-tint: $foreground 5%;
            & > .containers--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
        & > .containers--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        & > .containers--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = keys.CONTAINERS_TABLE

    filter_text: reactive[str] = reactive("")
    """Only rows whose name or service contains this (case-insensitive) are shown."""

    @dataclass
    class Highlighted(Message):
        """The cursor moved to another container (or the rows under it changed)."""

        table: ContainersTable
        container_id: str | None

        @property
        def control(self) -> ContainersTable:
            return self.table

    @dataclass
    class DetailRequested(Message):
        """The user asked for the detail of a container (enter, or a click on its row)."""

        container_id: str

    def __init__(self, *, glyphs: str = fmt.BLOCKS, id: str | None = None) -> None:
        super().__init__(id=id)
        self.glyphs = glyphs
        self.cursor_row = 0
        #: Row order: container ids, worst first.
        self._keys: list[str] = []
        self._cells: dict[str, tuple[Content, ...]] = {}
        #: container id -> (newest sample time when worked out, what the cell says).
        self._forecasts: dict[str, tuple[float, str]] = {}
        #: Short ids of the containers that grew most before a recent kill at a shared limit.
        self._shared = False
        #: container id -> (its info, what its cells depend on, the cells).
        self._rows: dict[str, tuple[ContainerInfo, tuple[object, ...], tuple[Content, ...]]] = {}
        #: container id -> its memory band in the order (sticky, see `memory_band`).
        self._bands: dict[str, int] = {}
        self._strips: LRUCache[tuple[object, ...], Strip] = LRUCache(256)
        self._header = tuple(Content(label) for _, label, _ in COLUMNS)
        self.state: HostState | None = None
        self.now = 0.0
        self._widths = tuple(width for _, _, width in COLUMNS)
        self._row_width = ROW_WIDTH
        #: How many containers there are before the filter (the border says "3 of 8").
        self._total = 0

    def on_mount(self) -> None:
        self.border_title = "Containers"
        self.virtual_size = Size(self._row_width, 1)

    @property
    def selected_id(self) -> str | None:
        """The container under the cursor."""
        if not self._keys or not 0 <= self.cursor_row < len(self._keys):
            return None
        return self._keys[self.cursor_row]

    @property
    def row_count(self) -> int:
        """How many rows are shown (after the filter)."""
        return len(self._keys)

    def get_cell(self, container_id: str, column: str) -> Content:
        """What the row of `container_id` shows in `column` (KeyError if there is none)."""
        return self._cells[container_id][COLUMN_INDEX[column]]

    # Input -------------------------------------------------------------------------------------

    def action_open_detail(self) -> None:
        if self.selected_id is not None:
            self.post_message(self.DetailRequested(self.selected_id))

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(row=self.cursor_row + delta)

    def action_page(self, direction: int) -> None:
        self.move_cursor(row=self.cursor_row + direction * max(1, self.size.height - 2))

    def action_cursor_to(self, row: int) -> None:
        self.move_cursor(row=row if row >= 0 else len(self._keys) - 1)

    def on_click(self, event: events.Click) -> None:
        # A click moves the cursor; a click on the row under it (or a double click) opens it.
        offset = event.get_content_offset(self)
        if offset is None or offset.y == 0:
            return
        row = self.scroll_offset.y + offset.y - 1
        if not 0 <= row < len(self._keys):
            return
        if row == self.cursor_row or event.chain > 1:
            self.move_cursor(row=row)
            self.action_open_detail()
        else:
            self.move_cursor(row=row)

    def on_focus(self) -> None:
        self.refresh()  # the cursor's colours follow the focus

    def on_blur(self) -> None:
        self.refresh()

    def move_cursor(self, *, row: int, animate: bool = False) -> None:
        """Put the cursor on `row` (clamped), scroll it into view, say which container it is."""
        row = max(0, min(row, len(self._keys) - 1))
        if row == self.cursor_row:
            return
        self._refresh_row(self.cursor_row)
        self.cursor_row = row
        self._refresh_row(row)
        self._scroll_to_cursor(animate)
        self.post_message(self.Highlighted(self, self.selected_id))

    def _scroll_to_cursor(self, animate: bool = False) -> None:
        visible = max(1, self.scrollable_content_region.height - 1)  # under the header
        top = self.scroll_offset.y
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=animate, immediate=True)
        elif self.cursor_row >= top + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=animate, immediate=True)

    # Rows --------------------------------------------------------------------------------------

    def watch_filter_text(self) -> None:
        if self.state is not None:
            self.show(self.state, self.now, force=True)

    def on_resize(self) -> None:
        # The name column gives way when the pane is narrower than the rows.
        if self.state is not None:
            self.show(self.state, self.now, force=True)

    def show(self, state: HostState, now: float, *, force: bool = False) -> None:
        """Bring the rows up to date with `state`; only lines whose cells changed repaint."""
        self.state, self.now = state, now
        needle = self.filter_text.lower()
        present = [v for v in state.containers.values() if not v.gone]
        self._total = len(present)
        views = [
            v
            for v in present
            if not needle or needle in v.info.name.lower() or needle in v.info.service.lower()
        ]
        widths = column_widths(
            [fmt.clean(v.info.name) for v in present],
            [fmt.clean(v.info.service) for v in present],
            # One cell short: rows exactly as wide as the pane still got a horizontal scrollbar.
            max(0, self.scrollable_content_region.width - 1),
        )
        if widths != self._widths:
            self._widths = widths
            self._row_width = sum(width + 2 for width in widths)
            force = True
        views.sort(key=lambda v: self._order_key(v, now))
        live = state.is_live
        # Where the limit that ran out was shared (or nobody's), the container killed need not
        # be the one that grew: the one that did (the kill's culprit) is marked too.
        self._culprits = {
            k.culprit_id[:12] for k in state.oom_kills if k.culprit_id and now - k.time < OOM_MARK_S
        }
        self._shared = any(
            is_shared_limit(v.info.memory_limit_bytes, v.latest.memory_limit_bytes)
            for v in views
            if v.latest is not None
        )
        rows = {v.info.id: self._cells_for(v, now, live) for v in views}
        for gone in set(self._forecasts) - set(rows):
            del self._forecasts[gone]
        for gone in set(self._rows) - set(rows):
            del self._rows[gone]
        for gone in set(self._bands) - set(rows):
            del self._bands[gone]
        keys = list(rows)
        selected = self.selected_id
        if keys != self._keys or force:
            self._keys = keys
            self._cells = rows
            self.virtual_size = Size(self._row_width, len(keys) + 1)
            cursor = (
                keys.index(selected) if selected in keys else min(self.cursor_row, len(keys) - 1)
            )
            self.cursor_row = max(0, cursor)
            self._scroll_to_cursor()
            self.refresh()
            if self.selected_id != selected:
                self.post_message(self.Highlighted(self, self.selected_id))
        else:
            old, self._cells = self._cells, rows
            for row, key in enumerate(keys):
                if old.get(key) != rows[key]:
                    self._refresh_row(row)
        subtitle = " · ".join(
            part
            for part in (
                f"filter {self.filter_text!r}: {len(keys)} of {self._total}"
                if self.filter_text
                else "",
                "↑ grew most before a shared-limit or host-wide kill" if self._culprits else "",
                f"{SHARED_MARK} a limit shared with other containers" if self._shared else "",
                (
                    "STALE: last known values"
                    if has_readings(state)
                    else "connecting: nothing read yet"
                )
                if not live
                else "",
            )
            if part
        )
        if subtitle != (self.border_subtitle or ""):
            self.border_subtitle = subtitle  # a set repaints the whole table
        self.set_class(not live, "stale")

    def _order_key(self, view: ContainerView, now: float) -> tuple[int, int, str, str]:
        """Worst first, a total order: severity, then the memory band (sticky), then the name
        and the id, so equal rows never trade places and a row moves only when its rank
        really changed."""
        band = memory_band(memory_share(view), self._bands.get(view.info.id))
        self._bands[view.info.id] = band
        return (-severity(view, now), -band, view.info.name, view.info.id)

    def _refresh_row(self, row: int) -> None:
        """Repaint the line of `row` if it is on screen (line 0 is the header)."""
        line = row - self.scroll_offset.y + 1
        if 1 <= line < self.scrollable_content_region.height:
            self.refresh(Region(0, line, self.scrollable_content_region.width, 1))

    # Painting ----------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        if y == 0:
            strip = self._row_strip(self._header, "containers--header")
        else:
            row = scroll_y + y - 1
            if row >= len(self._keys):
                return Strip.blank(width, self.rich_style)
            part = "containers--cursor" if row == self.cursor_row else ""
            strip = self._row_strip(self._cells[self._keys[row]], part)
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)

    def _row_strip(self, cells: tuple[Content, ...], part: str) -> Strip:
        """One row, every column padded to its width plus a space each side; cached."""
        style = self.visual_style
        # The header's and the cursor's colours go over the cells' own (an OOM mark or a red
        # sparkline under the cursor reads in the cursor's colours, as a DataTable draws it).
        over = self.get_visual_style(part) if part else None
        widths = self._widths
        key = (cells, part, style, over, widths)
        strip = self._strips.get(key)
        if strip is None:
            shown = [
                Content(fmt.elide_middle(cell.plain, width)) if column in DATA_COLUMNS else cell
                for cell, (column, _, _), width in zip(cells, COLUMNS, widths, strict=False)
            ]
            line = Content("").join(
                Content(" ") + cell.truncate(width, ellipsis=True, pad=True) + Content(" ")
                for cell, width in zip(shown, widths, strict=False)
            )
            if over is not None and part != "containers--cursor":
                line = line.stylize(over)  # the last span: it wins over the cells' styles
            elif over is not None:
                # The cursor's colours win over the cells' (the last span), except over the
                # sparkline: in the cursor's colours its blocks melt into the bar (the light
                # theme's pale blocks on blue), so it keeps its own on the pane's background.
                start = sum(width + 2 for width in widths[:SPARK_COLUMN])
                end = start + widths[SPARK_COLUMN] + 2
                line = line.stylize(over, 0, start).stylize(over, end, len(line))
                if cells and len(cells) > SPARK_COLUMN:
                    line = line.stylize("on $surface", start, end)
            strips = Visual.to_strips(self, line, self._row_width, 1, style, pad=True)
            strip = strips[0] if strips else Strip.blank(self._row_width)
            self._strips[key] = strip
        return strip

    def _to_limit(self, view: ContainerView, newest: float) -> str:
        """The same forecast diagnose and watch use, cached: a time only for a significant
        trend with the limit in sight; otherwise what there is ("stable", "<2m data")."""
        cached = self._forecasts.get(view.info.id)
        if cached is not None and 0 <= newest - cached[0] < FORECAST_EVERY_S:
            return cached[1]
        text = forecast_cell(container_forecast(view))
        self._forecasts[view.info.id] = (newest, text)
        return text

    def _cells_for(self, view: ContainerView, now: float, live: bool) -> tuple[Content, ...]:
        """The row's cells, built again only when what they show changed (most rows of a
        stats frame have a new sample with the same figures)."""
        info = view.info
        latest = view.latest
        marked = view.last_oom is not None and now - view.last_oom < OOM_MARK_S
        culprit = info.id[:12] in self._culprits
        fresh = latest is not None and now - latest.time <= SAMPLE_STALE_S
        current = live and latest is not None and fresh and info.state == "running"
        key: tuple[object, ...] = (marked, culprit, live, current, view.oom_kills, self.glyphs)
        if current and latest is not None:
            # Only the newest SPARK_WIDTH samples are drawn (a view keeps many more).
            recent = [
                s.memory_used_bytes for s in itertools.islice(reversed(view.samples), SPARK_WIDTH)
            ]
            key += (
                tuple(recent),
                latest.memory_limit_bytes,
                f"{latest.cpu_percent:.0f}",
                self._to_limit(view, latest.time),
            )
        cached = self._rows.get(info.id)
        if cached is not None and cached[0] is info and cached[1] == key:
            return cached[2]
        cells = self._build_cells(view, marked, current, live, culprit)
        self._rows[info.id] = (info, key, cells)
        return cells

    def _build_cells(
        self, view: ContainerView, marked: bool, current: bool, live: bool, culprit: bool = False
    ) -> tuple[Content, ...]:
        info = view.info
        latest = view.latest
        oom = Content.styled("OOM" if marked else "", "bold $oom")
        if culprit:
            oom += Content.styled("↑", "bold $warning")
        health_style = {"healthy": "$healthy", "unhealthy": "bold $unhealthy"}.get(info.health, "")
        cells: list[Content] = [
            oom,
            Content(fmt.clean(info.name)),
            Content(fmt.clean(info.service)),
            Content(fmt.clean(info.state)),
            Content.styled(fmt.clean(info.health) or "-", health_style),
        ]
        if not current or latest is None:
            # The last sample of a stopped container, or one the sampler stopped reporting,
            # is not its memory now: say so rather than show it as current.
            word = "stale" if not live else "no data" if info.state == "running" else "-"
            cells += [Content.styled(word, "$stale")] * 5
        else:
            limit = latest.memory_limit_bytes
            used = latest.memory_used_bytes
            recent = list(itertools.islice(reversed(view.samples), SPARK_WIDTH))
            values = [float(s.memory_used_bytes) for s in reversed(recent)]
            top = float(limit) if fmt.has_limit(limit) else 0.0
            pct = used / limit * 100 if fmt.has_limit(limit) else None
            # A parent cgroup's limit (a cgroup_parent, a slice) bounds the group, not this
            # container alone: the figure is not its own (the border says what * means).
            shared = SHARED_MARK if is_shared_limit(info.memory_limit_bytes, limit) else ""
            pct_style = (
                "bold $error" if pct and pct >= 90 else "$warning" if pct and pct >= 75 else ""
            )
            cells += [
                Content.styled(fmt.sparkline(values, SPARK_WIDTH, top, self.glyphs), pct_style),
                Content(f"{fmt.size(used)}/{fmt.size(limit) if top else 'none'}{shared}"),
                Content.styled(f"{pct:.0f}%" if pct is not None else "-", pct_style),
                Content(self._to_limit(view, latest.time)),
                Content(f"{latest.cpu_percent:.0f}%"),
            ]
        restarts = f"{info.restarts}" + (f" ({view.oom_kills}oom)" if view.oom_kills else "")
        cells.append(Content(restarts))
        return tuple(cells)

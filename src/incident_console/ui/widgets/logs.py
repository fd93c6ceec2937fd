"""The logs pane: follow a container (or all), filter, search with highlights, pause, signals.

Lines come from HostState.logs (already sanitized by the sources; cleaned again here) and are
kept in a bounded buffer (:data:`LINE_CAP`). Log text is data: it is written as plain
``rich.text.Text``, never parsed as markup. Highlights use attributes (bold, reverse) rather
than colours so they read in every theme.

Taking a line in costs an append: the pane is a line-API scroll view that renders only the
rows on screen, when they are painted (at most 10 times a second, the app's refresh). So a
container logging thousands of lines a second costs the rows that fit, not the lines that
arrived; every kept line stays in the buffer for filter, search and scrolling back. When the
rate is beyond reading, the border says so ("N lines/s, showing the latest").
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import BindingType
from textual.cache import LRUCache
from textual.geometry import Offset, Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from incident_console.domain.events import LogLine
from incident_console.monitor.state import HostState
from incident_console.ui import format as fmt
from incident_console.ui import keys
from incident_console.ui.widgets.panes import has_readings

LINE_CAP = 2000
#: Above this many lines a second nobody reads along; the border says only the latest show.
READABLE_RATE = 50.0
#: ... and the view follows the stream this often rather than at every refresh (0.1 s): a paint
#: of the pane is most of the console's cost at such rates (10 ms each, measured).
FAST_PAINT_S = 0.5
#: Lines are at most this wide on screen (or the pane, if wider); as the RichLog before did.
MIN_LINE_WIDTH = 78
_PREFIX_WIDTH = len("hh:mm:ss ") + 20 + len(" | ")
_DIM = Style(dim=True)
_BOLD = Style(bold=True)


def new_lines(buffer: Iterable[LogLine], last: LogLine | None) -> list[LogLine]:
    """The lines of `buffer` after `last` (all of them if `last` is gone from the ring)."""
    items = list(buffer)
    if last is None:
        return items
    for index in range(len(items) - 1, -1, -1):
        if items[index] is last:
            return items[index + 1 :]
    return items


class LogPane(ScrollView, can_focus=True):
    """Log lines of the host, following the selected container or all of them."""

    DEFAULT_CSS = """
    LogPane {
        background: $surface;
        color: $foreground;
        overflow-y: scroll;
        &:focus {
            background-tint: $foreground 5%;
        }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = keys.LOG_PANE

    @dataclass
    class SearchRequested(Message):
        """The pane wants the prompt opened for a search."""

        pane: LogPane

    def __init__(self, *, cap: int = LINE_CAP, id: str | None = None) -> None:
        super().__init__(id=id)
        self.cap = cap
        self.follow_all = True
        self.follow_id: str | None = None
        self.paused = False
        self.auto_scroll = True
        self.filter_text = ""
        self.search_text = ""
        #: Lines taken from the host's state since the pane was made (shown or not).
        self.received = 0
        self._lines: deque[LogLine] = deque(maxlen=cap)
        self._last: LogLine | None = None
        #: The shown lines; row r of the pane is _shown[r].
        self._shown: deque[LogLine] = deque(maxlen=cap)
        #: Lines that ever left the front of _shown: absolute row = row + _base.
        self._base = 0
        self._match_rows: deque[int] = deque()  # absolute rows
        self._position = -1  # absolute row of the last jump; -1 follows the end
        self._pending = 0
        self._widest = 0
        self._search_re: re.Pattern[str] | None = None
        self._strips: LRUCache[tuple[int, int, int, int, Style], Strip] = LRUCache(512)
        self._frame: tuple[Style, Offset, int, int] = (Style(), Offset(), 0, 0)
        self._due = False  # lines taken that the view has not moved to yet
        self._painted = 0.0
        self._rate = 0.0
        self._rate_count = 0
        self._rate_since = time.monotonic()

    def on_mount(self) -> None:
        self.border_title = "Logs"
        self._status()

    # Feeding -----------------------------------------------------------------------------

    def show(self, state: HostState, now: float) -> int:
        """Take the lines logged since the last call; returns how many there were."""
        fresh = new_lines(state.logs, self._last)
        if state.logs:
            self._last = state.logs[-1]
        self._measure_rate(len(fresh))
        if fresh:
            self.received += len(fresh)
            self._lines.extend(fresh)
            if self.paused:
                self._pending += len(fresh)
            else:
                self._append(line for line in fresh if self._visible(line))
        self._settle()
        self._status(state)
        return len(fresh)

    def follow(self, container_id: str | None) -> None:
        """Follow `container_id` when following the selection."""
        if container_id != self.follow_id:
            self.follow_id = container_id
            if not self.follow_all:
                self.rebuild()

    def _measure_rate(self, arrived: int) -> None:
        self._rate_count += arrived
        elapsed = time.monotonic() - self._rate_since
        if elapsed >= 1.0:
            self._rate = self._rate_count / elapsed
            self._rate_count = 0
            self._rate_since += elapsed

    def _visible(self, line: LogLine) -> bool:
        if not self.follow_all and self.follow_id is not None and line.id != self.follow_id:
            return False
        return not self.filter_text or self.filter_text.lower() in line.text.lower()

    def _append(self, lines: Iterable[LogLine]) -> None:
        """Add lines at the end: bookkeeping only, nothing is rendered here."""
        shown, cap, needle = self._shown, self.cap, self.search_text.lower()
        before = len(shown) + self._base
        for line in lines:
            if len(shown) == cap:
                self._base += 1  # the deque drops its first line
            shown.append(line)
            if needle and needle in line.text.lower():
                self._match_rows.append(self._base + len(shown) - 1)
            self._widest = max(self._widest, _PREFIX_WIDTH + len(line.text))
        if len(shown) + self._base == before:
            return
        while self._match_rows and self._match_rows[0] < self._base:
            self._match_rows.popleft()
        if self._position >= 0 and self._position < self._base:
            self._position = -1
        self._due = True
        self._settle()

    def _settle(self, force: bool = False) -> None:
        """Move the view to the lines taken; beyond reading speed, at most every FAST_PAINT_S."""
        if not self._due:
            return
        now = time.monotonic()
        if not force and self._rate > READABLE_RATE and now - self._painted < FAST_PAINT_S:
            return
        self._due, self._painted = False, now
        self._resize()
        if not self.paused and self._position < 0:
            self.scroll_end(animate=False, immediate=False, x_axis=False)

    def on_resize(self) -> None:
        # The view's width follows the pane's (it was worked out before the first layout).
        self._resize()

    def _resize(self) -> None:
        width = min(self._widest, max(self.scrollable_content_region.width, MIN_LINE_WIDTH))
        self.virtual_size = Size(width, len(self._shown))
        self.refresh()

    def _line_text(self, line: LogLine) -> Text:
        text = Text(no_wrap=True, end="")
        text.append(fmt.clock(line.time) + " ", style="dim")
        text.append(fmt.clean(line.container)[:20] + " | ", style="dim")
        text.append(fmt.clean(line.text), style="bold" if line.signal else "")
        if self._search_re is not None:
            text.highlight_regex(self._search_re, "reverse")
        return text

    def _strip(self, line: LogLine) -> Strip:
        text = self._line_text(line)
        return Strip(list(text.render(self.app.console)), text.cell_len)

    def _row_segments(self, line: LogLine, base: Style) -> tuple[list[Segment], int]:
        """The segments of a row on the pane's style: what `_strip` renders, without Rich's
        console (a paint renders every row on screen, twice a second at high rates)."""
        dim, bold = base + _DIM, base + _BOLD
        prefix = f"{fmt.clock(line.time)} {fmt.clean(line.container)[:20]} | "
        text = fmt.clean(line.text)
        segments = [Segment(prefix, dim), Segment(text, bold if line.signal else base)]
        return segments, cell_len(prefix) + cell_len(text)

    def render_lines(self, crop: Region) -> list[Strip]:
        # What every row needs, looked up once a paint: rich_style walks the ancestors'
        # backgrounds (half the pane's paint time when it was asked per row).
        self._frame = (
            self.rich_style,
            self.scroll_offset,
            self.scrollable_content_region.width,
            self.virtual_size.width,
        )
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        style, (scroll_x, scroll_y), width, limit = self._frame
        row = scroll_y + y
        if row >= len(self._shown):
            return Strip.blank(width, style)
        key = (row + self._base, scroll_x, width, limit, style)
        strip = self._strips.get(key)
        if strip is None:
            line = self._shown[row]
            if self._search_re is None:
                # (scroll_x + width stays within `limit`, or no line is that long: no crop)
                strip = Strip(*self._row_segments(line, style))
                strip = strip.crop_extend(scroll_x, scroll_x + width, style)
            else:
                full = self._strip(line).crop(0, limit)
                strip = full.crop_extend(scroll_x, scroll_x + width, style).apply_style(style)
            self._strips[key] = strip
        return strip

    @property
    def lines(self) -> list[Strip]:
        """Every shown line rendered (tests and screenshots; the screen renders only rows)."""
        return [self._strip(line) for line in self._shown]

    @property
    def newest_shown(self) -> LogLine | None:
        """The last line in the pane, if any."""
        return self._shown[-1] if self._shown else None

    def rebuild(self) -> None:
        """Redraw every kept line (after a change of filter, search or follow target)."""
        self._shown.clear()
        self._base = 0
        self._match_rows.clear()
        self._position = -1
        self._widest = 0
        self._strips.clear()  # (the style of a cached row is the pane's at that paint)
        needle = self.search_text
        self._search_re = re.compile(re.escape(needle), re.IGNORECASE) if needle else None
        self._append(line for line in self._lines if self._visible(line))
        self._due = True
        self._settle(force=True)
        self._status()

    def _status(self, state: HostState | None = None) -> None:
        target = "all" if self.follow_all or self.follow_id is None else "selected"
        parts = [f"following {target}", f"cap {self.cap}"]
        if self.paused:
            parts.insert(0, f"PAUSED (+{self._pending})")
        elif self._rate > READABLE_RATE and self._position < 0:
            parts.insert(0, f"{self._rate:,.0f} lines/s, showing the latest")
        if self.filter_text:
            parts.append(f"filter {self.filter_text!r}")
        if self.search_text:
            at = sum(1 for r in self._match_rows if r <= self._position)
            parts.append(f"search {self.search_text!r} {at}/{len(self._match_rows)}")
        if state is not None and not state.is_live:
            parts.insert(0, "STALE" if has_readings(state) else state.link)
        subtitle = " | ".join(parts)
        if subtitle != self.border_subtitle:
            self.border_subtitle = subtitle

    # Actions -----------------------------------------------------------------------------

    def set_filter(self, text: str) -> None:
        """Show only lines containing `text` (case-insensitive); '' shows all."""
        self.filter_text = text
        self.rebuild()

    def set_search(self, text: str) -> None:
        """Highlight `text` and jump to its first match."""
        self.search_text = text
        self.rebuild()
        if self._match_rows:
            self.action_next_match()

    @property
    def match_count(self) -> int:
        """How many shown lines match the search."""
        return len(self._match_rows)

    @property
    def current_row(self) -> int:
        """The row the last jump landed on (-1: following the end)."""
        return self._position - self._base if self._position >= 0 else -1

    def _jump(self, row: int) -> None:
        """Jump to absolute row `row`."""
        self._position = row
        self.auto_scroll = False
        self.scroll_to(y=max(0, row - self._base - self.size.height // 2), animate=False)
        self._status()

    def action_toggle_follow(self) -> None:
        self.follow_all = not self.follow_all
        self.rebuild()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            self._pending = 0
            self.auto_scroll = True
            self.rebuild()
            self.scroll_end(animate=False)
        self._status()

    def action_search(self) -> None:
        self.post_message(self.SearchRequested(self))

    def action_next_match(self) -> None:
        rows = self._match_rows
        later = next((r for r in rows if r > self._position), None)
        if rows:
            self._jump(later if later is not None else rows[0])

    def action_previous_match(self) -> None:
        rows = self._match_rows
        earlier = next((r for r in reversed(rows) if r < self._position), None)
        if rows:
            self._jump(earlier if earlier is not None else rows[-1])

    def action_next_signal(self) -> None:
        rows = [i + self._base for i, line in enumerate(self._shown) if line.signal is not None]
        later = [r for r in rows if r > self._position]
        if later or rows:
            self._jump(later[0] if later else rows[0])

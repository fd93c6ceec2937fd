"""The logs pane: follow a container (or all), filter, search with highlights, pause, signals.

Lines come from HostState.logs (already sanitized by the sources; cleaned again here) and are
kept in a bounded buffer (:data:`LINE_CAP`). Log text is data: it is written as plain
``rich.text.Text``, never parsed as markup. Highlights use attributes (bold, reverse) rather
than colours so they read in every theme.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import RichLog

from incident_console.domain.events import LogLine
from incident_console.monitor.state import HostState
from incident_console.ui import format as fmt

LINE_CAP = 2000


def new_lines(buffer: Iterable[LogLine], last: LogLine | None) -> list[LogLine]:
    """The lines of `buffer` after `last` (all of them if `last` is gone from the ring)."""
    items = list(buffer)
    if last is None:
        return items
    for index in range(len(items) - 1, -1, -1):
        if items[index] is last:
            return items[index + 1 :]
    return items


class LogPane(RichLog):
    """Log lines of the host, following the selected container or all of them."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "f",
            "toggle_follow",
            "Follow all/selected",
            id="log_follow",
            tooltip="Switch between following the selected container and every container",
        ),
        Binding(
            "p",
            "toggle_pause",
            "Pause",
            id="log_pause",
            tooltip="Pause the log (new lines are kept) or resume",
        ),
        Binding(
            "s",
            "search",
            "Search",
            id="log_search",
            tooltip="Search the log; matches are highlighted",
        ),
        Binding("n", "next_match", "Next match", id="log_next", tooltip="Jump to the next match"),
        Binding(
            "N",
            "previous_match",
            "Prev match",
            id="log_previous",
            tooltip="Jump to the previous match",
        ),
        Binding(
            "x",
            "next_signal",
            "Next signal",
            id="log_next_signal",
            tooltip="Jump to the next SIGKILL, worker timeout, traceback or error",
        ),
    ]

    @dataclass
    class SearchRequested(Message):
        """The pane wants the prompt opened for a search."""

        pane: LogPane

    def __init__(self, *, cap: int = LINE_CAP, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=cap, wrap=False, markup=False, highlight=False)
        self.cap = cap
        self.follow_all = True
        self.follow_id: str | None = None
        self.paused = False
        self.filter_text = ""
        self.search_text = ""
        self._lines: deque[LogLine] = deque(maxlen=cap)
        self._last: LogLine | None = None
        self._shown: list[LogLine] = []
        self._match_rows: list[int] = []
        self._position = -1
        self._pending = 0

    def on_mount(self) -> None:
        self.border_title = "Logs"
        self._status()

    # Feeding -----------------------------------------------------------------------------

    def show(self, state: HostState, now: float) -> None:
        """Take the lines logged since the last call."""
        fresh = new_lines(state.logs, self._last)
        if state.logs:
            self._last = state.logs[-1]
        if not fresh:
            self._status(state)
            return
        self._lines.extend(fresh)
        if self.paused:
            self._pending += len(fresh)
        else:
            for line in fresh:
                if self._visible(line):
                    self._write(line)
        self._status(state)

    def follow(self, container_id: str | None) -> None:
        """Follow `container_id` when following the selection."""
        if container_id != self.follow_id:
            self.follow_id = container_id
            if not self.follow_all:
                self.rebuild()

    def _visible(self, line: LogLine) -> bool:
        if not self.follow_all and self.follow_id is not None and line.id != self.follow_id:
            return False
        return not self.filter_text or self.filter_text.lower() in line.text.lower()

    def _line_text(self, line: LogLine) -> Text:
        text = Text(no_wrap=True)
        text.append(fmt.clock(line.time) + " ", style="dim")
        text.append(fmt.clean(line.container)[:20] + " | ", style="dim")
        text.append(fmt.clean(line.text), style="bold" if line.signal else "")
        if self.search_text:
            text.highlight_regex(re.compile(re.escape(self.search_text), re.IGNORECASE), "reverse")
        return text

    def _write(self, line: LogLine) -> None:
        if len(self._shown) >= self.cap:
            # RichLog drops its first line at max_lines; keep our row numbers in step.
            self._shown.pop(0)
            self._match_rows = [r - 1 for r in self._match_rows if r > 0]
            self._position = max(-1, self._position - 1)
        row = len(self._shown)
        self._shown.append(line)
        if self.search_text and self.search_text.lower() in line.text.lower():
            self._match_rows.append(row)
        self.write(self._line_text(line), scroll_end=not self.paused and self._position < 0)

    def rebuild(self) -> None:
        """Redraw every kept line (after a change of filter, search or follow target)."""
        self.clear()
        self._shown = []
        self._match_rows = []
        self._position = -1
        for line in self._lines:
            if self._visible(line):
                self._write(line)
        self._status()

    def _status(self, state: HostState | None = None) -> None:
        target = "all" if self.follow_all or self.follow_id is None else "selected"
        parts = [f"following {target}", f"cap {self.cap}"]
        if self.paused:
            parts.insert(0, f"PAUSED (+{self._pending})")
        if self.filter_text:
            parts.append(f"filter {self.filter_text!r}")
        if self.search_text:
            at = self._position + 1 if self._position >= 0 else 0
            parts.append(f"search {self.search_text!r} {at}/{len(self._match_rows)}")
        if state is not None and not state.is_live:
            parts.insert(0, "STALE")
        self.border_subtitle = " | ".join(parts)

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
        return self._position

    def _jump(self, row: int) -> None:
        self._position = row
        self.auto_scroll = False
        self.scroll_to(y=max(0, row - self.size.height // 2), animate=False)
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
        later = [r for r in self._match_rows if r > self._position]
        if later or self._match_rows:
            self._jump(later[0] if later else self._match_rows[0])

    def action_previous_match(self) -> None:
        earlier = [r for r in self._match_rows if r < self._position]
        if earlier or self._match_rows:
            self._jump(earlier[-1] if earlier else self._match_rows[-1])

    def action_next_signal(self) -> None:
        rows = [i for i, line in enumerate(self._shown) if line.signal is not None]
        later = [r for r in rows if r > self._position]
        if later or rows:
            self._jump(later[0] if later else rows[0])

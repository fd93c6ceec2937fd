"""One host's dashboard: header, containers, host memory, health, OOM feed, logs, a prompt."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input

from incident_console.ui import format as fmt
from incident_console.ui.protocol import MonitorLike
from incident_console.ui.widgets.containers import ContainersTable
from incident_console.ui.widgets.header import HostHeader
from incident_console.ui.widgets.inputs import OrderedInput
from incident_console.ui.widgets.logs import LogPane
from incident_console.ui.widgets.panes import HealthPane, HostMemoryPane, OomFeed


class HostDashboard(Vertical):
    """Everything about one host, drawn from its monitor's HostState."""

    def __init__(
        self,
        monitor: MonitorLike,
        *,
        read_only: bool,
        glyphs: str = fmt.BLOCKS,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id, classes="dashboard")
        self.monitor = monitor
        self.read_only = read_only
        self.glyphs = glyphs
        self._version = -1
        self._header_second = -1
        self._prompt_mode = "filter"
        self._prompt_target: str = "containers"
        self._ready = False
        #: The container whose log alone the monitor follows (None: every container's).
        self._followed_alone: str | None = None

    def on_mount(self) -> None:
        # The app's refresh timer can fire before the panes exist; draw only from here on.
        # The children are found once: a query walks the DOM, and this runs 10 times a second.
        self._header = self.query_one(HostHeader)
        self._table = self.query_one(ContainersTable)
        self._logs = self.query_one(LogPane)
        self._panes: list[HostMemoryPane | HealthPane | OomFeed] = [
            self.query_one(HostMemoryPane),
            self.query_one(HealthPane),
            self.query_one(OomFeed),
        ]
        self._ready = True
        self.update_view(self.app.clock(), force=True)  # type: ignore[attr-defined]

    def on_unmount(self) -> None:
        self._ready = False

    def compose(self) -> ComposeResult:
        # The table is as tall as its rows and as wide as the screen (app.tcss); the rest of
        # the height goes to what explains the incident: the host, the kills and health
        # beside the logs.
        yield HostHeader(classes="host-header")
        with Horizontal(classes="top"):
            yield ContainersTable(glyphs=self.glyphs, id="containers")
        with Horizontal(classes="bottom"):
            with Vertical(classes="side"):
                yield HostMemoryPane(id="host-memory")
                yield OomFeed(id="oom-feed")
                yield HealthPane(id="health")
            yield LogPane(id="logs")
        yield OrderedInput(placeholder="filter", id="prompt", classes="hidden")

    @property
    def table(self) -> ContainersTable:
        return self._table if self._ready else self.query_one(ContainersTable)

    @property
    def logs(self) -> LogPane:
        return self._logs if self._ready else self.query_one(LogPane)

    @property
    def selected_id(self) -> str | None:
        """The container under the table's cursor."""
        return self.table.selected_id

    def update_view(self, now: float, *, force: bool = False) -> None:
        """Redraw from the monitor's state if it changed (the header follows the clock)."""
        if not self._ready:
            return
        state = self.monitor.state
        # The header says the link state and counts down a reconnect in seconds: it is drawn
        # again when something happened or a second passed, not at every refresh.
        if force or state.version != self._version or int(now) != self._header_second:
            self._header_second = int(now)
            self._header.show(self.monitor, now, self.read_only)
        if state.version == self._version and not force:
            return
        # Every event bumps the version by one: when the log lines taken account for all of
        # the change, nothing but the log moved and the other panes are left alone (at
        # 1,000 lines a second the version moves on every refresh).
        changed = state.version - self._version
        self._version = state.version
        self.logs.follow(self.selected_id)
        self._tell_monitor_what_to_follow()
        if self.logs.show(state, now) == changed and not force:
            return
        self.table.show(state, now)
        for pane in self._panes:
            pane.show(state, now)

    def set_glyphs(self, glyphs: str) -> None:
        """Switch sparkline glyphs (plain ASCII for the projector theme)."""
        self.glyphs = glyphs
        self.table.glyphs = glyphs
        self._version = -1

    @on(ContainersTable.Highlighted, "#containers")
    def _selection_moved(self) -> None:
        self.logs.follow(self.selected_id)
        self._tell_monitor_what_to_follow()

    def _tell_monitor_what_to_follow(self) -> None:
        # The monitor follows every container's log (from its tail) unless the pane follows
        # the selection: then one stream is enough, and back in "all" every one resumes.
        alone = None if self.logs.follow_all else self.selected_id
        if alone != self._followed_alone:
            self._followed_alone = alone
            self.monitor.follow_logs(None if alone is None else [alone])

    # The prompt: one Input for the filter (containers or logs) and the log search. -----------

    def open_filter(self) -> None:
        """Ask for a filter for the focused pane (the logs if focused, else the containers)."""
        target = "logs" if self.logs.has_focus else "containers"
        current = self.logs.filter_text if target == "logs" else self.table.filter_text
        self._open_prompt("filter", target, f"filter {target}", current)

    def open_search(self) -> None:
        """Ask for a search in the logs."""
        self._open_prompt("search", "logs", "search logs", self.logs.search_text)

    def _open_prompt(self, mode: str, target: str, placeholder: str, value: str) -> None:
        self._prompt_mode, self._prompt_target = mode, target
        prompt = self.query_one("#prompt", Input)
        prompt.placeholder = placeholder
        prompt.value = value
        prompt.remove_class("hidden")
        prompt.focus()

    @on(LogPane.SearchRequested)
    def _search_requested(self) -> None:
        self.open_search()

    @on(Input.Changed, "#prompt")
    def _prompt_changed(self, event: Input.Changed) -> None:
        # Filtering follows the typing; a search runs on enter (it moves the view).
        if self._prompt_mode == "filter":
            self.apply_filter(self._prompt_target, event.value)

    @on(Input.Submitted, "#prompt")
    def _prompt_submitted(self, event: Input.Submitted) -> None:
        if self._prompt_mode == "search":
            self.logs.set_search(event.value)
        else:
            self.apply_filter(self._prompt_target, event.value)
        self.close_prompt()

    def apply_filter(self, target: str, text: str) -> None:
        """Filter the containers table or the logs."""
        if target == "logs":
            if text != self.logs.filter_text:
                self.logs.set_filter(text)
        else:
            self.table.filter_text = text
            health = self.query_one(HealthPane)
            if text != health.filter_text:
                health.set_filter(text)
                health.show(self.monitor.state, self.app.clock())  # type: ignore[attr-defined]

    def close_prompt(self) -> bool:
        """Hide the prompt; True if it was open."""
        prompt = self.query_one("#prompt", Input)
        if prompt.has_class("hidden"):
            return False
        prompt.add_class("hidden")
        (self.logs if self._prompt_target == "logs" else self.table).focus()
        return True

"""The small panes of a host's dashboard: host memory, the OOM feed, health and probes.

Each renders from a HostState snapshot; a stale host's pane says STALE and shows its numbers
only as 'last known', never as current.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual.content import Content, Span
from textual.geometry import Region
from textual.widgets import Static

from incident_console.domain.durations import format_duration
from incident_console.domain.events import OomKill
from incident_console.domain.forecast import MIN_SPAN_S
from incident_console.domain.oom_scope import scope_label, scope_tag
from incident_console.monitor.diagnosis import host_forecast, host_forecast_text
from incident_console.monitor.state import HostState
from incident_console.ui import format as fmt

OOM_FEED_ROWS = 30


def has_readings(state: HostState) -> bool:
    """Whether anything was ever read from the host (a first connection has read nothing)."""
    return bool(state.containers or state.memory or state.oom_kills or state.sources)


def _stale_line(state: HostState) -> Content:
    if not has_readings(state):
        # Nothing was read yet: "STALE ... last known values" would speak of values never seen.
        return Content.styled(f"{state.link}, nothing read yet", "$stale")
    return Content.styled(
        f"STALE since {fmt.clock(state.link_since)}: last known values, not current", "bold $stale"
    )


def last_meaningful_line(text: str) -> str:
    """The line of a probe's output that says what went wrong: the last one with words (a
    Python traceback ends with its exception; the frames above it are in the detail)."""
    lines = [line.strip() for line in fmt.clean_lines(text) if line.strip()]
    return lines[-1] if lines else ""


def _fit(line: Content, width: int) -> list[Content]:
    """`line` as rows of at most `width` cells, wrapped as Textual wraps a widget's content."""
    return line.wrap(width) if line.cell_length > width else [line]


class StatePane(Static, can_focus=True):
    """A focusable pane drawn from a HostState.

    It is redrawn up to 10 times a second and its numbers change every second (durations,
    memory): when only some lines changed and their number did not, only those lines are
    repainted (long lines are wrapped by the pane itself, so a row is a screen line). A whole
    repaint of the 22-line health pane was the largest part of the idle console's paint.
    """

    DEFAULT_CSS = """
    StatePane { border: round $secondary; padding: 0 1; height: auto; }
    StatePane:focus { border: round $primary; }
    StatePane.stale { color: $stale; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self._pane: Content = Content("")
        self._line_keys: list[tuple[str, tuple[Span, ...]]] | None = None
        self._row_keys: list[tuple[str, tuple[Span, ...]]] | None = None
        self._wrapped = True
        self._shown_for: tuple[HostState, float] | None = None

    def on_resize(self) -> None:
        # Rows wrapped for the old width no longer match the screen, and a pane whose lines
        # fit themselves to its width says them again: draw it anew now, not at the next change.
        self._wrapped = True
        self._line_keys = None
        if self._shown_for is not None:
            self.show(*self._shown_for)
            # A layout asked for inside the resize is lost (seen: a feed three lines long kept
            # the seven-line height of its first, narrower draw); ask once it is done.
            self.call_after_refresh(self.refresh, layout=True)

    def render(self) -> Content:
        """What `show` last set (it bypasses Static.update to repaint only changed lines)."""
        return self._pane

    def show(self, state: HostState, now: float) -> None:
        """Render the pane for `state` at time `now`."""
        self._shown_for = (state, now)
        if not state.is_live and not has_readings(state):
            # A first connection: nothing to show but that ("no OOM kill seen" is not known).
            lines = [_stale_line(state)]
        elif not state.is_live:
            lines = [_stale_line(state), *self.lines(state, now)]
        else:
            lines = self.lines(state, now)
        self.set_class(not state.is_live, "stale")
        keys = [(line.plain, tuple(line.spans)) for line in lines]
        if keys == self._line_keys:
            return
        self._line_keys = keys
        # Long lines are wrapped here as Textual would wrap them, so that one row of ours is
        # one line on screen and a changed row can be repainted alone.
        width = self.content_region.width
        rows = keys
        if width > 0 and any(line.cell_length > width for line in lines):
            lines = [row for line in lines for row in _fit(line, width)]
            rows = [(line.plain, tuple(line.spans)) for line in lines]
        self._pane = Content("\n").join(lines) if lines else Content("")
        old, self._row_keys = self._row_keys, rows
        wraps = width <= 0 or any(cell_len(plain) > width for plain, _ in rows)
        wrapped, self._wrapped = self._wrapped, wraps
        if old is not None and len(old) == len(rows) and not wraps and not wrapped:
            changed = [
                y for y, (was, now_) in enumerate(zip(old, rows, strict=True)) if was != now_
            ]
            self.refresh(*(Region(0, y, width, 1) for y in changed))
            return
        # A different number of rows, or rows wider than the pane: everything moves.
        auto = self.styles.height is None or self.styles.height.is_auto
        self.refresh(layout=bool(auto))

    def lines(self, state: HostState, now: float) -> list[Content]:
        """The pane's lines (without the stale banner)."""
        raise NotImplementedError


class HostMemoryPane(StatePane):
    """The host: memory, swap, pressure, and how fast available memory is shrinking."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        #: (time of the host reading it is based on, the forecast's words).
        self._forecast_cache: tuple[float | None, str] | None = None

    def on_mount(self) -> None:
        self.border_title = "Host"

    def lines(self, state: HostState, now: float) -> list[Content]:
        if not state.memory:
            return [Content.styled("no host memory reading yet", "$text-muted")]
        mem = state.memory[-1]
        used = mem.total_bytes - mem.available_bytes
        pct = used / mem.total_bytes * 100 if mem.total_bytes else 0.0
        style = "bold $error" if pct >= 90 else "$warning" if pct >= 75 else ""
        swap_used = mem.swap_total_bytes - mem.swap_free_bytes
        out = [
            Content.assemble(
                "memory ",
                (f"{fmt.size(used)}/{fmt.size(mem.total_bytes)} {pct:.0f}%", style),
                f"  available {fmt.size(mem.available_bytes)}",
            ),
            Content(
                f"swap   {fmt.size(swap_used)}/{fmt.size(mem.swap_total_bytes)}"
                if mem.swap_total_bytes
                else "swap   none"
            ),
        ]
        if mem.psi_some_avg10 is not None:
            out.append(
                Content(
                    f"pressure some {mem.psi_some_avg10:.1f}% full {mem.psi_full_avg10 or 0:.1f}% (10 s)"
                )
            )
        out.append(Content(f"forecast {self._forecast(state)}"))
        return out

    def _forecast(self, state: HostState) -> str:
        # The same significant-trend forecast as diagnose's: no time from a wander or a step.
        # Worked out once per host reading (the pane is drawn up to 10 times a second).
        newest = state.memory[-1].time if state.memory else None
        cached = self._forecast_cache
        if cached is None or cached[0] != newest:
            forecast = host_forecast(state)
            if forecast is not None and forecast.status == "too_little_data":
                # The pane is narrow: "(45 s/2 m)" of the data a trend needs; diagnose says
                # it in full.
                text = (
                    f"too little data ({format_duration(forecast.span_s)}/"
                    f"{format_duration(MIN_SPAN_S)})"
                )
            else:
                text = host_forecast_text(forecast)
            cached = (newest, text)
            self._forecast_cache = cached
        return cached[1]


class OomFeed(StatePane):
    """Kernel OOM kills, newest first, attributed to container and service."""

    def on_mount(self) -> None:
        self.border_title = "OOM kills"

    def lines(self, state: HostState, now: float) -> list[Content]:
        source = state.sources.get("kernel_log")
        out: list[Content] = []
        if source is not None and not source.ok:
            out.append(Content.styled(f"kernel log: {fmt.clean(source.detail)}", "$warning"))
            counters = state.sources.get("oom_counters")
            if counters is not None:
                out.append(Content.styled(fmt.clean(counters.detail), "$text-muted"))
        if not state.oom_kills:
            out.append(Content.styled("no OOM kill seen", "$text-muted"))
            return out
        width = self.content_region.width
        for kill in list(reversed(state.oom_kills))[:OOM_FEED_ROWS]:
            out.append(self.kill_line(state, kill, width))
        return out

    def kill_line(self, state: HostState, kill: OomKill, width: int) -> Content:
        """One kill in one line of `width` cells (0: any): the time, the container, the
        process, its rss and the constraint. Where the pane is narrow the words go first
        ("pid", the service when the name holds it), then the name is elided in its middle."""
        # The scope's words come from domain.oom_scope, as diagnose, watch and the postmortem
        # say them: the short label always, what ran out and who grew where the width allows.
        where = scope_label(kill)
        told = scope_tag(kill)
        who, about = self.whose(state, kill)
        who, about = fmt.clean(who), fmt.clean(about)
        process = fmt.clean(kill.process)
        if kill.pid:
            told_what, long_what, short_what = (
                f" {process} pid {kill.pid} rss {fmt.size(kill.anon_rss_bytes)} ({told})",
                f" {process} pid {kill.pid} rss {fmt.size(kill.anon_rss_bytes)} ({where})",
                f" {process} {kill.pid} {fmt.size(kill.anon_rss_bytes)} {where}",
            )
        else:
            # A counted kill: no pid or rss was ever known; say where it came from.
            detail = fmt.clean(kill.detail or "pid unknown")
            # (A kill known only from a counter has no process name either: no double space.)
            named_proc = f" {process}" if process else ""
            long_what = f"{named_proc} {detail}, {fmt.clean(kill.source)} ({where})"
            told_what = long_what.replace(f"({where})", f"({told})")
            short_what = f"{named_proc} {detail} {where}"
        # Narrowest: the process goes too (the detail's processes pane names it).
        bare_what = short_what.replace(f" {process} ", " ", 1) if process else short_what
        stamp = fmt.clock(kill.time)
        # The service in brackets says nothing the name does not already say (backend_1).
        named = about not in ("-", "") and about.split(",")[0] not in who
        # (the OOM tag, the service in brackets, what was killed): each try says less.
        tries = [
            ("OOM", f" ({about})" if about != "-" else "", told_what),
            ("OOM", f" ({about})" if about != "-" else "", long_what),
            ("OOM", f" ({about})" if named else "", long_what),
            ("OOM", f" ({about})" if named else "", short_what),
            ("OOM", "", short_what),
            ("", "", short_what),  # the pane's title says what these are
            ("", "", bare_what),
        ]
        for tag, about_text, what in tries:
            fixed = len(stamp) + 1 + (len(tag) + 1 if tag else 0)
            if not width or fixed + cell_len(who) + len(about_text) + len(what) <= width:
                break
        room = width - fixed - len(about_text) - len(what) if width else cell_len(who)
        name = fmt.elide_middle(who, max(8, room))
        over = fixed + cell_len(name) + len(about_text) + len(what) - width
        if width and over > 0:
            # Still too long (a counted kill's prose detail): its end goes, not the name.
            what = what[: max(1, len(what) - over - 1)] + "…"
        line = Content.assemble((stamp, "$text-muted"), " ")
        if tag:
            line += Content.assemble(("OOM", "bold $oom"), " ")
        return line + Content.assemble((name, "bold"), about_text, what)

    @staticmethod
    def whose(state: HostState, kill: OomKill) -> tuple[str, str]:
        """The container a kill hit and what is known of it: "(backend)", "(backend,
        removed)", "(removed)" for a container gone before anyone saw its name."""
        if not kill.container_id:
            return (kill.container or "host", kill.service or "-")
        known = state.container_name(kill.container_id)
        name = kill.container or (known.name if known else "") or kill.container_id[:12]
        service = kill.service or (known.service if known else "")
        # Gone: docker said so, or the inventory is in and has no such container.
        inventory = state.sources.get("docker_events")
        removed = known.removed if known else inventory is not None and inventory.ok
        parts = [p for p in (service, "removed" if removed else "") if p]
        return (name, ", ".join(parts) or "-")


class HealthPane(StatePane):
    """Health states, how long since each changed, failing streaks, probes.

    The containers table's filter filters this pane too (its border says so); a probe's or a
    healthcheck's long output is cut to its last meaningful line (the detail has it all).
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.filter_text = ""

    def on_mount(self) -> None:
        self.border_title = "Health"

    def set_filter(self, text: str) -> None:
        """Show only the containers whose name or service contains `text`."""
        self.filter_text = text
        self.border_subtitle = f"filter {text!r}" if text else ""

    def lines(self, state: HostState, now: float) -> list[Content]:
        out: list[Content] = []
        needle = self.filter_text.lower()
        views = sorted(state.containers.values(), key=lambda v: v.info.name)
        for view in views:
            info = view.info
            if not info.health or view.gone:
                continue
            if needle and needle not in info.name.lower() and needle not in info.service.lower():
                continue
            style = "$healthy" if info.health == "healthy" else "bold $unhealthy"
            since = fmt.duration(now - view.health_since) if view.health_since else "-"
            line = Content.assemble(
                (f"{info.health:<9}", style), " ", fmt.clean(info.name), f"  for {since}"
            )
            if info.failing_streak:
                line = line + Content(f"  streak {info.failing_streak}")
            out.append(line)
            if info.health != "healthy" and info.last_probe_output:
                said = last_meaningful_line(info.last_probe_output)
                more = info.last_probe_output.strip().count("\n")
                line = Content.styled("  " + said[:160], "$text-muted")
                if more:
                    line += Content.styled(f" (+{more} lines in its detail)", "$text-muted")
                out.append(line)
        for url, results in sorted(state.probes.items()):
            if not results:
                continue
            last = results[-1]
            status = (
                str(last.status)
                if last.status is not None
                else fmt.clean(last.error) or "no answer"
            )
            style = "$healthy" if last.ok else "bold $unhealthy"
            latency = f" {last.latency_ms:.0f} ms" if last.latency_ms is not None else ""
            out.append(
                Content.assemble(
                    ("probe ", "$text-muted"), (status, style), latency, " ", fmt.clean(url)
                )
            )
        return out or [Content.styled("no healthchecks or probes", "$text-muted")]

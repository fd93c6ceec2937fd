"""The dashboard's small panes repaint only the lines that changed, and show what a full
repaint would: a stale line left in Textual's line cache would show an old number."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.content import Content
from textual.geometry import Region

from incident_console.monitor.state import HostState
from incident_console.ui.themes import fallback_theme
from incident_console.ui.widgets.panes import StatePane


class Pane(StatePane):
    DEFAULT_CSS = "Pane { width: 40; height: 8; }"

    rows: list[str] = []

    def lines(self, state: HostState, now: float) -> list[Content]:
        return [Content(row) for row in self.rows]


class Two(App[None]):
    def on_load(self) -> None:
        theme = fallback_theme().theme  # the panes' CSS uses our variables ($stale, ...)
        self.register_theme(theme)
        self.theme = theme.name

    def compose(self) -> ComposeResult:
        yield Pane(id="updated")
        yield Pane(id="fresh")


def screen_lines(pane: Pane) -> list[str]:
    return [strip.text for strip in pane.render_lines(Region(0, 0, *pane.outer_size))]


async def test_a_changed_line_is_repainted_alone_and_the_pane_matches_a_fresh_one() -> None:
    state = HostState(name="prod", link="connected")
    app = Two()
    async with app.run_test(size=(60, 20)) as pilot:
        updated, fresh = app.query_one("#updated", Pane), app.query_one("#fresh", Pane)
        updated.rows = ["healthy   backend  for 41s", "healthy   db  for 2m10s", "probe 200"]
        updated.show(state, 0.0)
        await pilot.pause()
        assert "for 41s" in "\n".join(screen_lines(updated))

        refreshed: list[tuple[Region, ...]] = []
        real_refresh = updated.refresh

        def spy(*regions: Region, **kwargs: bool) -> object:
            refreshed.append(regions)
            return real_refresh(*regions, **kwargs)

        updated.refresh = spy  # type: ignore[method-assign]
        updated.rows = ["healthy   backend  for 42s", "healthy   db  for 2m10s", "probe 200"]
        updated.show(state, 1.0)
        updated.show(state, 1.0)  # the same again: nothing to repaint
        await pilot.pause()
        assert refreshed == [(Region(0, 0, updated.content_region.width, 1),)]

        fresh.rows = list(updated.rows)
        fresh.show(state, 1.0)
        await pilot.pause()
        shown = screen_lines(updated)
        assert shown == screen_lines(fresh)
        assert "for 42s" in shown[1] and "for 41s" not in "\n".join(shown)

        # One more line (the whole pane repainted), a line that wraps, and a change in it.
        for rows in (
            [*updated.rows, "probe 503 http://x"],
            ["unhealthy backend  for 1s", "  " + "x" * 60, "probe 503 http://x"],
            ["unhealthy backend  for 2s", "  " + "z" * 60, "probe 503 http://x"],
        ):
            updated.rows = fresh.rows = rows
            updated.show(state, 2.0)
            fresh.show(state, 2.0)
            await pilot.pause()
            assert screen_lines(updated) == screen_lines(fresh)
        # A long line is wrapped into rows by the pane itself: still a repaint of the rows
        # that changed (the "z" rows, the duration), and every "z" is on screen.
        width = updated.content_region.width
        assert refreshed[-1] == (
            Region(0, 0, width, 1),
            Region(0, 1, width, 1),
            Region(0, 2, width, 1),
        )
        assert "".join(screen_lines(updated)).count("z") == 60

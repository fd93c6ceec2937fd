"""The command palette: one table of commands (hosts, containers, runbooks, themes, actions).

The app builds the table (:meth:`IncidentApp.command_table`); this provider serves it for both
``discover()`` (the list shown before typing) and ``search()``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.widgets import TabbedContent

from incident_console.ui import format as fmt

if TYPE_CHECKING:
    from incident_console.ui.app import IncidentApp


@dataclass(frozen=True, slots=True)
class PaletteCommand:
    """One entry of the palette."""

    name: str
    help: str
    run: Callable[[], object]


class HasCommandTable(Protocol):
    def command_table(self) -> list[PaletteCommand]: ...


class ConsoleCommands(Provider):
    """Serves the app's command table."""

    def _table(self) -> list[PaletteCommand]:
        app: HasCommandTable = self.app  # type: ignore[assignment]
        return app.command_table()

    async def discover(self) -> Hits:
        for command in self._table():
            yield DiscoveryHit(command.name, command.run, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._table():
            score = matcher.match(command.name)
            if score > 0:
                yield Hit(score, matcher.highlight(command.name), command.run, help=command.help)


def _show_tab(app: IncidentApp, index: int) -> None:
    app.query_one(TabbedContent).active = f"host-{index}"


def build_command_table(app: IncidentApp, runbook: str) -> list[PaletteCommand]:
    """The palette's entries for the app as it is now (read-only hosts get no mutating ones)."""
    table: list[PaletteCommand] = []
    tabs = bool(app.query(TabbedContent))
    for index, monitor in enumerate(app.monitors):
        host = fmt.clean(monitor.host.name)
        if tabs:
            table.append(
                PaletteCommand(
                    f"host {host}", "show this host", functools.partial(_show_tab, app, index)
                )
            )
        for view in list(monitor.state.containers.values()):
            table.append(
                PaletteCommand(
                    f"container {fmt.clean(view.info.name)} ({host})",
                    "open its detail",
                    functools.partial(app.open_detail, monitor, view.info.id),
                )
            )
    table.append(
        PaletteCommand(
            f"runbook {runbook}", "walk through it", functools.partial(app.action_runbook, runbook)
        )
    )
    for theme in app.theme_names:
        table.append(
            PaletteCommand(
                f"theme {theme}", "switch theme", functools.partial(app.set_theme, theme)
            )
        )
    for binding in app.BINDINGS:
        if not isinstance(binding, Binding) or binding.action == "command_palette":
            continue
        if app.check_action(binding.action, ()):
            table.append(
                PaletteCommand(
                    f"action {binding.description.lower()}",
                    binding.tooltip,
                    functools.partial(app.run_action, binding.action),
                )
            )
    return table

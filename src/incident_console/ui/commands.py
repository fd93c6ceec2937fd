"""The command palette's provider: it serves the app's command table, nothing more.

The table itself (hosts, containers, runbooks, themes, actions) is the app's
(:meth:`IncidentApp.command_table`): this module knows only the shape of an entry and that
its app has such a table, so the two do not import each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from textual.command import DiscoveryHit, Hit, Hits, Provider


@dataclass(frozen=True, slots=True)
class PaletteCommand:
    """One entry of the palette."""

    name: str
    help: str
    run: Callable[[], object]


class HasCommandTable(Protocol):
    """An app that says what its palette offers right now."""

    def command_table(self) -> list[PaletteCommand]:
        """Every entry, for the app as it is now."""
        ...


class ConsoleCommands(Provider):
    """Serves the app's command table for both ``discover()`` and ``search()``."""

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

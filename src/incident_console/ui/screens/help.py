"""The help screen: every binding of the screen it was opened from, with what it does.

Keys that do the same (ctrl+c and super+c: copy) share a line; the moving keys Textual gives
every scrolling widget (up, pageup, ctrl+pagedown...) have no words of ours and are listed
once, together, rather than each as "Up  Up". A description too long for its column wraps
under itself, not under the keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from incident_console.ui import keys

#: Keys that only move a cursor or scroll: listed together, without words of their own.
MOVING = {
    "up", "down", "left", "right", "home", "end", "pageup", "pagedown",
    "ctrl+pageup", "ctrl+pagedown", "shift+up", "shift+down",
}  # fmt: skip


def key_label(key: str) -> str:
    """How a key is written in the help: '?' rather than 'question_mark'."""
    names = {"question_mark": "?", "slash": "/", "escape": "esc", "space": "space"}
    return ",".join(names.get(k.strip(), k.strip()) for k in key.split(","))


@dataclass(frozen=True, slots=True)
class HelpEntry:
    """One line of the help: the keys, the binding's name, what it does."""

    keys: str
    name: str
    what: str


def help_entries(bindings: Iterable[Binding]) -> list[HelpEntry]:
    """The help's entries for `bindings`: one per action, the moving keys last, together."""
    grouped: dict[tuple[str, str], list[Binding]] = {}
    moving: list[str] = []
    for binding in bindings:
        if binding.key in MOVING and not binding.tooltip:
            if binding.key not in moving:
                moving.append(binding.key)
            continue
        grouped.setdefault((binding.action, binding.description), []).append(binding)
    entries = []
    for (action, description), same in grouped.items():
        label = ",".join(dict.fromkeys(key_label(b.key) for b in same))
        name = description or action
        # Ours (they have ids) say it in the console's words; Textual's ctrl+q speaks of a prompt.
        what = next((b.tooltip for b in sorted(same, key=lambda b: not b.id) if b.tooltip), "")
        if what.strip().lower() == name.strip().lower():
            what = ""  # "Up  Up": the name says it all
        entries.append(HelpEntry(label, name, what))
    if moving:
        entries.append(HelpEntry("moving", "Cursor, scroll", " ".join(map(key_label, moving))))
    return entries


class HelpScreen(ModalScreen[None]):
    """Lists the bindings given to it (the active bindings of the screen below)."""

    DEFAULT_CSS = """
    HelpScreen .help-heading { margin: 1 0; }
    HelpScreen .help-entry { height: auto; }
    HelpScreen .help-keys { width: 18; text-align: right; padding-right: 2; }
    HelpScreen .help-name { width: 22; }
    HelpScreen .help-what { width: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = keys.HELP

    def __init__(self, bindings: Iterable[Binding]) -> None:
        super().__init__()
        self.bindings = list(bindings)

    def compose(self) -> ComposeResult:
        # Three columns of their own: a description too long for its column wraps within it,
        # under itself, never back under the keys.
        with VerticalScroll(id="help-body"):
            yield Static(Content.styled("Keys", "bold $primary"), classes="help-heading")
            for entry in help_entries(self.bindings):
                with Horizontal(classes="help-entry"):
                    yield Static(Content.styled(entry.keys, "bold $accent"), classes="help-keys")
                    yield Static(Content.styled(entry.name, "bold"), classes="help-name")
                    yield Static(Content(entry.what), classes="help-what")
            yield Static(
                Content.styled("esc or ? closes this help.", "$text-muted"), classes="help-heading"
            )

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)

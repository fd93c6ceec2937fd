"""The help screen: every binding of the screen it was opened from, with what it does."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from incident_console.ui import keys


def key_label(key: str) -> str:
    """How a key is written in the help: '?' rather than 'question_mark'."""
    names = {"question_mark": "?", "slash": "/", "escape": "esc", "space": "space"}
    return ",".join(names.get(k.strip(), k.strip()) for k in key.split(","))


class HelpScreen(ModalScreen[None]):
    """Lists the bindings given to it (the active bindings of the screen below)."""

    BINDINGS: ClassVar[list[BindingType]] = keys.HELP

    def __init__(self, bindings: Iterable[Binding]) -> None:
        super().__init__()
        self.bindings = list(bindings)

    def compose(self) -> ComposeResult:
        lines = [Content.styled("Keys", "bold $primary"), Content("")]
        for binding in self.bindings:
            what = binding.tooltip or binding.description or binding.action
            lines.append(
                Content.assemble(
                    (f"{key_label(binding.key):>14}  ", "bold $accent"),
                    (f"{binding.description or binding.action:<20}", "bold"),
                    f" {what}",
                )
            )
        lines += [Content(""), Content.styled("esc or ? closes this help.", "$text-muted")]
        with VerticalScroll(id="help-body"):
            yield Static(Content("\n").join(lines), id="help-text")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)

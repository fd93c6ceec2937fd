"""Confirmation before anything that changes the server, showing exactly what will run."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from incident_console.ui import keys


class ConfirmScreen(ModalScreen[bool]):
    """Asks yes/no about one action; dismisses with True only on an explicit yes."""

    BINDINGS: ClassVar[list[BindingType]] = keys.CONFIRM

    def __init__(self, title: str, action: Content, detail: Content | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.action_text = action
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(Content.styled(self.title_text, "bold $warning"), id="confirm-title")
            yield Static(self.action_text, id="confirm-action")
            if self.detail is not None:
                yield Static(self.detail, id="confirm-detail")
            with Horizontal(id="confirm-buttons"):
                yield Button("Yes (y)", variant="error", id="yes")
                yield Button("No (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

"""Keys that reach the console in one batch keep their order in a text field.

On a loaded server the console's loop stalls and the terminal's keys then arrive together.
Textual's own Input ran its bound keys (home, ctrl+k, enter) after the printable ones in such a
batch: "Home ctrl+k 60s Enter" into the walkthrough's form submitted an empty value.
"""

from __future__ import annotations

from typing import Any

from textual import events
from textual.app import App
from textual.widgets import Input

from incident_console.ui.screens.variables_form import FormField, VariablesForm
from incident_console.ui.widgets.inputs import OrderedInput

BATCH = [("home", None), ("ctrl+k", None), ("6", "6"), ("0", "0"), ("s", "s")]


class FormApp(App[None]):
    """The walkthrough's variables form alone, its result kept."""

    def __init__(self) -> None:
        super().__init__()
        self.result: Any = "not dismissed"

    def on_mount(self) -> None:
        field = FormField("watch", "30m", "how long to watch")
        form = VariablesForm("variables", [field], {"watch"}, lambda name, value: None)
        self.push_screen(form, self._done)

    def _done(self, result: Any) -> None:
        self.result = result


async def _post_together(app: App[Any], keys: list[tuple[str, str | None]]) -> None:
    for key, character in keys:
        app.post_message(events.Key(key, character))


async def test_a_batch_of_keys_sets_the_value_typed_and_enter_applies_it() -> None:
    app = FormApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.3)
        field = app.screen.query_one("#vf-watch", Input)
        assert isinstance(field, OrderedInput)
        await _post_together(app, [*BATCH, ("enter", None)])
        await pilot.pause(0.5)
    assert app.result == {"watch": "60s"}


async def test_textuals_own_input_loses_the_batch_which_is_why_ordered_input_exists() -> None:
    # If this starts passing with '60s', the pinned Textual has fixed #6605: OrderedInput can go.
    class Plain(App[None]):
        def compose(self) -> Any:
            yield Input(value="30m", id="plain")

    app = Plain()
    async with app.run_test(size=(80, 10)) as pilot:
        await pilot.pause(0.3)
        await _post_together(app, BATCH)
        await pilot.pause(0.5)
        assert app.query_one("#plain", Input).value == ""

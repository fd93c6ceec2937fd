"""The walkthrough's forms: set runbook variables, and choose the compose project.

`VariablesForm` lists the variables a step still needs (then the others it uses), each
pre-filled with what was discovered or the first candidate seen on the host, and a free
`name=value` field for any other variable. Enter applies, escape leaves everything as it was.
`ProjectChoice` asks which compose project the runbook is about when the service runs in
several (the selected container's project first).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from incident_console.ui import keys
from incident_console.ui.widgets.inputs import OrderedInput


@dataclass(frozen=True, slots=True)
class FormField:
    """One variable in the form: its value now, why, and the values seen on the host."""

    name: str
    value: str
    why: str
    candidates: tuple[str, ...] = ()
    missing: bool = False
    #: What the field starts with when it has no value (a candidate, or '').
    prefill: str = ""


#: Checks a (name, value) pair; raises ValueError with a one-line message when it is bad.
Validator = Callable[[str, str], None]


class VariablesForm(ModalScreen[dict[str, str] | None]):
    """Set variables; dismisses with {name: value} of what changed, or None."""

    DEFAULT_CSS = """
    VariablesForm { align: center middle; }
    VariablesForm #vf-box {
        width: 96; max-height: 90%; border: thick $primary; background: $surface; padding: 0 1;
    }
    VariablesForm .vf-label { margin-top: 1; }
    VariablesForm .vf-hint { color: $text-muted; }
    VariablesForm #vf-error { color: $error; }
    """

    BINDINGS: ClassVar[list[BindingType]] = keys.VARIABLES_FORM

    def __init__(self, title: str, fields: list[FormField], known: set[str], check: Validator):
        super().__init__()
        self.title_text = title
        self.fields = fields
        self.known = known
        self.check = check

    def compose(self) -> ComposeResult:
        with Vertical(id="vf-box"):
            yield Static(Content.styled(self.title_text, "bold"), id="vf-title")
            with VerticalScroll(id="vf-fields"):
                for f in self.fields:
                    label = Content.styled(f.name, "bold")
                    if f.missing:
                        label = Content.assemble(label, ("  needed, unknown", "$warning"))
                    yield Static(label, classes="vf-label")
                    yield Static(Content(f.why or ""), classes="vf-hint")
                    yield OrderedInput(
                        value=f.value or f.prefill,
                        placeholder=" | ".join(f.candidates) or f"value of {f.name}",
                        id=f"vf-{f.name}",
                    )
                    if f.candidates:
                        seen = ", ".join(f.candidates[:6])
                        yield Static(Content(f"seen on the host: {seen}"), classes="vf-hint")
                yield Static("any other variable", classes="vf-label")
                yield OrderedInput(placeholder="name=value", id="vf-other")
            yield Static(Content("enter: apply   escape: cancel"), classes="vf-hint")
            yield Static(id="vf-error")

    def on_mount(self) -> None:
        inputs = list(self.query(Input))
        if inputs:
            inputs[0].focus()

    def _changes(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for f in self.fields:
            value = self.query_one(f"#vf-{f.name}", Input).value.strip()
            if value != f.value:
                out[f.name] = value
        other = self.query_one("#vf-other", Input).value.strip()
        if other:
            name, sep, value = other.partition("=")
            name = name.strip()
            if not sep or not name:
                raise ValueError(f"{other!r}: expected name=value")
            if name not in self.known:
                raise ValueError(
                    f"{name}: no such variable (known: {', '.join(sorted(self.known))})"
                )
            out[name] = value.strip()
        for name, value in out.items():
            self.check(name, value)
        return out

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_apply()

    def action_apply(self) -> None:
        try:
            changes = self._changes()
        except ValueError as exc:
            self.query_one("#vf-error", Static).update(Content(str(exc)))
            return
        self.dismiss(changes)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ProjectChoice(ModalScreen[str | None]):
    """Which compose project: dismisses with its name, or None (escape)."""

    DEFAULT_CSS = """
    ProjectChoice { align: center middle; }
    ProjectChoice #pc-box { width: 90; height: auto; border: thick $warning; background: $surface; }
    ProjectChoice #pc-list { height: auto; max-height: 12; }
    """

    BINDINGS: ClassVar[list[BindingType]] = keys.PROJECT_CHOICE

    def __init__(self, question: str, options: list[tuple[str, str]]) -> None:
        super().__init__()
        self.question = question
        self.options = options

    def compose(self) -> ComposeResult:
        with Vertical(id="pc-box"):
            yield Static(Content.styled(self.question, "bold"), id="pc-question")
            yield OptionList(
                *(Option(label, id=name) for name, label in self.options), id="pc-list"
            )
            yield Static(Content("enter: choose   escape: later (v sets project)"))

    def on_mount(self) -> None:
        option_list = self.query_one("#pc-list", OptionList)
        option_list.highlighted = 0
        option_list.focus()

    @on(OptionList.OptionSelected, "#pc-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)

"""One step in the walkthrough's list: its state mark, kind and title."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import ListItem, Static

from incident_console.runbook.engine import StepRecord, StepState

STATE_MARK = {
    StepState.PENDING: ("·", "$text-muted"),
    StepState.RUNNING: ("▶", "$accent"),
    StepState.PASSED: ("✔", "$success"),
    StepState.FAILED: ("✘", "$error"),
    StepState.SKIPPED: ("↷", "$text-muted"),
    StepState.ROLLED_BACK: ("↶", "$warning"),
}


class StepItem(ListItem):
    """One step in the list: its state mark, kind and title."""

    def __init__(self, record: StepRecord, title: str, disabled_reason: str) -> None:
        super().__init__(classes="-disabled" if disabled_reason else "")
        self.record = record
        self.title_text = title
        self.label = Static(self._content())

    def _content(self) -> Content:
        mark, style = STATE_MARK[self.record.state]
        return Content.assemble(
            (mark, style), " ", (f"{self.record.step.kind:<10}", "$text-muted"), self.title_text
        )

    def compose(self) -> ComposeResult:
        yield self.label

    def refresh_state(self) -> None:
        self.label.update(self._content())

    def set_title(self, title: str, disabled_reason: str) -> None:
        self.title_text = title
        self.set_class(bool(disabled_reason), "-disabled")
        self.refresh_state()

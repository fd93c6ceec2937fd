"""One step in the walkthrough's list: its state mark and kind, then its title."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
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
    """One step in the list: its state mark and kind in a column, the title in the next (a
    long title wraps under itself, not under the kind)."""

    DEFAULT_CSS = """
    StepItem > Horizontal { height: auto; }
    StepItem .step-kind { width: 12; }
    StepItem .step-title { width: 1fr; }
    """

    def __init__(self, record: StepRecord, title: str, disabled_reason: str) -> None:
        super().__init__(classes="-disabled" if disabled_reason else "")
        self.record = record
        self.title_text = title
        self.kind_label = Static(self._kind(), classes="step-kind")
        self.label = Static(Content(self.title_text), classes="step-title")

    def _kind(self) -> Content:
        mark, style = STATE_MARK[self.record.state]
        return Content.assemble((mark, style), " ", (self.record.step.kind, "$text-muted"))

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield self.kind_label
            yield self.label

    def refresh_state(self) -> None:
        self.kind_label.update(self._kind())
        self.label.update(Content(self.title_text))

    def set_title(self, title: str, disabled_reason: str) -> None:
        self.title_text = title
        self.set_class(bool(disabled_reason), "-disabled")
        self.refresh_state()

"""Every key of the console, in one place: the app's, each pane's and each screen's.

Each binding has an id (the config's keymap remaps keys by id) and a tooltip (the help
screen and the palette show it). A widget takes its list as ``BINDINGS = keys.NAME``.
"""

from __future__ import annotations

from textual.binding import Binding, BindingType

CONSOLE: list[BindingType] = [
    Binding("question_mark", "help", "Help", id="help", tooltip="Every key of this screen"),
    Binding(
        "slash",
        "filter",
        "Filter",
        id="filter",
        tooltip="Filter the containers (or the logs, when focused)",
    ),
    Binding(
        "ctrl+p",
        "command_palette",
        "Palette",
        id="palette",
        tooltip="Hosts, containers, runbooks, themes, actions",
    ),
    Binding("tab", "focus_next", "Next pane", id="next_pane", tooltip="Move to the next pane"),
    Binding(
        "shift+tab",
        "focus_previous",
        "Prev pane",
        id="previous_pane",
        show=False,
        tooltip="Move to the previous pane",
    ),
    Binding(
        "escape",
        "escape_pane",
        "Back",
        id="back",
        show=False,
        tooltip="Close the prompt, clear the filter, or go back",
    ),
    Binding("q", "quit", "Quit", id="quit", tooltip="Leave the console (the server is untouched)"),
    Binding(
        "r",
        "restart",
        "Restart",
        id="restart",
        tooltip="Restart the selected container (asks first, shows the command)",
    ),
    Binding("b", "runbook", "Runbook", id="runbook", tooltip="Walk through the OOM runbook"),
    Binding("t", "cycle_theme", "Theme", id="theme", tooltip="Switch to the next theme"),
    Binding(
        "R",
        "report",
        "Report",
        id="report",
        tooltip="Write this incident's postmortem (Markdown) beside its journal",
    ),
    Binding(
        "S",
        "svg_screenshot",
        "Screenshot",
        id="screenshot",
        show=False,
        tooltip="Save an SVG screenshot named after the host and UTC time",
    ),
]

CONTAINERS_TABLE: list[BindingType] = [
    Binding(
        "enter",
        "open_detail",
        "Detail",
        id="detail",
        tooltip="Open the selected container: memory chart, processes, health, env",
    ),
    Binding("up", "cursor(-1)", "Up", show=False),
    Binding("down", "cursor(1)", "Down", show=False),
    Binding("pageup", "page(-1)", "Page up", show=False),
    Binding("pagedown", "page(1)", "Page down", show=False),
    Binding("home", "cursor_to(0)", "First", show=False),
    Binding("end", "cursor_to(-1)", "Last", show=False),
]

LOG_PANE: list[BindingType] = [
    Binding(
        "f",
        "toggle_follow",
        "Follow all/selected",
        id="log_follow",
        tooltip="Switch between following the selected container and every container",
    ),
    Binding(
        "p",
        "toggle_pause",
        "Pause",
        id="log_pause",
        tooltip="Pause the log (new lines are kept) or resume",
    ),
    Binding(
        "s",
        "search",
        "Search",
        id="log_search",
        tooltip="Search the log; matches are highlighted",
    ),
    Binding("n", "next_match", "Next match", id="log_next", tooltip="Jump to the next match"),
    Binding(
        "N",
        "previous_match",
        "Prev match",
        id="log_previous",
        tooltip="Jump to the previous match",
    ),
    Binding(
        "x",
        "next_signal",
        "Next signal",
        id="log_next_signal",
        tooltip="Jump to the next SIGKILL, worker timeout, traceback or error",
    ),
]

CONTAINER_DETAIL: list[BindingType] = [
    Binding("escape", "app.pop_screen", "Back", id="back", tooltip="Back to the dashboard"),
]

WALKTHROUGH: list[BindingType] = [
    Binding("enter", "run_step", "Run", id="rb_run", tooltip="Run the current step", priority=True),
    Binding("s", "skip_step", "Skip", id="rb_skip", tooltip="Mark the step skipped"),
    Binding("u", "undo_step", "Undo", id="rb_undo", tooltip="Restore the file it changed"),
    Binding(
        "v",
        "set_variables",
        "Variables",
        id="rb_variables",
        tooltip="Set the step's missing variables (or any other)",
    ),
    Binding("n", "move(1)", "Next", id="rb_next", tooltip="Next step"),
    Binding("p", "move(-1)", "Prev", id="rb_prev", tooltip="Previous step"),
    Binding("escape", "close", "Back", id="rb_back", tooltip="Back to the dashboard"),
]

VARIABLES_FORM: list[BindingType] = [
    Binding("escape", "cancel", "Cancel", id="vf_cancel", tooltip="Change nothing"),
    Binding("ctrl+s", "apply", "Apply", id="vf_apply", tooltip="Apply the values"),
]

PROJECT_CHOICE: list[BindingType] = [
    Binding("escape", "cancel", "Not now", id="pc_cancel", tooltip="Choose later with v"),
]

CONFIRM: list[BindingType] = [
    Binding("y", "answer(True)", "Yes", id="confirm_yes", tooltip="Do it"),
    Binding("n,escape", "answer(False)", "No", id="confirm_no", tooltip="Leave things as they are"),
]

HELP: list[BindingType] = [
    Binding(
        "escape,question_mark,q",
        "dismiss",
        "Close help",
        id="help_close",
        tooltip="Back to where you were",
    ),
]

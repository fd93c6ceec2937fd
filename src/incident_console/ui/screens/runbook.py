"""The runbook walkthrough: steps with their states; the current step's why, command or diff,
checks and live output. enter runs (steps that change the server confirm first), s skips, u
undoes the step's file change, n/p move, v sets variables (the step's missing ones first,
pre-filled with what the host shows). Read-only mode runs diagnose and verify steps only.

Variables are discovered from the monitor's state when the screen opens, and what is still
unknown is looked for again every few seconds (the inventory or the traffic may come later)
until a step that changes the server has run. When the service runs in several compose
projects the screen asks which one (the selected container's first); nothing is picked for the
operator, and every remediate step's header names the project it changes.
"""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, ListView, Static

from incident_console.runbook.engine import Engine, StepRecord, StepRefused, StepState
from incident_console.runbook.loader import RunbookError, load_runbook
from incident_console.runbook.runner import Executor, Runner
from incident_console.runbook.schema import Runbook, Step, render
from incident_console.runbook.variables import UNKNOWN, VariableError, check_value, shown
from incident_console.ui import keys
from incident_console.ui.protocol import MonitorLike
from incident_console.ui.screens.confirm import ConfirmScreen
from incident_console.ui.screens.runbook_steps import STATE_MARK, StepItem
from incident_console.ui.screens.variables_form import ProjectChoice, VariablesForm
from incident_console.ui.screens.walk_variables import WalkVariables

OUTPUT_LINES = 60
#: Seconds between looks for what is still unknown.
REDISCOVER_S = 2.0


class RunbookScreen(Screen[None]):
    """Walk through a runbook on one host's monitor."""

    DEFAULT_CSS = """
    RunbookScreen #rb-body { height: 1fr; }
    RunbookScreen #rb-steps { width: 46; border-right: solid $primary-muted; }
    RunbookScreen #rb-detail { padding: 0 1; }
    RunbookScreen #rb-banner { background: $warning-muted; color: $text; padding: 0 1; }
    RunbookScreen StepItem.-disabled { color: $text-disabled; }
    RunbookScreen .rb-label { color: $text-muted; margin-top: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = keys.WALKTHROUGH

    def __init__(
        self,
        monitor: MonitorLike,
        runbook: Runbook | str,
        *,
        executor: Executor | None = None,
        variables: dict[str, str] | None = None,
        selected: str | None = None,
    ) -> None:
        super().__init__()
        self.monitor = monitor
        #: The container selected on the dashboard: its project is offered first.
        self.selected = selected
        self.load_error = ""
        if isinstance(runbook, str):
            try:
                runbook = load_runbook(runbook)
            except RunbookError as exc:
                self.load_error = str(exc)
                runbook = Runbook.model_validate(
                    {
                        "name": "none",
                        "title": "runbook not loaded",
                        "steps": [
                            {
                                "id": "none",
                                "title": str(exc),
                                "kind": "diagnose",
                                "manual": str(exc),
                            }
                        ],
                    }
                )
        self.runbook = runbook
        self.vars = WalkVariables(monitor, runbook, selected, discovering=variables is None)
        self._asked_project = False
        if variables is None:
            variables = self.vars.discover().values
        self.engine = Engine(runbook, variables, read_only=monitor.read_only)
        if executor is None:
            from incident_console.runbook.actions import HostExecutor

            executor = HostExecutor(monitor)  # type: ignore[arg-type]
        self.runner = Runner(self.engine, executor, on_change=self._changed)
        self.executor = executor
        self._preview: dict[int, str] = {}
        self._items: list[StepItem] = []

    # Variables ---------------------------------------------------------------------------

    def _changed_server(self) -> bool:
        return any(r.step.mutates and r.state is not StepState.PENDING for r in self.engine.records)

    def _rediscover(self) -> None:
        """Fill in what is still unknown from the monitor's state (never change a known value
        after a change was made: the steps that follow must see what the change used)."""
        if not self.vars.discovering or self._changed_server():
            return
        self._follow_service()
        fresh = self.vars.fill_unknown(self.engine.variables)
        if fresh:
            self.engine.variables.update(fresh)
            self._preview.clear()
            self._retitle()
        asked = self._asked_project
        if self.vars.ambiguous and not self.engine.variables.get("project") and not asked:
            self._ask_project()
        # Only what changed is redrawn: every `_show` relayouts the screen, and at one every 2 s
        # a loaded server's console lagged behind the keys typed into it.
        if self.is_mounted and (fresh or asked != self._asked_project):
            self._show()

    def _follow_service(self) -> None:
        """Ask the monitor to follow the service's logs (its access lines are the requests the
        growth per request is measured over), keeping what it follows already."""
        ids = self.vars.service_ids(self.engine.variables)
        follower = getattr(self.monitor, "log_follower", None)
        following = set(getattr(follower, "following", frozenset()))
        if ids and not ids <= following:
            self.monitor.follow_logs(following | ids)

    def _apply(self, changes: dict[str, str], how: str) -> None:
        """The operator's values: into the engine, journaled, and shown."""
        if not changes:
            return
        self.vars.apply(self.engine.variables, changes, how, frozen=self._changed_server())
        self.executor.journal(
            {"kind": "runbook_variables", "runbook": self.runbook.name, "set": dict(changes),
             "how": how}
        )  # fmt: skip
        self._preview.clear()
        self._retitle()
        self._show()
        self.notify(", ".join(f"{k} = {v or UNKNOWN}" for k, v in changes.items()))

    def _retitle(self) -> None:
        for i, item in enumerate(self._items):
            item.set_title(self._title(item.record.step), self.engine.refusal(i))

    def _title(self, step: Step) -> str:
        return self.vars.title(step, self.engine.variables)

    def _missing(self, i: int) -> list[str]:
        return self.vars.missing(self.engine.records[i].step, self.engine.variables)

    def _ask_project(self) -> None:
        self._asked_project = True
        service = self.engine.variables.get("service") or "the service"
        options = self.vars.project_options(service)
        question = f"{service} runs in {len(options)} compose projects: which one is this about?"

        def chosen(project: str | None) -> None:
            if project:
                self._apply({"project": project}, "chosen in the walkthrough")

        self.app.push_screen(ProjectChoice(question, options), chosen)

    def action_set_variables(self) -> None:
        step = self.engine.current.step
        fields = self.vars.form_fields(step, self.engine.variables)
        missing = [f.name for f in fields if f.missing]

        def check(name: str, value: str) -> None:
            try:
                check_value(name, value)
            except VariableError as exc:
                raise ValueError(str(exc)) from None

        title = f"variables of {step.id}"
        if missing:
            title += f": {', '.join(missing)} needed"

        def done(changes: dict[str, str] | None) -> None:
            if changes:
                self._apply(changes, "set in the walkthrough")

        self.app.push_screen(
            VariablesForm(title, fields, set(self.runbook.known_variables), check), done
        )

    # Layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        title = f"runbook {self.runbook.name}: {self.runbook.title} on {self.monitor.host.name}"
        yield Static(Content.styled(title, "bold"), id="rb-title")
        if self.monitor.read_only:
            yield Static("read-only: only diagnose and verify steps run", id="rb-banner")
        with Horizontal(id="rb-body"):
            self._items = [
                StepItem(r, self._title(r.step), self.engine.refusal(i))
                for i, r in enumerate(self.engine.records)
            ]
            yield ListView(*self._items, id="rb-steps")
            with VerticalScroll(id="rb-detail"):
                yield Static(id="rb-step-title")
                yield Static(id="rb-why")
                yield Static("command or change", classes="rb-label")
                yield Static(id="rb-action")
                yield Static("checks", classes="rb-label")
                yield Static(id="rb-checks")
                yield Static("output", classes="rb-label")
                yield Static(id="rb-output")
        yield Footer()

    def on_mount(self) -> None:
        if self.load_error:
            self.notify(self.load_error, severity="error")
        self.query_one("#rb-steps", ListView).index = 0
        self._show()
        if self.vars.discovering:
            self._follow_service()
            self.set_interval(REDISCOVER_S, self._rediscover)
        if self.vars.ambiguous and not self.engine.variables.get("project"):
            self._ask_project()
        self._warm_up()

    @work(group="rb-warm", exit_on_error=False)
    async def _warm_up(self) -> None:
        """Ask the server now what a recreate's preview will need: `compose version` takes
        seconds on a slow server (20+ on an emulated one), and the preview waited for it."""
        compose = getattr(self.monitor, "compose_command", None)
        if compose is None or self.monitor.read_only:
            return
        try:
            await compose()
        except Exception:  # noqa: BLE001 - the preview and the step say why, in their place
            return

    # Display -----------------------------------------------------------------------------

    @property
    def cursor(self) -> int:
        return self.engine.cursor

    def _changed(self, record: StepRecord) -> None:
        i = self.engine.records.index(record)
        if i < len(self._items):
            self._items[i].refresh_state()
        if i == self.cursor:
            self._show()

    def _show(self) -> None:
        record = self.engine.current
        step, v = record.step, self.engine.variables
        refusal = self.engine.refusal(self.cursor)
        missing = self._missing(self.cursor)
        head = Content.assemble(
            (f"{step.kind} · {step.action} · ", "$text-muted"),
            (self._title(step), "bold"),
            (f"  [{record.state.value}]", STATE_MARK[record.state][1]),
        )
        if step.mutates:
            # The stack a change lands in, on every step that changes one.
            project = v.get("project") or UNKNOWN
            head = Content.assemble(
                head, (f"\nproject {project} on {v.get('host') or self.monitor.host.name}",
                       "$accent" if v.get("project") else "$warning")
            )  # fmt: skip
        if missing and not record.done:
            why = self.vars.why
            reasons = "".join(f"\n  {n}: {why.get(n) or 'not discovered'}" for n in missing)
            head = Content.assemble(
                head, (f"\nneeds {', '.join(missing)}: press v to set{reasons}", "$warning")
            )
        elif refusal and not record.done:
            head = Content.assemble(head, ("\n" + refusal, "$warning"))
        self.query_one("#rb-step-title", Static).update(head)
        self.query_one("#rb-why", Static).update(
            Content(" ".join(render(step.why, shown(v)).split()))
        )
        preview = self._preview.get(self.cursor)
        if missing and preview is None:
            # A preview without them would only say what is missing, in the actions' words.
            self.query_one("#rb-action", Static).update(
                Content(
                    f"(shown once {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} set)"
                )
            )
        elif preview is None:
            self.query_one("#rb-action", Static).update(Content("…"))
            self._load_preview(self.cursor)
        else:
            self.query_one("#rb-action", Static).update(Content(preview))
        checks = [
            Content.assemble(
                (
                    f"{c.status.value:>7} ",
                    {"passed": "$success", "failed": "$error"}.get(c.status.value, "$text-muted"),
                ),
                f"{c.name}: {c.detail}",
            )
            for c in record.checks
        ] or [Content(", ".join(c.name for c in step.checks) or "(none)")]
        if record.verdict:
            checks.append(Content.styled(f"=> {record.verdict}", STATE_MARK[record.state][1]))
        self.query_one("#rb-checks", Static).update(Content("\n").join(checks))
        tail = "\n".join(record.output.splitlines()[-OUTPUT_LINES:])
        self.query_one("#rb-output", Static).update(Content(tail))

    @work(group="rb-preview", exit_on_error=False)
    async def _load_preview(self, i: int) -> None:
        record = self.engine.records[i]
        try:
            text = await self.executor.preview(record.step, self.engine.variables)
        except Exception as exc:  # noqa: BLE001 - shown, never a crash
            text = f"(cannot preview: {exc})"
        self._preview[i] = text
        if i == self.cursor:
            self.query_one("#rb-action", Static).update(Content(text))

    # Actions -----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Read-only removes the mutating keys instead of failing on them.
        return not (action == "undo_step" and self.monitor.read_only)

    def action_move(self, delta: int) -> None:
        self.engine.move(delta)
        self.query_one("#rb-steps", ListView).index = self.cursor
        self._show()

    @on(ListView.Highlighted, "#rb-steps")
    def _highlighted(self, event: ListView.Highlighted) -> None:
        index = self.query_one("#rb-steps", ListView).index
        if index is not None and index != self.cursor:
            self.engine.cursor = index
            self._show()

    @on(ListView.Selected, "#rb-steps")
    def _selected(self, event: ListView.Selected) -> None:
        self.action_run_step()

    def action_run_step(self) -> None:
        i = self.cursor
        missing = self._missing(i)
        reason = self.engine.refusal(i)
        if missing and not (self.monitor.read_only and self.engine.records[i].step.mutates):
            self.notify(f"needs {', '.join(missing)}: press v to set", severity="warning")
            return
        if reason:
            self.notify(reason, severity="warning")
            return
        self._run(i)

    async def _confirm(self, record: StepRecord, preview: str) -> bool:
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def done(yes: bool | None) -> None:
            if not answer.done():
                answer.set_result(bool(yes))

        title = f"{record.step.kind}: {self._title(record.step)}?"
        if record.step.mutates:
            v = self.engine.variables
            title += f" (project {v.get('project') or UNKNOWN} on {v.get('host') or ''})"
        self.app.push_screen(ConfirmScreen(title, Content(preview)), done)
        return await answer

    @work(group="rb-run", exit_on_error=False)
    async def _run(self, i: int) -> None:
        try:
            state = await self.runner.run(i, self._confirm)
        except StepRefused as exc:
            self.notify(str(exc), severity="warning")
            return
        if state is None:
            self.notify("not run: declined")
        elif state is StepState.FAILED:
            self.notify(
                f"{self.engine.records[i].step.id}: {self.engine.records[i].verdict}",
                severity="error",
            )
        self._preview.pop(i, None)

    def action_skip_step(self) -> None:
        try:
            self.engine.skip(self.cursor, time.time(), "skipped by the operator")
        except StepRefused as exc:
            self.notify(str(exc), severity="warning")
            return
        self.executor.journal(
            self.engine.current.to_record(self.runbook.name, self.engine.variables)
        )
        self._changed(self.engine.current)
        self.action_move(1)

    def action_undo_step(self) -> None:
        if self.monitor.read_only:
            self.notify("read-only: undo refused", severity="warning")
            return
        record = self.engine.current
        if record.change is None:
            self.notify("this step changed no file: nothing to undo", severity="warning")
            return
        change = record.change
        detail = Content(f"restore {change.path}\nfrom {change.backup}")

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._undo(self.cursor)

        self.app.push_screen(ConfirmScreen("Undo this step's change?", detail), confirmed)

    @work(group="rb-run", exit_on_error=False)
    async def _undo(self, i: int) -> None:
        try:
            await self.runner.undo(i)
        except Exception as exc:  # noqa: BLE001 - shown, never a crash
            self.notify(f"undo failed: {exc}", severity="error")
            return
        self._preview.pop(i, None)
        self.notify(self.engine.records[i].verdict)

    def action_close(self) -> None:
        self.app.pop_screen()

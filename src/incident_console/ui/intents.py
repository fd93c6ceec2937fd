"""The console's intents: what the keys ask of the world (restart, report, screenshot, quit).

A mixin of :class:`~incident_console.ui.app.IncidentApp`, kept apart so the app stays a layout
and a refresh loop. Every change goes through the monitor's door (`monitor.change`, which
refuses it in read-only mode, asks the confirmation dialog through its hook and journals intent
and outcome); none talks SSH or docker itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App
from textual.content import Content

from incident_console.monitor.changes import Change, ChangeDeclined, ChangeRefused
from incident_console.transport.base import command_line
from incident_console.ui import format as fmt
from incident_console.ui.screens.confirm import ConfirmScreen
from incident_console.ui.toasts import break_path

if TYPE_CHECKING:
    from incident_console.ui.protocol import MonitorLike
    from incident_console.ui.widgets.dashboard import HostDashboard

#: How long quitting waits for a monitor to stop (its sources, then its host closed under them).
STOP_TIMEOUT_S = 10.0


class IntentActions(App[int]):
    """Restart, report, screenshot and quit: the base of the console app."""

    monitors: list[MonitorLike]
    clock: Callable[[], float]
    _unsubscribe: list[Callable[[], None]]
    _journal_error_shown: str | None = None

    @property
    def active_dashboard(self) -> HostDashboard:
        raise NotImplementedError

    def journal(self) -> Any:
        """The incident journal this console writes (shared by its monitors), if any."""
        return next(
            (j for m in self.monitors if (j := getattr(m, "journal", None)) is not None), None
        )

    def check_journal(self) -> None:
        """Say once when the journal cannot be written (a full disk), and when it recovers."""
        journal = self.journal()
        error = getattr(journal, "error", None)
        if error != self._journal_error_shown:
            self._journal_error_shown = error
            if error:
                self.notify(fmt.clean(error), title="journal", severity="error", timeout=30)
            elif journal is not None:
                self.notify(break_path(f"writable again: {journal.path}"), title="journal")

    def action_restart(self) -> None:
        dashboard = self.active_dashboard
        view = dashboard.monitor.state.containers.get(dashboard.selected_id or "")
        # The binding is gone in read-only mode; the monitor's door refuses it regardless.
        if view is None or dashboard.read_only:
            return
        self._restart(dashboard.monitor, view.info.id, view.info.name)

    @work(group="intents", exit_on_error=False)
    async def _restart(self, monitor: MonitorLike, container_id: str, container: str) -> None:
        name = fmt.clean(container)
        confirmed_at: list[float] = []  # when the user said yes: the restart's own time from there

        async def ask(_change: Change) -> bool:
            # The door asks (after its read-only check): the dialog shows what will be done.
            action = Content.assemble(
                "docker engine API: ",
                ("POST /containers/", "bold"),
                (container_id[:12], "bold"),
                ("/restart", "bold"),
                "\nthe same as: ",
                (command_line(["docker", "restart", container]), "bold"),
            )
            detail = Content(f"on {monitor.host.name}; journaled with your user name")
            answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

            def answered(yes: bool | None) -> None:
                if not answer.done():
                    answer.set_result(bool(yes))

            self.push_screen(ConfirmScreen(f"Restart {name}?", action, detail), answered)
            yes = await answer
            confirmed_at.append(time.monotonic())
            if yes:
                # A restart takes seconds (the stop timeout): say at once that it is under way.
                self.notify(f"restarting {name} on {monitor.host.name}...", title="restart")
            return yes

        change = Change.restart(container_id, container=container, why="console: restart key")
        try:
            await monitor.change(change, confirm=ask)
        except ChangeDeclined:
            self.notify(f"{name} left as it is", title="restart", timeout=3)
            return
        except ChangeRefused as error:
            self.notify(fmt.clean(str(error)), title="restart refused", severity="warning")
        except Exception as error:  # noqa: BLE001 - shown, never a crash
            self.notify(
                f"restart of {name} failed: {fmt.clean(str(error))}",
                title="restart failed",
                severity="error",
                timeout=30,
            )
        else:
            took = time.monotonic() - (confirmed_at[0] if confirmed_at else time.monotonic())
            self.notify(f"{name} restarted ({took:.1f} s)", title="restart done")

    async def action_quit(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self.notify("closing the connections...", timeout=STOP_TIMEOUT_S)
        await asyncio.gather(*(self._stop(m) for m in self.monitors))
        self.exit(0)

    async def _stop(self, monitor: MonitorLike) -> None:
        # A source that ignores cancellation must not keep the console open: the monitor's
        # stop has a deadline (and closes the host under such a source). Quitting never fails.
        with contextlib.suppress(Exception):
            await monitor.stop(deadline_s=STOP_TIMEOUT_S)

    def action_report(self) -> None:
        journal = self.journal()
        if journal is None:
            self.notify("no journal in this session: nothing to report", severity="warning")
        else:
            self._write_report(Path(journal.path))

    @work(thread=True, group="report", exclusive=True, exit_on_error=False)
    def _write_report(self, journal_path: Path) -> None:
        from incident_console.report import write_report

        try:
            written = write_report(journal_path)
        except (OSError, ValueError) as error:
            self.call_from_thread(
                self.notify, f"report failed: {fmt.clean(str(error))}", severity="error"
            )
            return
        self.call_from_thread(
            self.notify, break_path(str(written)), title="postmortem written", timeout=15
        )

    def action_svg_screenshot(self) -> None:
        host = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.active_dashboard.monitor.host.name)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.clock()))
        journal = self.journal()
        folder = Path(journal.path).parent if journal is not None else Path.cwd()
        path = self.save_screenshot(filename=f"{host}-{stamp}.svg", path=str(folder))
        self.notify(break_path(path), title="screenshot saved")

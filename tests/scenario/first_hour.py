"""A new user's first hour at the console, one method per step (see test_scenario_console).

Each method does what a person does at that point and raises StepFailed with the screen when
what they should see is not there. The walkthrough's step lives in `walkthrough`.
"""

from __future__ import annotations

import re
import shlex
import time
from pathlib import Path

from fixtures_sshd import SshdServer, descendants
from incident_console.lab.oom import oom_kills
from scenario import screens, world
from scenario.postmortem import Expected, contradictions
from scenario.runner import Scenario, StepFailed
from scenario.walkthrough import CONSOLE, LOAD, Walkthrough

#: The kernel's kill must be on screen this soon after dmesg has it.
KILL_ON_SCREEN_S = 10.0
#: `lab load` at its default rate kills a worker in about a minute.
KILL_WITHIN_S = 240.0


class FirstHour(Walkthrough):
    """The user's session: one method per step, sharing what earlier steps saw."""

    def __init__(
        self, sc: Scenario, engine: world.BusyEngine, sshd: SshdServer, home: Path
    ) -> None:
        super().__init__(sc, engine)
        self.sshd = sshd
        self.home = home
        self.neighbour_backend = f"{engine.neighbour.project}_backend_1"
        self.kill_pid = 0
        #: Processes under the sshd before the console (other tests' sessions).
        self.before_console: set[int] = set()
        self.report_path: Path | None = None

    # 1 ------------------------------------------------------------------------------------------

    def open(self) -> None:
        """Type the command; the header says connected; the lab's containers are listed."""
        command = [
            "incident-console",
            self.sshd.target,
            "-i",
            str(self.sshd.client_key),
            "--known-hosts",
            str(self.sshd.known_hosts),
        ]
        assert self.sshd.proc is not None
        self.before_console = set(descendants(self.sshd.proc.pid))
        self.sc.note("typed: " + shlex.join(command))
        self.tmux.type(CONSOLE, shlex.join(command) + '; echo "console exit status $?"')
        self.keys("Enter")
        target = re.escape(self.sshd.target)
        self.sc.wait_for(
            lambda s: re.search(rf"{target}\s+connected", screens.header_line(s)),
            30,
            what="the header says connected",
        )
        self.sc.wait_for(lambda s: screens.table_names(s), 10, what="rows in the containers table")
        self.sc.capture("first-frame")
        # On a busy engine the lab's rows may be below the fold: filter, as a person would.
        self.keys("/")
        self.sc.wait_for("filter containers", 5, what="the filter prompt")
        self.tmux.type(CONSOLE, self.project)
        names = [f"{self.project}_{s}_1" for s in ("backend", "frontend", "db", "redis")]
        self.sc.wait_for(
            lambda s: (
                all(screens.table_row(s, n) for n in names)
                and not screens.table_row(s, self.neighbour_backend)
            ),
            15,
            what=f"only the lab's containers {names} in the table",
        )
        self.keys("Enter")

    # 2 ------------------------------------------------------------------------------------------

    def logs(self) -> None:
        """The Logs pane shows the backend's lines, those from before the console too."""
        before = self.engine.backend_lines_before

        def old_lines(screen: str) -> list[str]:
            return screens.lines_logged_before(screens.log_texts(screen, self.backend), before)

        screen, shown = self.sc.wait_for(
            lambda s: screens.log_texts(s, self.backend),
            20,
            what=f"lines of {self.backend} in the Logs pane (following all)",
        )
        self.sc.note(f"{len(shown)} backend lines shown while following all")  # type: ignore[arg-type]
        try:
            self.sc.wait_for(old_lines, 5)
            return
        except StepFailed:
            pass
        # Every container logs into "following all": follow the backend alone, as a person
        # would to read it (cursor on its row, then `f` in the Logs pane), and back after.
        self.open_detail_of(self.backend)
        self.back_to_dashboard()
        tabs = self.focus_logs()
        try:
            self.keys("f")
            self.sc.note("f in the Logs pane: following the selected container")
            self.sc.wait_for(old_lines, 15, what=f"a line {self.backend} logged before the console")
        finally:
            self.keys("f")  # following all again, as the user found it
            self.keys(*["BTab"] * tabs)  # back to the table, where the next steps' keys go

    def focus_logs(self) -> int:
        """Tab from the table until the Logs pane has the focus; returns the tabs pressed.

        Focus is not drawn as text, but `/` says what it filters: the prompt reads "filter
        logs" when the Logs pane has it (its filter is empty), else it holds the containers'
        filter (step 1 typed the project). Closing a containers prompt puts the focus back on
        the table, so each try starts there. Each try waits for the prompt to open and to close
        before the next key: on a loaded machine the console was seen 2-3 s behind its keys, and
        a logs prompt that opened after its wait had been given up on left the focus in the
        Logs pane, so the next tries counted their tabs from there (CI: 7 tabs, and the table
        never had the focus back).
        """
        screen = ""
        for tabs in range(1, 8):
            self.keys(*["Tab"] * tabs, "/")
            screen, said = self.sc.wait_for(
                screens.dashboard_prompt, 20, what=f"the filter prompt after {tabs} tab(s)"
            )
            self.keys("Escape")  # the prompt closed: the focus is where it opened from
            self.sc.wait_for(
                lambda s: screens.dashboard_prompt(s) is None, 20, what="the filter prompt closed"
            )
            if said == "filter logs":
                self.sc.note(f"the Logs pane has the focus after {tabs} tab(s)")
                return tabs
            self.sc.note(f"after {tabs} tab(s) '/' filters the containers ({said!r})")
        raise StepFailed("tab never reached the Logs pane ('/' never said 'filter logs')", screen)

    # 3 ------------------------------------------------------------------------------------------

    def load_until_kill(self) -> None:
        """`lab load` in another terminal; the kill of THE loaded backend shows within seconds."""
        known = {k.pid for k in self.engine.loaded_kills()}
        self.tmux.type(
            LOAD,
            shlex.join(
                ["incident-console", "lab", "load", *self.engine.lab_args(self.engine.loaded)]
                + ["--duration", "900"]
            ),
        )
        self.tmux.keys(LOAD, "Enter")
        deadline = time.monotonic() + KILL_WITHIN_S
        new: list[int] = []
        while time.monotonic() < deadline and not new:
            time.sleep(1)
            new = [k.pid for k in self.engine.loaded_kills() if k.pid and k.pid not in known]
        self.sc.capture("load-window", window=LOAD)
        if not new:
            raise StepFailed(f"`lab load` made no kernel OOM kill within {KILL_WITHIN_S:g} s")
        self.kill_pid = new[0]
        self.sc.note(f"kernel: OOM kill of pid {self.kill_pid} in {self.backend}")
        _, names = self.sc.wait_for(
            lambda s: screens.oom_feed_names(s, self.kill_pid),
            KILL_ON_SCREEN_S,
            what=f"the OOM kill of pid {self.kill_pid} on screen",
        )
        if self.backend not in names:  # type: ignore[operator]
            raise StepFailed(
                f"kill of pid {self.kill_pid} attributed to {names}, not {self.backend}"
            )
        screen, row = self.sc.wait_for(
            lambda s: screens.table_row(s, self.backend), 5, what="the backend's row"
        )
        if "OOM" not in str(row):
            raise StepFailed(f"the backend's row has no OOM mark: {row}", screen)
        for kill in self.engine.neighbour_kills:
            wrong = self.backend in screens.oom_feed_names(screen, kill.pid)
            if wrong:
                raise StepFailed(f"the neighbour's kill (pid {kill.pid}) is shown as ours", screen)

    # 4 ------------------------------------------------------------------------------------------

    def open_detail_of(self, container: str) -> str:
        """Put the table's cursor on `container` and open its detail; returns the screen.

        The cursor's row is not visible as text: enter tells whose detail opens, and a person
        who sees the wrong one goes back and moves from that row to the one they want.
        """
        for tries in range(1, 6):
            self.keys("Enter")
            screen, _ = self.sc.wait_for("Limits and compose", 10, what="the detail screen")
            title = next((ln for ln in screen.splitlines() if "  service " in ln), "")
            opened = title.split()[0] if title.split() else ""
            if opened == container:
                self.sc.note(f"detail of {container} opened after {tries} enter(s)")
                return screen
            table = self.back_to_dashboard()
            rows = screens.table_names(table)
            if container not in rows or opened not in rows:
                raise StepFailed(f"{container} or {opened!r} not in the table: {rows}", table)
            delta = rows.index(container) - rows.index(opened)
            self.sc.note(f"detail of {opened}, not {container}: {delta:+d} row(s)")
            self.keys(*(["Down"] * delta if delta > 0 else ["Up"] * -delta))
        raise StepFailed(f"could not open the detail of {container}", screen)

    def detail(self) -> None:
        """enter on the backend's row: its memory chart and limit."""
        self.open_detail_of(self.backend)
        screen, _ = self.sc.wait_for("memory (MiB), minutes before now", 10)
        if not re.search(r"memory limit\s+256M", screen):
            raise StepFailed("the detail does not show the 256M limit", screen)
        if not re.search(r"OOM kills [1-9]", screen):
            raise StepFailed("the detail's title counts no OOM kill", screen)

    def detail_logs(self) -> None:
        """The detail's Recent logs hold the backend's lines (then esc to the dashboard)."""
        try:
            self.sc.wait_for(
                lambda s: (
                    "Recent logs" in s
                    and re.search(r"\d\d:\d\d:\d\d .*(GET /api/v1|Booting worker|Worker)", s)
                    and "(no log lines yet)" not in s
                ),
                10,
                what="backend lines under Recent logs",
            )
        finally:
            self.back_to_dashboard()

    def fix_holds(self) -> None:
        """The backend was recreated, the kernel killed nothing in it, the load still runs."""
        load = self.tmux.screen(LOAD)
        self.sc.capture("load-window", window=LOAD, text=load)
        if "done:" in load or "Traceback" in load:
            raise StepFailed("`lab load` had stopped: the fix was not tested under load", load)
        first = self.engine.loaded_backend_ids[0]
        now = self.engine.loaded.container_id("backend")
        if now is None or now == first:
            raise StepFailed(f"{self.backend} was not recreated by the walkthrough")
        new = [k.pid for k in oom_kills(now)]
        if new:
            raise StepFailed(f"the kernel OOM-killed {new} in the recreated {self.backend}")
        self.sc.note(f"{self.backend} recreated ({now[:12]}), no kernel OOM kill in it")

    # 6 ------------------------------------------------------------------------------------------

    def postmortem(self) -> None:
        """R writes the postmortem; its summary agrees with its tables and the kernel."""
        self.report_path = self.write_postmortem(self.home)
        text = self.report_path.read_text()
        # The loaded lab had no kill before the console: every kill in it is this session's.
        pids = {k.pid for k in self.engine.loaded_kills() if k.pid}
        found = contradictions(
            text,
            Expected(
                project=self.project,
                container=self.backend,
                other_projects=[self.engine.neighbour.project],
                kernel_pids=pids,
            ),
        )
        for problem in found:
            self.sc.note(f"postmortem: {problem}")
        if found:
            raise StepFailed(f"the postmortem contradicts itself: {'; '.join(found)}")

    # 7 ------------------------------------------------------------------------------------------

    def quit(self) -> None:
        """q: the console exits 0 and nothing of it is left on the server."""
        self.keys("q")
        screen, _ = self.sc.wait_for(
            re.compile(r"console exit status (\d+)"), 30, what="the shell after the console"
        )
        status = re.search(r"console exit status (\d+)", screen)
        assert status is not None
        assert self.sshd.proc is not None
        # The sshd is the test session's: count only what came since the console started.
        deadline = time.monotonic() + 10
        left = self.server_processes()
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = self.server_processes()
        if left:
            names = [_cmdline(pid) for pid in left]
            raise StepFailed(f"processes left on the server under sshd: {names}", screen)
        if status[1] != "0":
            raise StepFailed(f"the console exited {status[1]}", screen)

    def server_processes(self) -> list[int]:
        """Processes under the sshd that were not there before the console started."""
        assert self.sshd.proc is not None
        return [p for p in descendants(self.sshd.proc.pid) if p not in self.before_console]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
    except OSError:
        return str(pid)

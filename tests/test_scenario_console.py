"""A new user's first hour, as a test: the real console in tmux over a real sshd, on a busy engine.

The world is built first, as a real server has it: the lab up (containers that already run and
already logged), a neighbour compose project with its own `backend` on the same engine, OOM-killed
before the console was started. Then the console is typed in a shell as a person would, with no
`--set` and no `--probe`, and the session goes step by step: open, the backend's logs, `lab load`
and the kill on screen, the detail, the walkthrough run to its end (the fix must hold under the
load still running), the postmortem (its summary must agree with its tables), quit (nothing left
on the server). Each step's screen is kept under ci-artifacts/scenario/ with a step log; a
failing step is recorded and the steps that do not need it still run, so one run says which
steps pass.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shlex
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import IN_CI
from fixtures_lab import require_docker, require_kernel_log
from fixtures_sshd import SshdServer, descendants
from incident_console.lab.oom import oom_kills
from scenario import screens, world
from scenario.postmortem import Expected, contradictions
from scenario.runner import Scenario, StepFailed, Tmux, artifacts_dir, fresh_folder

pytestmark = [
    pytest.mark.sshd,
    pytest.mark.docker,
    pytest.mark.lab,
    pytest.mark.slow,
    pytest.mark.timeout(1200),
]

CONSOLE, LOAD = "console", "load"
#: The containers pane's title: on screen when the dashboard is.
DASHBOARD = "╭─ Containers"
#: The kernel's kill must be on screen this soon after dmesg has it.
KILL_ON_SCREEN_S = 10.0
#: `lab load` at its default rate kills a worker in about a minute.
KILL_WITHIN_S = 240.0
#: The watch window a user would pick for a rehearsal, set in the walkthrough's form.
SHORT_WATCH = "60s"
LONGEST_WATCH_S = 180.0
#: How long a user waits for the walkthrough to find a value it says it lacks.
REFUSAL_WAIT_S = 30.0


def require_tmux() -> None:
    if shutil.which("tmux") is None:
        if IN_CI:
            pytest.fail("tmux is required in CI")
        pytest.skip("tmux is not installed")


@pytest.fixture
def busy_engine(tmp_path: Path) -> Iterator[world.BusyEngine]:
    require_docker()
    require_kernel_log()
    fresh_folder(ARTIFACTS)
    engine = world.build(tmp_path / "labs", ARTIFACTS / "world.log")
    try:
        yield engine
    finally:
        engine.down()


ARTIFACTS = artifacts_dir("scenario")


class FirstHour:
    """The user's session: one method per step, sharing what earlier steps saw."""

    def __init__(self, sc: Scenario, engine: world.BusyEngine, sshd: SshdServer, home: Path):
        self.sc = sc
        self.tmux = sc.tmux
        self.engine = engine
        self.sshd = sshd
        self.home = home
        lab = engine.loaded
        self.project = lab.project
        self.backend = f"{lab.project}_backend_1"
        self.neighbour_backend = f"{engine.neighbour.project}_backend_1"
        self.kill_pid = 0
        self.steps: list[tuple[str, str, str]] = []
        self.report_path: Path | None = None

    def keys(self, *keys: str) -> None:
        """Press keys in the console, one by one, as fast as a person at most."""
        for key in keys:
            self.tmux.keys(CONSOLE, key)
            # An Escape followed at once by a key reads as alt+key: a person's keys are apart.
            time.sleep(0.3 if key == "Escape" else 0.05)

    def back_to_dashboard(self) -> str:
        """esc until the dashboard shows (a help, a detail, the walkthrough on top)."""
        for _ in range(4):
            screen = self.sc.screen()
            on_top = ("runbook oom-after-deploy", "esc or ? closes this help", "Limits and compose")
            if DASHBOARD in screen and not any(t in screen for t in (*on_top, "Yes (y)")):
                return screen
            self.keys("Escape")
        screen, _ = self.sc.wait_for(DASHBOARD, 5, what="the dashboard")
        return screen

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
        self.sc.note("typed: " + shlex.join(command))
        self.tmux.type(CONSOLE, shlex.join(command) + '; echo "console exit status $?"')
        self.keys("Enter")
        target = re.escape(self.sshd.target)
        self.sc.wait_for(
            lambda s: re.search(rf"{target}\s+connected", screens.header_line(s)),
            30,
            what="the header says connected",
        )
        self.sc.wait_for(DASHBOARD, 10)
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
        tabs = 0
        try:
            while not self.follow_toggled():
                tabs += 1
                if tabs > 6:
                    raise StepFailed("no pane took `f` (follow the selected container)")
                self.keys("Tab")
            self.sc.wait_for(old_lines, 15, what=f"a line {self.backend} logged before the console")
        finally:
            if tabs <= 6:
                self.keys("f")  # following all again, as the user found it
            self.keys(*["BTab"] * tabs)  # back to the table, where the next steps' keys go

    def follow_toggled(self) -> bool:
        """Press `f`: True if the Logs pane now follows the selected container.

        Its border says "following all|selected"; an OOM notification may cover it for a while.
        """
        self.keys("f")
        _, state = self.sc.wait_for(
            lambda s: (m := re.search(r"following (all|selected)", s)) and m[1],
            20,
            what="the Logs pane's 'following ...' (under notifications?)",
        )
        return state == "selected"

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
        who sees the wrong one goes back and down a row.
        """
        tries = 0
        while True:
            tries += 1
            self.keys("Enter")
            screen, _ = self.sc.wait_for("Limits and compose", 10, what="the detail screen")
            title = next((ln for ln in screen.splitlines() if "  service " in ln), "")
            if title.strip().startswith(container):
                self.sc.note(f"detail of {container} opened after {tries} enter(s)")
                return screen
            if tries == 5:
                raise StepFailed(f"could not open the detail of {container}", screen)
            self.sc.note(f"detail of the wrong container ({title.strip()[:40]}): back, down")
            self.back_to_dashboard()
            self.keys("Down")

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

    # 5 ------------------------------------------------------------------------------------------

    def open_walkthrough(self) -> None:
        """b opens the walkthrough (on the backend's row), about the loaded project."""
        self.keys("b")
        screen, _ = self.sc.wait_for("runbook oom-after-deploy", 10)
        # Where the service runs in several projects the walkthrough may ask which one.
        time.sleep(1)
        self.answer_project_question()
        screen = self.sc.screen()
        self.steps = screens.step_list(screen)
        self.sc.note(f"walkthrough with {len(self.steps)} steps")
        if len(self.steps) < 5:
            raise StepFailed(f"the walkthrough lists {len(self.steps)} steps", screen)

    def answer_project_question(self) -> None:
        """If the screen asks which compose project, choose the loaded one (arrows, enter)."""
        screen = self.sc.screen()
        options = screens.project_question(screen)
        if options is None:
            return
        self.sc.capture("project-question", text=screen)
        mine = [i for i, line in enumerate(options) if self.project in line]
        if not mine:
            self.keys("Escape")
            raise StepFailed(f"asked which project, {self.project} not offered: {options}", screen)
        self.sc.note(f"asked which project: option {mine[0] + 1} of {len(options)} is ours")
        self.keys(*["Down"] * mine[0], "Enter")
        self.sc.wait_for(lambda s: screens.project_question(s) is None, 5, what="question closed")

    def form_key(self) -> str | None:
        """The key the walkthrough's help gives for setting variables, if any."""
        self.keys("?")
        screen, _ = self.sc.wait_for("esc or ? closes this help", 5)
        self.sc.capture("walkthrough-help", text=screen)
        self.keys("Escape")
        self.sc.wait_for(lambda s: "esc or ? closes this help" not in s, 5, what="help closed")
        for key, what in screens.help_keys(screen).items():
            if re.search(r"(?i)variable", what):
                return _tmux_key(key)
        return None

    def aims_at_our_project(self, text: str) -> str:
        """Why `text` (a preview or a confirmation) would change another project, or ''."""
        folder = str(self.engine.loaded.directory)
        named = re.findall(r"(/[\w./-]*docker-compose[\w.-]*\.ya?ml)|-p (\S+)", text)
        foreign = sorted(
            {path or project for path, project in named}
            - {f"{folder}/docker-compose.yml", self.project}
        )
        if foreign:
            return f"it would change {', '.join(foreign)}, not {self.project} ({folder})"
        # A long path may wrap in a dialog: look for ours in the text without its layout.
        flat = re.sub(r"[\s│▌╭╮╰╯─]+", "", text)
        if folder.replace(" ", "") not in flat and self.project not in flat:
            return f"it names neither {self.project} nor {folder}"
        return ""

    def run_walkthrough_step(self, index: int) -> None:
        """Run step `index` with the keys the footer shows; its verdict must be 'passed'."""
        self.answer_project_question()
        # The list wraps long titles: its first line starts the header's title.
        start = self.steps[index][2]
        screen, head = self.sc.wait_for(
            lambda s: (h := screens.step_header(s)) and h.title.startswith(start) and h,
            5,
            what=f"step {index + 1} ({start}...) as the current step",
        )
        assert isinstance(head, screens.StepHeader)
        self.sc.note(f"step header: {head}")
        if head.refusal:
            # The walkthrough looks again for what it lacks ("wait for traffic"): so does the
            # user, for a while, with the load running. Then they skip it.
            self.sc.note(f"waiting: {head.refusal}")
            try:
                screen, head = self.sc.wait_for(
                    lambda s: (h := screens.step_header(s)) and not h.refusal and h,
                    REFUSAL_WAIT_S,
                    what=f"'{head.title}' no longer refused ({head.refusal})",
                )
            except StepFailed as exc:
                self.keys("s")
                raise StepFailed(f"{head.title}: refused: {head.refusal}", exc.screen) from None
            assert isinstance(head, screens.StepHeader)
        watch = re.match(r"Watch for (\S+)", head.title)
        if watch and _seconds(watch[1]) > LONGEST_WATCH_S:
            key = self.form_key()
            if key is None:
                self.keys("s")
                raise StepFailed(
                    f"'{head.title}': no key in the walkthrough's help sets a variable, so the "
                    f"{watch[1]} window cannot be shortened to {SHORT_WATCH}",
                    screen,
                )
            self.set_in_form(key, "watch", SHORT_WATCH)
            screen, _ = self.sc.wait_for(f"Watch for {SHORT_WATCH}", 10)
            head = screens.step_header(screen) or head
        if head.kind == "remediate" and head.project and head.project != self.project:
            self.keys("s")
            raise StepFailed(f"{head.title}: not run: it is about project {head.project}", screen)
        if head.kind == "remediate":
            preview_screen, preview = self.sc.wait_for(
                lambda s: (
                    (p := screens.block(s, "command or change", ("checks",))) and p != "…" and p
                ),
                20,
                what="the step's preview",
            )
            wrong = self.aims_at_our_project(str(preview))
            if wrong:
                self.keys("s")
                raise StepFailed(f"{head.title}: not confirmed: {wrong}", preview_screen)
        self.keys("Enter")
        if head.kind == "remediate":
            screen, _ = self.sc.wait_for("Yes (y)", 10, what="the confirmation")
            self.sc.capture(f"confirm-{index}", text=screen)
            wrong = self.aims_at_our_project(screen)
            if wrong:
                self.keys("n")
                self.keys("s")
                raise StepFailed(f"{head.title}: declined: {wrong}", screen)
            self.keys("y")
        timeout = {"diagnose": 60.0, "remediate": 150.0}.get(head.kind, 120.0)
        if watch:
            timeout = _seconds(SHORT_WATCH) + 90
        screen, state = self.sc.wait_for(
            lambda s: (
                (h := screens.step_header(s))
                and h.title == head.title
                and h.state in ("passed", "failed", "skipped")
                and h.state
            ),
            timeout,
            what=f"the verdict of '{head.title}'",
        )
        said = screens.verdict(screen)
        self.sc.note(f"'{head.title}': {state}: {said}")
        self.keys("n")
        if state != "passed":
            raise StepFailed(f"'{head.title}': {state}: {said}", screen)

    def set_in_form(self, key: str, name: str, value: str) -> None:
        """Open the walkthrough's variables form with `key` and set `name` to `value`.

        The first field has the focus; tab goes down the fields. The field labelled `name`
        is cleared and typed into, or else the free "name=value" field takes it. Enter applies.
        """
        self.keys(key)
        screen, _ = self.sc.wait_for(
            lambda s: screens.form_fields(s), 10, what="the variables form's fields"
        )
        self.sc.capture("variables-form", text=screen)
        fields = screens.form_fields(screen)
        labels = [label for label, _ in fields]
        self.sc.note(f"variables form: {fields}")
        if name in labels:
            self.keys(*["Tab"] * labels.index(name), "Home", "C-k")
            self.tmux.type(CONSOLE, value)
        elif any("=" in v for _, v in fields):
            self.keys(*["Tab"] * next(i for i, (_, v) in enumerate(fields) if "=" in v))
            self.tmux.type(CONSOLE, f"{name}={value}")
        else:
            self.keys("Escape")
            raise StepFailed(f"the variables form has no field for {name}: {labels}", screen)
        self.keys("Enter")
        try:
            self.sc.wait_for(lambda s: not screens.form_fields(s), 5, what="the form applied")
        except StepFailed as exc:
            self.keys("Escape")
            raise StepFailed(f"the form did not take {name}={value}", exc.screen) from None

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
        self.back_to_dashboard()
        self.keys("R")
        # It is written beside the journal, in the new user's data folder.
        folder = self.home / ".local/share/incident-console/incidents"
        screen, _ = self.sc.wait_for(
            lambda s: "report failed" in s or list(folder.glob("*.md")),
            30,
            what=f"a postmortem in {folder}",
        )
        if "report failed" in screen:
            raise StepFailed("the report failed", screen)
        time.sleep(1)  # the notification, for the capture
        self.sc.capture("written")
        reports = sorted(folder.glob("*.md"))
        if len(reports) != 1:
            raise StepFailed(f"expected one postmortem in {folder}, found {reports}", screen)
        self.report_path = reports[0]
        text = reports[0].read_text()
        (self.sc.artifacts / "postmortem.md").write_text(text)
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
        deadline = time.monotonic() + 10
        left = descendants(self.sshd.proc.pid)
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = descendants(self.sshd.proc.pid)
        if left:
            names = [_cmdline(pid) for pid in left]
            raise StepFailed(f"processes left on the server under sshd: {names}", screen)
        if status[1] != "0":
            raise StepFailed(f"the console exited {status[1]}", screen)


def _tmux_key(label: str) -> str:
    """The tmux name of a key as the help writes it ('enter' -> 'Enter', 'ctrl+e' -> 'C-e')."""
    names = {"enter": "Enter", "esc": "Escape", "tab": "Tab", "space": "Space"}
    if label.startswith("ctrl+"):
        return "C-" + label[5:]
    return names.get(label, label)


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smh]?)", text.strip())
    if match is None:
        return float("inf")
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2]]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
    except OSError:
        return str(pid)


def test_a_new_users_first_hour(
    sshd: SshdServer, busy_engine: world.BusyEngine, tmp_path: Path
) -> None:
    require_tmux()
    home = tmp_path / "home"
    home.mkdir()
    bin_dir = str(Path(world.CONSOLE).parent)
    # A new user's shell: their own HOME (no config, journals in its data folder), the
    # installed command on PATH. Nothing else of the test's environment leaks in.
    env = {
        "HOME": str(home),
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "SHELL": "/bin/sh",
    }
    if "PYTHONPATH" in os.environ:  # a source checkout run as PYTHONPATH=src
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    tmux = Tmux(tmp_path / "tmux.sock", width=200, height=50, env=env)
    sc = Scenario(tmux, ARTIFACTS, CONSOLE)
    user = FirstHour(sc, busy_engine, sshd, home)
    try:
        tmux.start(CONSOLE)
        tmux.new_window(LOAD)
        sc.run("open", user.open)
        sc.run("logs", user.logs, needs=["open"])
        sc.run("load-kill", user.load_until_kill, needs=["open"])
        sc.run("detail", user.detail, needs=["load-kill"])
        sc.run("detail-logs", user.detail_logs, needs=["detail"])
        sc.run("walkthrough", user.open_walkthrough, needs=["open"])
        last = "walkthrough"
        for index, (_mark, _kind, title) in enumerate(user.steps):
            last = f"rb{index + 1:02d}-{re.sub(r'[^a-z]+', '-', title.lower())[:24].strip('-')}"
            sc.run(last, functools.partial(user.run_walkthrough_step, index), needs=["walkthrough"])
        # The watch step (the last) is the one that says the fix held under the load.
        sc.run("fix-holds", user.fix_holds, needs=[last, "load-kill"])
        tmux.keys(LOAD, "C-c")
        sc.run("postmortem", user.postmortem, needs=["open"])
        sc.run("quit", user.quit, needs=["open"])
    finally:
        with contextlib.suppress(Exception):
            sc.capture("load-window-last", window=LOAD)
        tmux.kill()
    failures = sc.failures()
    if failures:
        pytest.fail(
            f"{len(failures)} step(s) did not pass (captures in {ARTIFACTS}):\n{sc.report()}\n\n"
            f"first failing screen:\n{sc.first_failure_screen()}",
            pytrace=False,
        )
    print(f"\nscenario steps (captures in {ARTIFACTS}):\n{sc.report()}")


# The scenario's reading of a postmortem, checked on small reports (no engine needed): it
# must find each contradiction the issue saw, and none in a report that agrees with itself.

_AGREEING = """# Incident postmortem: ssh://root@127.0.0.1:2222

## Summary

- **What happened:** 2 OOM kills of project `icsc1` on ssh://root@127.0.0.1:2222 (icsc1_backend_1).
- **Not this incident:** project `icsn1` on the same host had 1 OOM kill (icsn1_backend_1 at 17:01:00Z).
- **Remediation:** gunicorn-settings (passed), 17:07:05Z to 17:08:00Z.
- **Outcome:** no OOM kill since 2026-12-01 17:08:00Z (to 2026-12-01 17:20:00Z).
- **Runbook:** oom-after-deploy: 2 steps run (1 passed, 1 failed), 1 skipped.

## Timeline (UTC)

| time (UTC) | what |
|---|---|
| 2026-12-01 17:05:00 | **OOM kill** in icsc1_backend_1 (backend): gunicorn pid 10 ×3 |
| 2026-12-01 17:06:00 | **OOM kill** in icsc1_backend_1 (backend): gunicorn pid 11 |

## OOM kills

| time (UTC) | container | service | process | pid | remediation |
|---|---|---|---|---|---|
| 2026-12-01 17:05:00Z | icsc1_backend_1 | backend | gunicorn | 10 | before remediation |
| 2026-12-01 17:06:00Z | icsc1_backend_1 | backend | gunicorn | 11 | before remediation |

## Runbook steps

| # | step | kind | result | verdict |
|---|---|---|---|---|
| 1 | host-memory | diagnose | passed | all checks passed |
| 2 | app-answers | diagnose | skipped | skipped by the operator |
| 3 | watch | verify | failed | no_new_oom |
"""

_EXPECTED = Expected("icsc1", "icsc1_backend_1", ["icsn1"], {10, 11})


def test_a_postmortem_that_agrees_with_itself_passes_the_scenarios_reading() -> None:
    assert contradictions(_AGREEING, _EXPECTED) == []


def test_the_scenarios_reading_finds_each_contradiction_issue_13_saw() -> None:
    edits = {
        # "no OOM kill since" before a kill of the table
        "no OOM kill since 2026-12-01 17:08:00Z": "no OOM kill since 17:05:30Z",
        # skipped steps counted as run
        "2 steps run (1 passed, 1 failed)": "3 steps run (1 passed, 1 failed)",
        # the neighbour named in the summary's account
        "(icsc1_backend_1).": "(icsc1_backend_1); impact icsn1_backend_1.",
        # one kill on two timeline rows (a second source)
        "| 2026-12-01 17:06:00 | **OOM kill**": "| 2026-12-01 17:06:00 | icsc1_backend_1: oom |\n"
        "| 2026-12-01 17:06:00 | **OOM kill**",
        # the neighbour's kill in this incident's table
        "| 11 | before remediation |": "| 11 | before remediation |\n"
        "| 2026-12-01 17:01:00Z | icsn1_backend_1 | backend | gunicorn | 9 | - |",
    }
    text = _AGREEING
    for old, new in edits.items():
        assert old in text
        text = text.replace(old, new)
    # ... and a kill the kernel logged (pid 12) that the report left out.
    expected = Expected("icsc1", "icsc1_backend_1", ["icsn1"], {10, 11, 12})
    found = "\n".join(contradictions(text, expected))
    assert "no OOM kill since 17:05:30" in found
    assert "3 step(s) run" in found
    assert "names the neighbour project 'icsn1'" in found
    assert "the timeline has 3 OOM rows" in found
    assert "kill(s) of other projects: ['icsn1_backend_1']" in found
    assert "the summary says 2 OOM kill(s), the table has 3 rows" in found
    assert "not in the table: [12]" in found

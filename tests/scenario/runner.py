"""The scenario harness: a private tmux server, keys in, screens out, and a log of steps.

A scenario drives a real program in a real terminal as a person would: it types, presses keys,
and waits for text on the screen (`capture-pane`), never for the program's internals. Every step
saves what the screen showed, pass or fail, under the artifacts folder, and the step log says
how long each step took and why it failed, so a red CI run is read from its captures.

The tmux server is our own (`-S` socket in a temp folder, no config file): a shared server's
environment, default size or other clients would otherwise leak into the session.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: How often the screen is read while waiting for something on it.
POLL_S = 0.25


class StepFailed(AssertionError):
    """A step's expectation did not hold; `screen` is what the terminal showed then."""

    def __init__(self, message: str, screen: str = "") -> None:
        super().__init__(message)
        self.screen = screen


class Tmux:
    """One private tmux server with one session of a fixed size.

    Args:
        socket: the server's socket path (its folder must exist).
        session: the session's name.
        width: columns of every window.
        height: rows of every window.
        env: the environment of the server, hence of every shell it starts.
    """

    def __init__(
        self,
        socket: Path,
        session: str = "scenario",
        width: int = 200,
        height: int = 50,
        env: dict[str, str] | None = None,
    ) -> None:
        self.socket = socket
        self.session = session
        self.width = width
        self.height = height
        self.env = env

    def run(self, *args: str, timeout: float = 20.0) -> str:
        """Run a tmux command on our server; returns its stdout."""
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def start(self, window: str, command: str = "sh") -> None:
        """Start the server and the session, whose first window runs `command`."""
        self.run(
            "new-session",
            "-d",
            "-s",
            self.session,
            "-n",
            window,
            "-x",
            str(self.width),
            "-y",
            str(self.height),
            command,
        )
        # Keys reach the program at once (tmux waits 500 ms after an Escape by default), the
        # size stays what we asked, and a window whose program ended stays readable.
        # (A global window-size makes tmux 3.3a crash on new-window -d: set per session.)
        self.run("set-option", "-s", "escape-time", "0")
        self.run("set-option", "-t", self.session, "window-size", "manual")
        self.run("set-option", "-g", "default-size", f"{self.width}x{self.height}")
        self.run("set-option", "-g", "remain-on-exit", "on")
        self.run("set-option", "-g", "history-limit", "5000")

    def new_window(self, window: str, command: str = "sh") -> None:
        """Another window in the session (another terminal of the same person)."""
        self.run("new-window", "-d", "-t", f"{self.session}:", "-n", window, command)
        self.run(
            "resize-window",
            "-t",
            self.target(window),
            "-x",
            str(self.width),
            "-y",
            str(self.height),
        )

    def target(self, window: str) -> str:
        return f"{self.session}:{window}"

    def keys(self, window: str, *keys: str) -> None:
        """Press keys (tmux key names: Enter, Escape, Tab, Down, C-c, or single characters)."""
        self.run("send-keys", "-t", self.target(window), *keys)

    def type(self, window: str, text: str) -> None:
        """Type `text` literally (no key names), as a person types a command line."""
        self.run("send-keys", "-t", self.target(window), "-l", text)

    def screen(self, window: str, history: bool = False) -> str:
        """The window's text as it is drawn now (with `history`: the scrollback too)."""
        args = ["capture-pane", "-p", "-J", "-t", self.target(window)]
        if history:
            args += ["-S", "-"]
        return self.run(*args)

    def alive(self) -> bool:
        try:
            self.run("has-session", "-t", self.session, timeout=5)
        except (RuntimeError, subprocess.TimeoutExpired):
            return False
        return True

    def kill(self) -> None:
        """End our server (only ours: it is addressed by its socket) and every window in it."""
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.run("kill-server", timeout=10)
        with contextlib.suppress(OSError):
            self.socket.unlink()


@dataclass
class StepResult:
    """What one step found."""

    number: int
    name: str
    status: str  # "passed", "failed", "not run"
    seconds: float
    detail: str = ""
    captures: list[str] = field(default_factory=list)


class Scenario:
    """Steps over a tmux session, each with its captures and verdict.

    A failed step is recorded and the scenario goes on with the steps that do not need it, so
    one run tells every step's state; `failures()` is what the test asserts on at the end.

    Args:
        tmux: the session the steps drive.
        artifacts: the folder for captures and the step log (emptied first).
        window: the window the steps read by default (the console's).
    """

    def __init__(self, tmux: Tmux, artifacts: Path, window: str) -> None:
        self.tmux = tmux
        self.artifacts = artifacts
        self.window = window
        self.results: list[StepResult] = []
        self._current: StepResult | None = None
        self._t0 = time.monotonic()
        artifacts.mkdir(parents=True, exist_ok=True)
        self.log_path = artifacts / "steps.log"
        self.log_path.write_text("")

    # Reading the screen ------------------------------------------------------------------------

    def screen(self, window: str | None = None) -> str:
        """The window's text now."""
        return self.tmux.screen(window or self.window)

    def wait_for(
        self,
        expected: str | re.Pattern[str] | Callable[[str], object],
        timeout: float,
        *,
        window: str | None = None,
        what: str = "",
    ) -> tuple[str, object]:
        """Poll the screen until `expected` shows (text, regex or predicate), within `timeout`.

        Returns:
            (the screen text, the match: the regex match or the predicate's truthy result).

        Raises:
            StepFailed: not on screen in time; the last screen is saved with the step.
        """
        check = _matcher(expected)
        deadline = time.monotonic() + timeout
        text = ""
        while True:
            text = self.screen(window)
            found = check(text)
            if found:
                return text, found
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_S)
        label = what or _describe(expected)
        raise StepFailed(f"not on screen within {timeout:g} s: {label}", text)

    def capture(self, label: str, window: str | None = None, text: str | None = None) -> Path:
        """Save the window's text (or `text`) as `NN-step-label.txt`; returns the file."""
        step = self._current
        prefix = f"{step.number:02d}-{step.name}" if step else "zz"
        path = self.artifacts / f"{prefix}-{_slug(label)}.txt"
        path.write_text(text if text is not None else self.screen(window))
        if step is not None:
            step.captures.append(path.name)
        return path

    def note(self, message: str) -> None:
        """A line in the step log (what was seen or done, with the time into the scenario)."""
        elapsed = time.monotonic() - self._t0
        with self.log_path.open("a") as log:
            log.write(f"{elapsed:7.1f}s  {message}\n")

    # Steps -------------------------------------------------------------------------------------

    def failed(self, name: str) -> bool:
        return any(r.name == name and r.status != "passed" for r in self.results)

    @contextlib.contextmanager
    def step(self, name: str, needs: Sequence[str] = ()) -> Iterator[StepResult | None]:
        """One step: yields its result, or None when a step it needs did not pass (the caller
        must then not run it; :meth:`run` does that).

        An AssertionError (StepFailed included) inside marks the step failed, saves the screen
        (the one the failure saw, and the one now) and does not propagate: the next step runs.
        """
        number = len(self.results) + 1
        missing = [n for n in needs if self.failed(n) or not any(r.name == n for r in self.results)]
        if missing:
            result = StepResult(number, name, "not run", 0.0, f"needs {', '.join(missing)}")
            self.results.append(result)
            self.note(f"step {number} {name}: NOT RUN ({result.detail})")
            yield None
            return
        result = StepResult(number, name, "passed", 0.0)
        self._current = result
        self.results.append(result)
        self.note(f"step {number} {name}: start")
        start = time.monotonic()
        try:
            yield result
        except AssertionError as exc:
            result.status = "failed"
            result.detail = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            seen = getattr(exc, "screen", "")
            if seen:
                self.capture("failed-screen", text=seen)
            self.note(f"  failed: {exc}")
        finally:
            with contextlib.suppress(Exception):
                self.capture("end")
            result.seconds = time.monotonic() - start
            self.note(
                f"step {number} {name}: {result.status.upper()} in {result.seconds:.1f} s"
                + (f" ({result.detail})" if result.detail else "")
            )
            self._current = None
            self._write_summary()

    def run(self, name: str, action: Callable[[], None], needs: Sequence[str] = ()) -> bool:
        """Run `action` as step `name` (not at all when a step it needs did not pass).

        Returns:
            True when the step passed.
        """
        with self.step(name, needs) as result:
            if result is not None:
                action()
        return not self.failed(name)

    def failures(self) -> list[StepResult]:
        """Steps that failed or could not run."""
        return [r for r in self.results if r.status != "passed"]

    def report(self) -> str:
        """One line per step: number, name, verdict, seconds, why."""
        return "\n".join(
            f"{r.number:2d} {r.name:<22} {r.status:<8} {r.seconds:6.1f}s  {r.detail}"
            for r in self.results
        )

    def first_failure_screen(self, lines: int = 25) -> str:
        """The screen the first failing step saw (its last `lines` non-blank lines)."""
        for r in self.results:
            if r.status == "failed":
                name = next((c for c in r.captures if "failed-screen" in c), None)
                name = name or (r.captures[-1] if r.captures else None)
                if name:
                    text = (self.artifacts / name).read_text()
                    kept = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
                    return f"[{name}]\n" + "\n".join(kept[-lines:])
        return ""

    def _write_summary(self) -> None:
        (self.artifacts / "steps.json").write_text(
            json.dumps([asdict(r) for r in self.results], indent=2) + "\n"
        )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "screen"


def _describe(expected: object) -> str:
    if isinstance(expected, re.Pattern):
        return f"/{expected.pattern}/"
    if isinstance(expected, str):
        return repr(expected)
    return getattr(expected, "__doc__", None) or getattr(expected, "__name__", "a condition")


def _matcher(expected: str | re.Pattern[str] | Callable[[str], object]) -> Callable[[str], object]:
    if isinstance(expected, str):
        return lambda text: expected in text
    if isinstance(expected, re.Pattern):
        return expected.search
    return expected


def fresh_folder(folder: Path) -> None:
    """Create `folder`, or empty it of the files a previous run left."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if old.is_file():
            old.unlink()


def artifacts_dir(name: str) -> Path:
    """Where a scenario's captures go: $SCENARIO_ARTIFACTS, else ci-artifacts/<name> in the
    checkout (kept by CI, ignored by git)."""
    root = os.environ.get("SCENARIO_ARTIFACTS")
    if root:
        return Path(root) / name
    return Path(__file__).resolve().parents[2] / "ci-artifacts" / name

"""The console in a real terminal (tmux) over a real sshd, watching the real lab.

Shows: the lab's containers within 10 s; after load, an OOM row naming the backend within 5 s
of the kernel's line; `?` shows the help; `q` exits 0 and leaves no process of ours behind.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import IN_CI
from fixtures_lab import OOM_MAX_S, OOM_RATE
from fixtures_sshd import SshdServer, descendants, ssh_target
from incident_console.lab.lab import Lab

pytestmark = [pytest.mark.sshd, pytest.mark.docker, pytest.mark.lab, pytest.mark.slow]

SESSION_PREFIX = "ict-console-"


def tmux(*args: str) -> str:
    import subprocess

    return subprocess.run(
        ["tmux", *args], check=True, capture_output=True, text=True, timeout=20
    ).stdout


def screen(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session)


def wait_for(session: str, predicate: object, timeout: float) -> tuple[float, str]:
    """Poll the screen until predicate(text) holds; returns (seconds waited, text)."""
    start = time.monotonic()
    text = ""
    while time.monotonic() - start < timeout:
        text = screen(session)
        if predicate(text):  # type: ignore[operator]
            return time.monotonic() - start, text
        time.sleep(0.2)
    Path("/tmp/ict-console-last-screen.txt").write_text(text)
    raise AssertionError(f"not on screen within {timeout} s; screen was:\n{text}")


def oom_row_for(pid: int, text: str) -> bool:
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if f"pid {pid}" in line:
            window = " ".join(lines[max(0, index - 1) : index + 1])
            if "backend" in window and "OOM" in window:
                return True
    return False


def test_console_over_ssh_on_the_lab(sshd: SshdServer, lab: Lab, tmp_path: Path) -> None:
    if shutil.which("tmux") is None:
        if IN_CI:
            pytest.fail("tmux is required in CI")
        pytest.skip("tmux is not installed")
    session = f"{SESSION_PREFIX}{int(time.time())}"
    exit_file = tmp_path / "exit"
    console = Path(sys.executable).parent / "incident-console"
    argv = [
        str(console),
        *ssh_target(sshd),
        "--journal",
        str(tmp_path / "journal.jsonl"),
        "--config",
        str(tmp_path / "none.toml"),
    ]
    (tmp_path / "none.toml").write_text("")
    # COLUMNS/LINES inherited by a shared tmux server would pin the console to their size.
    shell = f"env -u COLUMNS -u LINES {shlex.join(argv)}; echo $? > {shlex.quote(str(exit_file))}; sleep 60"
    tmux("new-session", "-d", "-s", session, "-x", "240", "-y", "60", "sh")
    # Fix the size before the console starts: other clients of a shared tmux server, or its
    # default-size, must not leave the console drawing into 80x24.
    tmux("set-option", "-t", session, "window-size", "manual")
    tmux("resize-window", "-t", session, "-x", "240", "-y", "60")
    tmux("send-keys", "-t", session, shell, "Enter")
    try:
        backend = f"{lab.project}_backend_1"
        # Other compose projects may run on this engine: show only the lab's rows.
        wait_for(session, lambda text: "Containers" in text, timeout=10)
        tmux("send-keys", "-t", session, "/", *lab.project)
        waited, _ = wait_for(session, lambda text: backend in text, timeout=10)
        print(f"lab containers on screen after {waited:.1f} s")
        tmux("send-keys", "-t", session, "Enter")  # close the prompt, keep the filter

        known = {k.pid for k in lab.oom_kills()}
        stop = threading.Event()
        kernel_seen: list[tuple[float, int]] = []

        def watch(_stats: object) -> None:
            new = [k for k in lab.oom_kills() if k.pid not in known and k.pid]
            if new and not kernel_seen:
                kernel_seen.append((time.monotonic(), new[0].pid))
                stop.set()

        loader = threading.Thread(
            target=lab.load,
            kwargs={"duration_s": OOM_MAX_S, "rate": OOM_RATE, "progress": watch, "stop": stop},
            daemon=True,
        )
        loader.start()
        loader.join(OOM_MAX_S + 30)
        stop.set()
        assert kernel_seen, "the lab load produced no new kernel OOM kill"
        seen_at, pid = kernel_seen[0]
        wait_for(session, lambda text: oom_row_for(pid, text), timeout=5)
        print(f"OOM row for pid {pid} on screen {time.monotonic() - seen_at:.1f} s after dmesg")

        tmux("send-keys", "-t", session, "?")
        wait_for(session, lambda text: "Every key of this screen" in text, timeout=5)
        tmux("send-keys", "-t", session, "Escape")
        time.sleep(0.5)
        tmux("send-keys", "-t", session, "q")
        deadline = time.monotonic() + 20
        while not exit_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert exit_file.exists(), screen(session)
        assert exit_file.read_text().strip() == "0"
        assert sshd.proc is not None
        deadline = time.monotonic() + 10
        left = descendants(sshd.proc.pid)
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = descendants(sshd.proc.pid)
        assert left == [], f"processes left under sshd: {left}"
    finally:
        import subprocess

        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, timeout=20)

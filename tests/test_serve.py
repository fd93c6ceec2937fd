"""`incident-console serve`: loopback by default, a warning elsewhere, the console in a browser."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import incident_console.cli  # noqa: F401 - registers the subcommands before one is imported
from chromium_cdp import chromium_binary, open_and_read
from conftest import IN_CI
from fixtures_sshd import descendants
from incident_console.commands.serve import is_loopback, viewer_argv
from incident_console.lab.lab import Lab

CLI = str(Path(sys.executable).with_name("incident-console"))
ARTIFACTS = Path(__file__).parent / "artifacts"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [CLI, "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the console sessions it starts go with it
    )


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.communicate(timeout=20)


def _get(url: str, timeout_s: float = 30.0) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return str(response.read().decode("utf-8"))
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_loopback_rule() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.0.0.5")
    assert not is_loopback("example.com")


def test_each_browser_runs_a_viewer_of_the_relay_not_a_console_of_its_own() -> None:
    argv = viewer_argv(Path("/run/x/relay.sock"), theme="projector", config_file="c.toml")
    assert argv[1:] == [
        "console",
        "--relay",
        "/run/x/relay.sock",
        "--theme",
        "projector",
        "--config",
        "c.toml",
    ]
    assert Path(argv[0]).name == "incident-console"
    # No target, no key, no probe: a viewer never reaches the server itself.
    assert viewer_argv(Path("r")) == [argv[0], "console", "--relay", "r"]


def _listening_addresses(port: int) -> set[str]:
    """The local IPv4 addresses listening on `port`, from /proc/net/tcp (hex, little-endian)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        address, _, hex_port = fields[1].partition(":")
        if fields[3] == "0A" and int(hex_port, 16) == port:
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def test_loopback_by_default_no_warning() -> None:
    port = _free_port()
    proc = _serve("local", "--port", str(port), "--read-only")
    try:
        page = _get(f"http://127.0.0.1:{port}/")
        assert f"ws://127.0.0.1:{port}/ws" in page
        assert _listening_addresses(port) == {"127.0.0.1"}
    finally:
        _out, err = _stop(proc)
    assert "warning" not in err, err


def test_warns_when_bound_elsewhere() -> None:
    port = _free_port()
    proc = _serve("local", "--bind", "0.0.0.0", "--port", str(port), "--allow-changes")
    try:
        assert f"ws://localhost:{port}/ws" in _get(f"http://127.0.0.1:{port}/")
        assert _listening_addresses(port) == {"0.0.0.0"}
    finally:
        _out, err = _stop(proc)
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert warnings == [
        f"incident-console: warning: serving on 0.0.0.0:{port}: anyone who can reach it gets "
        "the console and can change the server"
    ], err


def test_read_only_and_allow_changes_contradict() -> None:
    result = subprocess.run(
        [CLI, "serve", "local", "--read-only", "--allow-changes"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "incident-console: --read-only and --allow-changes contradict each other"
    )


def _relay_viewers(serve: subprocess.Popen[str]) -> list[int]:
    """The browsers' consoles under serve (argv has --relay), alive (not zombies)."""
    found = []
    for pid in descendants(serve.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"--relay" in cmdline and state != "Z":
            found.append(pid)
    return found


def test_chromium_shows_the_lab_console(tmp_path: Path, lab: Lab) -> None:
    """Headless Chromium opens the served console on the lab; the container names are on screen.

    Open, look, close: the browser's console ends with it, and serve's collection with serve.
    """
    if chromium_binary() is None:
        if IN_CI:
            pytest.fail("chromium is required in CI (apt-get install chromium)")
        pytest.skip("chromium is not installed")
    names = sorted(s.name for s in lab.status())
    assert names, "the lab has no containers"
    backend = next(s.name for s in lab.status() if s.service == "backend")
    port = _free_port()
    proc = _serve("local", "--port", str(port), "--read-only")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "serve-console.png"
    left: list[int] = []
    try:
        _get(f"http://127.0.0.1:{port}/")
        text = open_and_read(
            f"http://127.0.0.1:{port}/",
            tmp_path / "chromium",
            wanted=[backend, *names],
            screenshot=shot,
        )
        # The browser is closed: its console goes within seconds, serve stays.
        deadline = time.monotonic() + 20
        while _relay_viewers(proc) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _relay_viewers(proc)
        collection = descendants(proc.pid)
    finally:
        _out, err = _stop(proc)
    assert not left, f"consoles {left} outlived their browser"
    time.sleep(1)
    assert not [p for p in collection if Path(f"/proc/{p}").exists()], "serve left processes"
    (ARTIFACTS / "serve-console.txt").write_text(text, encoding="utf-8")
    assert backend in text, f"{backend} not on screen:\n{text[:3000]}\n{err[-2000:]}"
    shown = [n for n in names if n in text]
    # Every container of the lab is listed (the dashboard may scroll past the others' stacks).
    assert shown == names, (shown, names)
    assert shot.stat().st_size > 10_000  # a real picture, not an empty page


def test_an_unreachable_host_fails_in_one_line_before_serving() -> None:
    """serve connects its collection first: a host it cannot reach is said, not served blank."""
    result = subprocess.run(
        [CLI, "serve", f"ssh://root@127.0.0.1:{_free_port()}", "--port", str(_free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("incident-console:")]
    assert len(errors) == 1 and "connection refused" in errors[0], result.stderr

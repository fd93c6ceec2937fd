"""`serve` in headless Chromium: sessions end with their browser and with serve (issue 13,
item 2), and three browsers cost the server one SSH connection and one sampler (item 10).

Processes are checked by pid: a viewer is a child of serve whose argv has `--relay`; on the
server side (the test sshd) a connection is a direct child of the listening sshd, and the
sampler is the process whose command line names the awk stats sampler.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chromium_cdp import HeadlessChromium, chromium_binary
from conftest import IN_CI
from fixtures_sshd import SshdServer, descendants, ssh_target
from sources_support import docker_or_skip, remove, run_container, wait_for

CLI = str(Path(sys.executable).with_name("incident-console"))
ARTIFACTS = Path(__file__).parent / "artifacts"
SLEEPER = "import time\nprint('up', flush=True)\ntime.sleep(900)\n"


def _chromium_or_skip() -> None:
    if chromium_binary() is None:
        if IN_CI:
            pytest.fail("chromium is required in CI (apt-get install chromium)")
        pytest.skip("chromium is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    """Running or sleeping: not gone and not a zombie waiting for its parent."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except OSError:
                continue
    return found


def _viewers(serve: subprocess.Popen[str]) -> list[int]:
    """The browsers' consoles: serve's descendants running `incident-console console`."""
    return [
        p
        for p in descendants(serve.pid)
        if "incident-console console" in _cmdline(p)
        and not _cmdline(p).startswith("/bin/sh")
        and _alive(p)
    ]


def _until(predicate: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.2)


def _get(url: str, timeout_s: float = 60.0) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return str(response.read().decode("utf-8"))
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextlib.contextmanager
def serving(*args: str) -> Iterator[tuple[subprocess.Popen[str], str, list[int]]]:
    """`incident-console serve ARGS` on a free port; yields (process, url, pids seen).

    Whatever the test did, every pid recorded in the list (and serve) is gone afterwards.
    """
    port = _free_port()
    proc = subprocess.Popen(
        [CLI, "serve", *args, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    seen: list[int] = []
    url = f"http://127.0.0.1:{port}/"
    try:
        _get(url)
        yield proc, url, seen
    finally:
        if proc.poll() is None:
            seen += descendants(proc.pid)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        for pid in seen:  # a test that failed may have left some: they are ours to end
            if _alive(pid) and pid != os.getpid():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
        assert proc.stderr is not None
        proc.stderr.close()


def test_a_two_second_visit_leaves_no_console(tmp_path: Path) -> None:
    """A browser that stays 2 s: its console ends within seconds; serve's exit ends the rest."""
    _chromium_or_skip()
    with serving("local") as (serve, url, seen):
        browser = HeadlessChromium(url, tmp_path / "chromium")
        try:
            _until(lambda: _viewers(serve), 60, "the browser's console to start")
            viewers = _viewers(serve)
            seen += [*viewers, *(d for v in viewers for d in descendants(v))]
            time.sleep(2)
        finally:
            browser.close()
        _until(lambda: not any(_alive(p) for p in viewers), 20, f"consoles {viewers} to end")
        assert serve.poll() is None, "serve itself must go on serving"
        assert "incident-console" in _get(url)
        everything = descendants(serve.pid)  # serve's own collection: dmesg, the sampler
        seen += everything
        serve.send_signal(signal.SIGTERM)
        serve.wait(30)
        _until(lambda: not any(_alive(p) for p in everything), 10, f"{everything} to end")


def test_serve_stopped_ends_the_consoles_of_open_browsers(tmp_path: Path) -> None:
    """SIGINT to serve while a browser is on it: the console ends, then serve, promptly."""
    _chromium_or_skip()
    with serving("local") as (serve, url, seen):
        browser = HeadlessChromium(url, tmp_path / "chromium")
        try:
            text = browser.read(["local", "Containers"], tmp_path / "shot.png", timeout_s=90)
            assert "Containers" in text, text[:2000]
            viewers = _viewers(serve)
            assert len(viewers) == 1, viewers
            everything = descendants(serve.pid)
            seen += everything
            started = time.monotonic()
            serve.send_signal(signal.SIGINT)
            serve.wait(30)
            took = time.monotonic() - started
            _until(lambda: not any(_alive(p) for p in everything), 10, f"{everything} to end")
        finally:
            browser.close()
        # Quit, SIGTERM, SIGKILL each have a few seconds; textual-serve alone waited 60 s.
        assert took < 20, f"serve took {took:.1f} s to stop"


def _accepted(sshd: SshdServer) -> int:
    return sshd.log.read_text(errors="replace").count("Accepted publickey")


def _samplers(sshd: SshdServer) -> list[int]:
    assert sshd.proc is not None
    return [p for p in descendants(sshd.proc.pid) if "stats sampler" in _cmdline(p)]


def test_three_browsers_cost_the_server_one_connection_and_one_sampler(
    tmp_path: Path, sshd: SshdServer
) -> None:
    _chromium_or_skip()
    docker_or_skip()
    assert sshd.proc is not None
    names = []
    try:
        for _ in range(2):
            names.append(run_container(SLEEPER)[1])
        accepted_before = _accepted(sshd)
        connections_before = len(_children(sshd.proc.pid))
        with serving(*ssh_target(sshd)) as (serve, url, seen):
            browsers = [HeadlessChromium(url, tmp_path / f"chromium-{n}") for n in range(3)]
            try:
                texts = []
                for n, browser in enumerate(browsers):
                    shot = tmp_path / f"browser-{n}.png"
                    texts.append(browser.read([*names, "connected"], shot, timeout_s=120))
                ARTIFACTS.mkdir(exist_ok=True)
                (ARTIFACTS / "serve-three-viewers.png").write_bytes(
                    (tmp_path / "browser-0.png").read_bytes()
                )
                viewers = _viewers(serve)
                seen += viewers
                assert len(viewers) == 3, f"three browsers, three viewer consoles: {viewers}"
                # Counted on the server, with all three browsers showing the console.
                connections = len(_children(sshd.proc.pid)) - connections_before
                samplers = _samplers(sshd)
                accepted = _accepted(sshd) - accepted_before
                for n, text in enumerate(texts):
                    missing = [name for name in names if name not in text]
                    assert not missing, f"browser {n} does not show {missing}:\n{text[:3000]}"
                assert connections == 1, f"{connections} SSH connections on the server"
                assert accepted == 1, f"{accepted} SSH logins during the test"
                assert len(samplers) == 1, f"samplers on the server: {samplers}"
                assert all("READ-ONLY" in text for text in texts), "a viewer can change things"
            finally:
                for browser in browsers:
                    browser.close()
            _until(lambda: not _viewers(serve), 20, "the viewers to end with their browsers")
            # The collection outlives its viewers: serve still holds its one connection.
            assert len(_samplers(sshd)) == 1
        # serve stopped: its connection and its sampler on the server are gone.
        _until(lambda: not _samplers(sshd), 20, "the sampler to end with serve")
        _until(
            lambda: len(_children(sshd.proc.pid)) <= connections_before,  # type: ignore[union-attr]
            20,
            "serve's SSH connection to close",
        )
    finally:
        remove(*names)


#: What the issue saw: a console that ignores SIGTERM and SIGINT, spinning, with a child.
STUBBORN = (
    "import signal, subprocess, sys\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    "print(child.pid, flush=True)\n"
    "while True: pass\n"
)


async def test_a_session_that_ignores_quit_and_sigterm_is_ended_with_its_children() -> None:
    import asyncio

    from incident_console.ui.web import TERM_GRACE_S, end_process_group

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", STUBBORN, stdout=asyncio.subprocess.PIPE, start_new_session=True
    )
    assert proc.stdout is not None
    child = int(await proc.stdout.readline())
    try:
        started = time.monotonic()
        await end_process_group(proc, 0.5)
        took = time.monotonic() - started
        assert proc.returncode == -signal.SIGKILL
        assert took < 0.5 + TERM_GRACE_S + 2, took
        await wait_for(lambda: not _alive(child), 5, "the session's child to end with it")
    finally:
        for pid in (proc.pid, child):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

"""The lab server: one VM per test session, with the lab's stack in it (`lab server up`).

`lab_server` boots it once (the image is built the first time, then reused from the user cache
dir), in a run folder of the session's tmp dir, and brings it down at the end. Tests marked
`labserver_down` (they take the server down themselves) run after every other test.
Without qemu (or, when the image is not cached yet, root and debootstrap) these fail in CI and
skip elsewhere. The times of the build, the boot and the stack are printed in the summary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from conftest import IN_CI
from incident_console.lab.lab import Lab
from incident_console.lab.oom import oom_kills
from incident_console.lab.remote import ServerLabHost
from incident_console.lab.server import LabServer, ServerState, UpReport
from incident_console.lab.vm import VmImage, image_dir

_TIMES: list[str] = []


def labserver_missing() -> str | None:
    """Why a lab server cannot be started here, or None when it can."""
    tools = ["qemu-system-x86_64", "qemu-img", "ssh", "ssh-keygen"]
    if not VmImage(image_dir()).complete():
        if os.geteuid() != 0:
            return "the lab server image is not cached and building it needs root"
        tools += ["debootstrap", "mkfs.ext4", "chroot"]
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        return f"not installed: {', '.join(missing)}"
    return None


@dataclass
class LabServerRun:
    """The session's lab server.

    Attributes:
        server: the LabServer (its run folder is in the session's tmp dir).
        report: what `up` did (target, frontend URL, times).
        state: the recorded state (ports, pid).
        seconds: the whole `up`, build included.
        versions: what `status` found inside (kernel, docker, cgroup, compose).
    """

    server: LabServer
    report: UpReport
    state: ServerState
    seconds: float
    versions: dict[str, str] = field(default_factory=dict)

    def host(self, user: str = "deploy") -> ServerLabHost:
        """The VM over SSH as `user`."""
        return self.server.host(self.state, user)

    def lab(self) -> Lab:
        """The stack in the VM."""
        return self.server.lab(self.state)

    @property
    def target_args(self) -> list[str]:
        """The target line split into CLI arguments (target, -i KEY, --known-hosts FILE)."""
        return self.report.target.split()


_RAN_LOCAL: list[bool] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The server is shared by the session: the tests that recreate its stack without limits
    # go after the others, and whoever takes it down goes after everyone else.
    items.sort(
        key=lambda item: (
            item.get_closest_marker("labserver_down") is not None,
            item.get_closest_marker("labserver_nolimits") is not None,
            # The walkthrough rewrites the stack's settings (workers, recycling, the limit):
            # after the tests that need the stack as `up` made it, before the no-limits ones.
            item.get_closest_marker("labserver_late") is not None,
        )
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    # After -m's deselection: whether this pass runs anything on this machine's engine.
    _RAN_LOCAL[:] = [any(i.get_closest_marker("labserver") is None for i in session.items)]


def _short(version: str) -> str:
    # '20.10.24+dfsg1' -> '20.10', 'v2.26.1' -> '2.26': the generation, not the build.
    m = re.match(r"v?(\d+)\.(\d+)", version.strip())
    return f"{m.group(1)}.{m.group(2)}" if m else (version.strip() or "?")


def _local_server_line() -> str:
    """This machine's engine as the local pass met it: docker, cgroup, driver, compose."""

    def out(argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    docker = out(["docker", "version", "--format", "{{.Server.Version}}"])
    if not docker:
        return "server: this machine's docker engine did not answer"
    cgroup = out(["docker", "info", "--format", "{{.CgroupVersion}} {{.CgroupDriver}}"]).split()
    compose = out(["docker", "compose", "version", "--short"]) or out(
        ["docker-compose", "version", "--short"]
    )
    v, driver = (cgroup + ["?", "?"])[:2]
    return (
        f"server: docker {_short(docker)} cgroup v{v} {driver} compose {_short(compose)}"
        " (this machine's engine)"
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # CI's output names the servers each pass ran on (issue 14): one line per server.
    if _RAN_LOCAL and _RAN_LOCAL[0]:
        terminalreporter.write_line(_local_server_line())
    for line in _TIMES:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServerRun]:
    """The session's lab server, up with a healthy stack (backend limit 256m, 4 workers)."""
    reason = labserver_missing()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"the lab server is required in CI: {reason}")
        pytest.skip(reason)
    server = LabServer(tmp_path_factory.mktemp("labserver"))
    t0 = time.monotonic()
    try:
        # Shown with the failure when `up` fails: how far it got, and when.
        report = server.up(progress=lambda msg: print(f"{time.monotonic() - t0:6.1f}s {msg}"))
        seconds = time.monotonic() - t0
        state = server.state()
        assert state is not None
        status = server.status()
        run = LabServerRun(server, report, state, seconds, status.versions)
        build = f"{report.build_s:.0f} s" if report.build_s is not None else "cached"
        v = status.versions
        kind = v.get("cgroup", "? ?").lstrip("v").split()
        _TIMES.append(
            f"server: docker {_short(v.get('docker', '?'))} cgroup v{kind[0]} "
            f"{kind[-1]} compose {_short(v.get('compose', '?'))} (the lab server VM, kernel "
            f"{v.get('kernel')})"
        )
        _TIMES.append(
            f"lab server: build {build}, boot to sshd+dockerd {report.boot_s:.0f} s, stack healthy "
            f"{report.stack_s:.0f} s (up {seconds:.0f} s); docker {v.get('docker')} cgroup "
            f"{v.get('cgroup')} compose {v.get('compose')}, kernel {v.get('kernel')}"
        )
        yield run
    finally:
        server.down()


# -- the kernel's word, read as root (deploy may not: dmesg_restrict=1) ------------------------


def clock_offset(run: LabServerRun) -> float:
    """The VM's wall clock minus this machine's (seconds): see clock_reading."""
    return clock_reading(run)[0]


def clock_reading(run: LabServerRun) -> tuple[float, float]:
    """(offset, error): the VM's wall clock minus this machine's, from the quickest of 7
    readings, and its error bound, half that reading's round trip (under load a slow one
    takes a second)."""
    best: tuple[float, float] | None = None
    for _ in range(7):
        t0 = time.time()
        out = run.host().run(["date", "+%s.%N"], timeout=60).stdout
        t1 = time.time()
        offset = float(out) - (t0 + t1) / 2
        if best is None or t1 - t0 < best[0]:
            best = (t1 - t0, offset)
    assert best is not None
    return best[1], best[0] / 2


@dataclass(frozen=True)
class KernelKill:
    """A kernel 'Killed process' line of a container, with its wall time on the VM's clock."""

    wall: float
    line: str
    global_oom: bool


def kernel_kills(run: LabServerRun, container_id: str) -> list[KernelKill]:
    """The kernel's OOM kills in `container_id`, read as root (deploy may not: dmesg_restrict)."""
    root = run.host("root")
    raw = root.kernel_log()
    iso = root.run(["dmesg", "--time-format", "iso"], timeout=60).stdout.splitlines()
    assert len(iso) >= len(raw) - 5, "dmesg --time-format iso read a different log"
    found = []
    for kill in oom_kills(container_id, raw):
        # The same line in the iso listing: its text after the stamp is the same.
        summary = next(ln for ln in kill.lines if "oom-kill:" in ln)
        text = summary.split("] ", 1)[1]
        stamped = next(ln for ln in iso if ln.endswith(text))
        stamp = stamped.split(" ", 1)[0].replace(",", ".")
        found.append(
            KernelKill(
                datetime.fromisoformat(stamp).timestamp(), kill.lines[-1], "global_oom" in text
            )
        )
    return found


def memory_events_kills(run: LabServerRun, container_id: str) -> int:
    """The container cgroup's `oom_kill` count in memory.events, read as deploy."""
    path = f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/memory.events"
    text = run.host().read_text(path)
    return next(int(ln.split()[1]) for ln in text.splitlines() if ln.startswith("oom_kill "))

"""Faults on the watched server itself: a container removed while followed, the journal's disk
full, a kernel log the login may not read. Each ends with the monitor up and the state honest.

These run on this machine (LocalHost, or SshHost to a private sshd for the restricted user);
they never touch the shared docker engine beyond their own `icts-` containers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import IN_CI
from fixtures_sshd import SSHD, SshdServer, _free_port
from incident_console.domain.events import (
    ContainerGone,
    ContainerSample,
    Event,
    LogLine,
    Note,
    SourceStatus,
)
from incident_console.monitor.host_monitor import HostMonitor
from incident_console.monitor.journal import Journal, read_journal
from incident_console.sources.kernel_log import KernelLogSource
from incident_console.transport.local import LocalHost
from sources_support import docker_or_skip, ensure_image, remove, run_container, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]

CHATTY = "import time\nwhile True:\n    print('tick', flush=True)\n    time.sleep(0.1)\n"


def _need(condition: bool, reason: str) -> None:
    if not condition:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)


async def test_container_removed_while_followed(tmp_path: Path) -> None:
    docker_or_skip()
    ensure_image()
    cid, name = run_container(CHATTY)
    journal = Journal(tmp_path / "journal.jsonl")
    monitor = HostMonitor(LocalHost(), journal=journal, since=time.time())
    events: list[Event] = []
    monitor.subscribe(events.append)
    try:
        await monitor.start()
        monitor.follow_logs([cid])
        await wait_for(
            lambda: any(isinstance(e, ContainerSample) and e.id == cid for e in events), 60,
            "samples of the container",
        )  # fmt: skip
        await wait_for(
            lambda: any(isinstance(e, LogLine) and e.id == cid for e in events), 60,
            "its log lines",
        )  # fmt: skip
        remove(name)
        await wait_for(lambda: monitor.state.containers[cid].gone, 30, "the container marked gone")
        gone_at = time.time()
        await asyncio.sleep(4)
        # Still running: every source alive, host samples still arriving, none for the dead one.
        assert all(not t.done() for t in monitor._tasks)
        assert any(e.time > gone_at + 1 for e in monitor.state.memory)
        late = [e for e in events if isinstance(e, ContainerSample) and e.id == cid]
        assert all(e.time <= gone_at + 2 for e in late)
        await monitor.stop()
        kinds = [r["kind"] for r in read_journal(journal.path) if r.get("id") == cid]
        assert ContainerGone.KIND in kinds
    finally:
        remove(name)
        await monitor.stop()


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    _need(os.geteuid() == 0, "mounting a tmpfs needs root")
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True, text=True,
    )  # fmt: skip
    _need(done.returncode == 0, f"mount tmpfs failed: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


async def test_journal_disk_full(tiny_tmpfs: Path) -> None:
    docker_or_skip()
    ensure_image()
    journal = Journal(tiny_tmpfs / "journal.jsonl")
    monitor = HostMonitor(LocalHost(), journal=journal, since=time.time())
    try:
        await monitor.start()
        # Fill the rest of the disk with a file of our own.
        with contextlib.suppress(OSError), open(tiny_tmpfs / "filler", "wb") as f:  # noqa: ASYNC230
            while True:
                f.write(b"x" * 4096)
                f.flush()
        for i in range(200):
            monitor.record(Note(time=time.time(), what=f"note {i} " + "y" * 200))
        await wait_for(lambda: journal.error is not None, 15, "the journal error")
        assert "No space left on device" in (journal.error or "")
        assert "\n" not in (journal.error or "")
        t = time.time()
        await wait_for(lambda: any(m.time > t for m in monitor.state.memory), 15, "more samples")
        assert all(not task.done() for task in monitor._tasks)
        # Space comes back: writing resumes and a new record lands.
        (tiny_tmpfs / "filler").unlink()
        monitor.record(Note(time=time.time(), what="after the disk was freed"))
        await asyncio.sleep(1)
        await monitor.stop()
        texts = [r.get("what") for r in read_journal(journal.path)]
        assert "after the disk was freed" in texts
    finally:
        await monitor.stop()


# -- a login that may not read the kernel log ---------------------------------------------


@pytest.fixture
def restricted_login(tmp_path: Path) -> Iterator[SshdServer]:
    """A throwaway user, kernel.dmesg_restrict=1, and a private sshd letting that user in."""
    _need(os.geteuid() == 0 and shutil.which("useradd") is not None, "needs root and useradd")
    _need(os.access(SSHD, os.X_OK), f"{SSHD} is not installed")
    user = f"icf{os.getpid() % 100000}"
    sysctl = Path("/proc/sys/kernel/dmesg_restrict")
    saved = sysctl.read_text().strip()
    # '*' instead of useradd's '!': a locked account may not log in even with a key.
    subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", "-p", "*", user],
                   check=True, capture_output=True)  # fmt: skip
    # The user's sshd reads authorized_keys as that user: pytest's tmp dirs are 0700 root.
    root = Path(tempfile.mkdtemp(prefix="icf-sshd-"))
    root.chmod(0o755)
    try:
        sysctl.write_text("1\n")
        server = SshdServer(root=root / "sshd", port=_free_port(), user=user)
        server.setup()
        server.root.chmod(0o755)
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        sysctl.write_text(saved + "\n")
        subprocess.run(["userdel", user], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


async def test_kernel_log_restricted_login_uses_fallback(restricted_login: SshdServer) -> None:
    source = KernelLogSource(retry_s=3600)
    host = await restricted_login.connect_host()
    monitor = HostMonitor(host, sources=[source])
    try:
        await monitor.start()
        await wait_for(lambda: "kernel_log" in monitor.state.sources, 30, "the source's status")
        status = monitor.state.sources["kernel_log"]
        assert isinstance(status, SourceStatus)
        assert not status.ok
        assert status.method == "docker-events"
        assert status.detail.startswith("dmesg denied (kernel.dmesg_restrict=1)")
        assert "journalctl" in status.detail
        assert all(not t.done() for t in monitor._tasks)
    finally:
        await monitor.stop()

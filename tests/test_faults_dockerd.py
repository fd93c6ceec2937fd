"""dockerd restarted under a running monitor: a SECOND engine of our own, never the shared one.

Other people's tests use the machine's dockerd, so this starts its own dockerd (own socket,
data-root, exec-root, containerd namespace, its own network namespace, no bridge, no
iptables), points LocalHost at it with
DOCKER_HOST, kills and restarts it, and checks that the events and stats sources say so and
recover by themselves: the monitor stays up and samples resume.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import IN_CI
from incident_console.domain.events import ContainerSample, Event, SourceStatus
from incident_console.lab.image import rootfs_tar
from incident_console.monitor.host_monitor import HostMonitor
from incident_console.monitor.journal import Journal, read_journal
from incident_console.transport.local import LocalHost
from sources_support import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]


class PrivateDockerd:
    """A dockerd on its own socket and directories, startable and killable at will."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sock = root / "docker.sock"
        self.host = f"unix://{self.sock}"
        self.proc: subprocess.Popen[bytes] | None = None
        # A managed containerd of its own timed out starting on the loaded test machine; the
        # shared engine's containerd serves it instead, under our own namespaces (it is never
        # restarted: only our dockerd is).
        shared = Path("/var/run/docker/containerd/containerd.sock")
        self.containerd_args = ["--containerd", str(shared)] if shared.exists() else []

    def start(self) -> None:
        log = open(self.root / "dockerd.log", "ab")  # noqa: SIM115 - the daemon's lifetime
        self.proc = subprocess.Popen(
            [
                # Its own network namespace: with --bridge none dockerd DELETES the interface
                # docker0 it finds, which on the host is the shared engine's bridge.
                "unshare", "--net", "--",
                "dockerd", "--host", self.host,
                "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                "--pidfile", str(self.root / "dockerd.pid"),
                *self.containerd_args,
                "--containerd-namespace", f"icf{os.getpid()}",
                "--containerd-plugins-namespace", f"icf{os.getpid()}p",
                "--bridge", "none", "--iptables=false", "--ip-masq=false",
            ],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.root / "dockerd.log").read_text()[-800:])
            if self.docker("info", check=False).returncode == 0:
                return
            time.sleep(0.3)
        raise RuntimeError("the private dockerd did not answer within 60 s")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def docker(
        self, *argv: str, check: bool = True, data: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["docker", "-H", self.host, *argv], input=data, capture_output=True, check=check,
            timeout=120,
        )  # fmt: skip


@pytest.fixture
def private_dockerd(monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateDockerd]:
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        if IN_CI:
            pytest.fail("a private dockerd needs root and dockerd")
        pytest.skip("a private dockerd needs root and dockerd")
    # Short path: unix socket paths are limited to 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="icfd-"))
    engine = PrivateDockerd(root)
    try:
        engine.start()
    except RuntimeError as exc:
        shutil.rmtree(root, ignore_errors=True)
        if IN_CI:
            pytest.fail(f"private dockerd would not start: {exc}")
        pytest.skip(f"private dockerd would not start: {exc}")
    monkeypatch.setenv("DOCKER_HOST", engine.host)
    bridge = Path("/sys/class/net/docker0")
    had_bridge = bridge.exists()
    try:
        yield engine
        assert bridge.exists() == had_bridge, "the private dockerd touched the shared docker0"
    finally:
        if engine.proc is None:
            with contextlib.suppress(RuntimeError):
                engine.start()
        engine.docker("rm", "-f", "icts-dockerd-fault", check=False)
        engine.stop()
        # dockerd leaves mounts under its roots (netns files, overlays) when it dies early.
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for point in sorted((m for m in mounts if m.startswith(f"{root}/")), reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


async def test_dockerd_restarted(private_dockerd: PrivateDockerd, tmp_path: Path) -> None:
    private_dockerd.docker("import", "-", "icf-base:latest", data=rootfs_tar())
    cid = private_dockerd.docker(
        "run", "-d", "--name", "icts-dockerd-fault", "--restart", "always", "--network", "none",
        "-v", "/usr:/usr:ro", "icf-base:latest", "/usr/bin/sleep", "infinity",
    ).stdout.decode().strip()  # fmt: skip
    journal = Journal(tmp_path / "journal.jsonl")
    monitor = HostMonitor(LocalHost(), journal=journal, since=time.time())
    events: list[Event] = []
    monitor.subscribe(events.append)

    def samples(after: float) -> int:
        return sum(
            1 for e in events if isinstance(e, ContainerSample) and e.id == cid and e.time > after
        )

    def statuses(after: float) -> list[SourceStatus]:
        return [e for e in events if isinstance(e, SourceStatus) and e.time > after]

    try:
        await monitor.start()
        await wait_for(lambda: samples(0) >= 3, 60, "samples from the private engine")
        killed = time.time()
        private_dockerd.kill()
        await wait_for(
            lambda: any(s.source == "docker_events" and not s.ok for s in statuses(killed)), 30,
            "the events source to report the engine gone",
        )  # fmt: skip
        private_dockerd.start()
        back = time.time()
        await wait_for(
            lambda: any(s.source == "docker_events" and s.ok for s in statuses(back)), 60,
            "the events source to report it is back",
        )  # fmt: skip
        await wait_for(lambda: samples(back) >= 3, 60, "samples after the restart")
        assert all(not t.done() for t in monitor._tasks)
        await monitor.stop()
        journaled = [r for r in read_journal(journal.path) if r["kind"] == "source"]
        assert any(r["source"] == "docker_events" and not r["ok"] for r in journaled)
        assert journal.error is None
    finally:
        await monitor.stop()

"""Faults on the link to a watched host: sshd killed and restarted; the network cut and restored.

Each test runs a whole HostMonitor (default sources) over a real SshHost with a journal, breaks
the link, repairs it, and checks that the monitor is still up, the state says what happened
(stale, then connected), samples resume, and the journal holds every link change in order.
The network cut puts the server's sshd in its own network namespace behind a veth pair with
private addresses that exist only on that pair, and removes the namespace afterwards.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import fixtures_sshd
from conftest import IN_CI
from fixtures_sshd import SSHD, SshdServer, _free_port
from incident_console.domain.events import ContainerSample, Event, LinkChange
from incident_console.monitor.host_monitor import HostMonitor
from incident_console.monitor.journal import Journal, read_journal
from sources_support import ALLOCATE, docker_or_skip, ensure_image, remove, run_container, wait_for

pytestmark = [pytest.mark.sshd, pytest.mark.slow]


def _need(condition: bool, reason: str) -> None:
    if not condition:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def container() -> Iterator[str]:
    docker_or_skip()
    ensure_image()
    cid, name = run_container(ALLOCATE.format(mib=4))
    try:
        yield cid
    finally:
        remove(name)


class Watch:
    """A HostMonitor with a journal and a list of every event it published."""

    def __init__(self, monitor: HostMonitor, journal_path: Path) -> None:
        self.monitor = monitor
        self.journal_path = journal_path
        self.events: list[Event] = []
        monitor.subscribe(self.events.append)

    def samples(self, cid: str, after: float = 0.0) -> int:
        return sum(
            1
            for e in self.events
            if isinstance(e, ContainerSample) and e.id == cid and e.time > after
        )

    def links(self) -> list[str]:
        return [e.state for e in self.events if isinstance(e, LinkChange)]

    def sources_alive(self) -> bool:
        return all(not t.done() for t in self.monitor._tasks)


async def _watch(server: SshdServer, tmp_path: Path) -> Watch:
    from incident_console.transport.targets import open_host

    journal = Journal(tmp_path / "journal.jsonl")
    monitor = HostMonitor(
        open_host(server.target, **server.host_options()),  # type: ignore[arg-type]
        journal=journal,
        since=time.time(),
    )
    watch = Watch(monitor, journal.path)
    await monitor.start()
    return watch


async def _break_and_repair(
    watch: Watch, cid: str, cut: object, repair: object, stale_within: float
) -> None:
    await wait_for(lambda: watch.samples(cid) >= 3, 60, "samples before the fault")
    before = len(watch.links())
    cut()  # type: ignore[operator]
    # Stale, then reconnecting: poll the history, a 0.2 s poll of the state can miss "stale".
    await wait_for(lambda: "stale" in watch.links()[before:], stale_within, "the link stale")
    assert watch.monitor.state.link != "connected"
    assert not watch.monitor.state.is_live, "numbers must be marked old while the link is down"
    repair()  # type: ignore[operator]
    await wait_for(lambda: watch.monitor.state.link == "connected", 90, "the link back")
    back = time.time()
    await wait_for(lambda: watch.samples(cid, after=back) >= 3, 60, "samples after the repair")
    assert watch.sources_alive(), "every source task is still running"
    links = watch.links()
    assert links.index("stale") < len(links) - 1 - links[::-1].index("connected")
    # The journal holds the same link changes, in the same order: none lost.
    await watch.monitor.stop()
    journaled = [r["state"] for r in read_journal(watch.journal_path) if r["kind"] == "link"]
    assert [s for s in journaled if s != "closed"] == [s for s in links if s != "closed"]
    assert watch.monitor.journal is not None and watch.monitor.journal.error is None


@pytest.fixture
def own_sshd(tmp_path: Path) -> Iterator[SshdServer]:
    _need(os.access(SSHD, os.X_OK), f"{SSHD} is not installed")
    server = SshdServer(root=tmp_path / "sshd", port=_free_port())
    server.setup()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_sshd_killed_and_restarted(
    own_sshd: SshdServer, container: str, tmp_path: Path
) -> None:
    watch = await _watch(own_sshd, tmp_path)
    try:
        await _break_and_repair(watch, container, own_sshd.stop, own_sshd.start, 30)
    finally:
        await watch.monitor.stop()


# -- the network cut: sshd in its own network namespace ------------------------------------


def _ip(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *argv], capture_output=True, text=True, check=check)


@pytest.fixture
def netns_sshd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SshdServer, str]]:
    """sshd inside a fresh network namespace, reached over a veth pair; yields (server, veth)."""
    _need(os.geteuid() == 0 and shutil.which("ip") is not None, "needs root and iproute2")
    _need(os.access(SSHD, os.X_OK), f"{SSHD} is not installed")
    tag = f"{os.getpid() % 100000}"
    ns, here, there = f"icf{tag}", f"icf{tag}a", f"icf{tag}b"
    # A /30 on the pair only; the third octet from the pid keeps parallel runs apart.
    octet = os.getpid() % 250 + 1
    near, far = f"10.254.{octet}.1", f"10.254.{octet}.2"
    if _ip("-4", "addr", "show", "to", f"10.254.{octet}.0/30").stdout.strip():
        pytest.skip(f"10.254.{octet}.0/30 is in use on this machine")
    created = _ip("netns", "add", ns, check=False)
    _need(created.returncode == 0, f"ip netns add failed: {created.stderr.strip()}")
    try:
        _ip("link", "add", here, "type", "veth", "peer", "name", there)
        _ip("link", "set", there, "netns", ns)
        _ip("addr", "add", f"{near}/30", "dev", here)
        _ip("link", "set", here, "up")
        _ip("-n", ns, "addr", "add", f"{far}/30", "dev", there)
        _ip("-n", ns, "link", "set", there, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        wrapper = tmp_path / "sshd-in-netns"
        # nsenter, not `ip netns exec`: that one remounts /sys, hiding the cgroup files.
        wrapper.write_text(f'#!/bin/sh\nexec nsenter --net=/run/netns/{ns} {SSHD} "$@"\n')
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
        monkeypatch.setattr(fixtures_sshd, "SSHD", str(wrapper))
        server = SshdServer(root=tmp_path / "sshd", port=_free_port(), host=far)
        server.setup()
        server.start()
        try:
            yield server, here
        finally:
            server.stop()
    finally:
        _ip("link", "del", here, check=False)
        _ip("netns", "del", ns, check=False)


async def test_network_cut_and_restored(
    netns_sshd: tuple[SshdServer, str], container: str, tmp_path: Path
) -> None:
    server, veth = netns_sshd
    watch = await _watch(server, tmp_path)
    try:
        await _break_and_repair(
            watch,
            container,
            lambda: _ip("link", "set", veth, "down"),
            lambda: _ip("link", "set", veth, "up"),
            30,  # keepalive: 5 s x 2
        )
    finally:
        await watch.monitor.stop()

"""A fleet in one process: several hosts (sshd instances on loopback), one HostMonitor each.

The same docker engine stands behind every host here (one machine); what is under test is that
the monitors share one event loop without stepping on each other, and that one host's fault
stays that host's: the others stay connected and keep sampling.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import IN_CI
from fixtures_sshd import SSHD, SshdServer, _free_port
from incident_console.domain.events import ContainerSample, Event, LinkChange
from incident_console.monitor.host_monitor import HostMonitor
from incident_console.transport.targets import open_host
from sources_support import ALLOCATE, docker_or_skip, ensure_image, remove, run_container, wait_for

pytestmark = [pytest.mark.sshd, pytest.mark.docker, pytest.mark.slow]

HOSTS = 4


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[list[SshdServer]]:
    if not os.access(SSHD, os.X_OK):
        if IN_CI:
            pytest.fail(f"{SSHD} is required in CI")
        pytest.skip(f"{SSHD} is not installed")
    servers: list[SshdServer] = []
    try:
        for i in range(HOSTS):
            server = SshdServer(root=tmp_path / f"sshd{i}", port=_free_port())
            server.setup()
            server.start()
            servers.append(server)
        yield servers
    finally:
        for server in servers:
            server.stop()


async def test_fleet_one_host_down_others_carry_on(fleet: list[SshdServer]) -> None:
    docker_or_skip()
    ensure_image()
    cid, name = run_container(ALLOCATE.format(mib=4))
    monitors: list[HostMonitor] = []
    seen: list[list[Event]] = []
    try:
        for i, server in enumerate(fleet):
            # Each host its own name: the alias keeps journals and headers apart.
            host = open_host(server.target, **server.host_options())  # type: ignore[arg-type]
            monitor = HostMonitor(host, since=time.time())
            seen.append([])
            monitor.subscribe(seen[i].append)
            monitors.append(monitor)
        for monitor in monitors:
            await monitor.start()

        def samples(i: int, after: float = 0.0) -> int:
            return sum(
                1
                for e in seen[i]
                if isinstance(e, ContainerSample) and e.id == cid and e.time > after
            )

        await wait_for(
            lambda: all(samples(i) >= 3 for i in range(HOSTS)), 90, "every host's samples"
        )
        assert len({m.host.name for m in monitors}) == HOSTS

        def links(i: int) -> list[str]:
            return [e.state for e in seen[i] if isinstance(e, LinkChange)]

        fleet[0].stop()
        # Stale then reconnecting: the history, since a poll of the state can miss "stale".
        await wait_for(lambda: "stale" in links(0), 30, "host 0 stale")
        after = time.time()
        await wait_for(
            lambda: all(samples(i, after) >= 3 for i in range(1, HOSTS)), 30, "the others' samples"
        )
        assert all(m.state.link == "connected" for m in monitors[1:])
        assert all("stale" not in links(i) for i in range(1, HOSTS))
        assert not monitors[0].state.is_live

        fleet[0].start()
        await wait_for(lambda: monitors[0].state.link == "connected", 90, "host 0 back")
        back = time.time()
        await wait_for(lambda: samples(0, back) >= 3, 60, "host 0's samples again")
        assert all(not t.done() for m in monitors for t in m._tasks)
    finally:
        for monitor in monitors:
            await monitor.stop()
        remove(name)

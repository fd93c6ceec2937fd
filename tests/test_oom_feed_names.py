"""The OOM feed names the containers it lists, even ones removed before the console started.

Seen: old kills of removed containers showed as a bare id with "(-)". A removed container
keeps its name (and compose service) in the feed: the state remembers the names it saw (the
inventory, docker events, docker's destroy history at start); a kill nobody can name says
"(removed)".
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid

import pytest

from incident_console.domain.events import (
    ContainerGone,
    ContainerInfo,
    OomConstraint,
    OomKill,
    SourceStatus,
)
from incident_console.monitor.host_monitor import HostMonitor
from incident_console.monitor.state import HostState
from incident_console.sources.docker_events import DockerEventsSource
from incident_console.sources.kernel_log import KernelLogSource
from incident_console.transport.local import LocalHost
from incident_console.ui.widgets.panes import OomFeed
from sources_support import docker_or_skip, remove, run_container, wait_for

GONE_ID = "d" * 64
LIVE_ID = "e" * 64


def feed(state: HostState) -> list[str]:
    return [line.plain for line in OomFeed().lines(state, time.time())]


def kill_of(cid: str, t: float = 100.0, **names: str) -> OomKill:
    return OomKill(time=t, pid=7076, process="python3", constraint=OomConstraint.LIMIT,
                   container_id=cid, memcg=f"/docker/{cid}", source="dmesg", replayed=True,
                   **names)  # fmt: skip


def test_a_kill_replayed_before_its_name_is_known_gets_the_name_later() -> None:
    state = HostState("h")
    state.apply(SourceStatus(time=1.0, source="docker_events", method="docker-events"))
    state.apply(ContainerInfo(time=1.0, id=LIVE_ID, name="app-web-1", service="web",
                              state="running"))  # fmt: skip
    state.apply(kill_of(GONE_ID))
    state.apply(kill_of(LIVE_ID, 101.0))
    lines = feed(state)
    assert f"{GONE_ID[:12]} (removed) python3" in lines[1], lines
    assert "app-web-1 (web) python3" in lines[0], lines
    # docker's destroy history (or a destroy event) says whose it was.
    state.apply(ContainerGone(time=50.0, id=GONE_ID, name="old-worker-1", service="worker",
                              project="old"))  # fmt: skip
    assert state.oom_kills[0].container == "old-worker-1"
    assert state.oom_kills[0].service == "worker"
    assert "old-worker-1 (worker, removed) python3" in feed(state)[1]


def test_a_removed_container_keeps_its_name_after_its_view_is_forgotten() -> None:
    state = HostState("h")
    state.apply(ContainerInfo(time=1.0, id=GONE_ID, name="lab-backend-1", service="backend",
                              project="lab", state="running"))  # fmt: skip
    state.apply(ContainerGone(time=2.0, id=GONE_ID, name="lab-backend-1"))
    for i in range(60):  # more removals than the views kept: lab-backend-1's view goes
        cid = f"{i:064x}"
        state.apply(ContainerInfo(time=3.0, id=cid, name=f"c{i}", state="running"))
        state.apply(ContainerGone(time=4.0, id=cid, name=f"c{i}"))
    assert GONE_ID not in state.containers
    state.apply(kill_of(GONE_ID))
    assert "lab-backend-1 (backend, removed) python3" in feed(state)[0]


def oom_killed_and_removed(name: str, tag: str) -> str:
    """A named compose-labelled container, OOM-killed for real under 32 MiB, then removed."""
    grow = "b = []\nwhile True: b.append(bytearray(4 * 1024 * 1024)); b[-1][::4096] = b'x' * 1024\n"
    cid, _ = run_container(
        grow, "--memory", "32m", "--memory-swap", "32m",
        "--label", "com.docker.compose.service=oomsvc",
        "--label", f"com.docker.compose.project=icts-oomfeed-{tag}",
        name=name,
    )  # fmt: skip
    waited = subprocess.run(
        ["docker", "wait", name], capture_output=True, text=True, timeout=120, check=True
    )
    assert waited.stdout.strip() == "137"  # SIGKILL: the kernel's OOM killer
    inspect = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.OOMKilled}}", name],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert inspect.stdout.strip() == "true"
    subprocess.run(["docker", "rm", name], capture_output=True, check=True, timeout=60)
    return cid


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="reading the kernel log needs root (dmesg_restrict)")
async def test_a_real_kill_of_a_container_removed_before_the_monitor_started() -> None:
    docker_or_skip()
    tag = uuid.uuid4().hex[:8]
    name = f"icts-oomfeed-{tag}"
    monitor: HostMonitor | None = None
    try:
        cid = await asyncio.to_thread(oom_killed_and_removed, name, tag)
        await asyncio.sleep(3)  # past the kernel log's replay slack: a kill from before

        # Only now does the console start: the inventory never sees the container.
        monitor = HostMonitor(
            LocalHost(), read_only=True, sources=[DockerEventsSource(), KernelLogSource()]
        )
        await monitor.start()
        state = monitor.state

        def ours() -> list[OomKill]:
            return [k for k in state.oom_kills if k.container_id == cid and k.container]

        await wait_for(ours, 60, "our kill, replayed from the kernel log and named")
        assert cid not in state.containers or state.containers[cid].gone
        kill = ours()[0]
        assert kill.replayed and kill.container == name and kill.service == "oomsvc"
        lines = [line for line in feed(state) if name in line]
        assert lines and f"{name} (oomsvc, removed) python3" in lines[0], feed(state)
    finally:
        if monitor is not None:
            await asyncio.wait_for(monitor.stop(), 30)
        remove(name)

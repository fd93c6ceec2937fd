"""Link faults against a real sshd: a killed server, a silent link; streams carry on by themselves."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import IN_CI
from fixtures_sshd import SSHD, SshdServer, _free_port, descendants
from incident_console.transport.base import ConnectionState, LinkState
from incident_console.transport.ssh import SshHost

TICKER = ["sh", "-c", 'i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.2; done']


def _docker_works() -> bool:
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        done = None
    if done is None or done.returncode != 0:
        if IN_CI:
            pytest.fail("docker engine not available in CI")
        return False
    return True


@pytest.fixture
def own_sshd(tmp_path: Path) -> Iterator[SshdServer]:
    """A private sshd this test may kill and restart without disturbing others."""
    if not os.access(SSHD, os.X_OK):
        if IN_CI:
            pytest.fail(f"{SSHD} is required in CI")
        pytest.skip(f"{SSHD} is not installed")
    server = SshdServer(root=tmp_path / "sshd", port=_free_port())
    server.setup()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def _wait_for(predicate: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.1)
    return False


async def _collect(host: SshHost, sink: asyncio.Queue[str]) -> None:
    async for line in host.stream(TICKER):
        await sink.put(line)


async def _next_lines(queue: asyncio.Queue[str], n: int, seconds: float) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + seconds
    while len(got) < n:
        got.append(await asyncio.wait_for(queue.get(), max(0.1, deadline - time.monotonic())))
    return got


def _drain(queue: asyncio.Queue[str]) -> None:
    while not queue.empty():
        queue.get_nowait()


@pytest.mark.sshd
async def test_server_killed_mid_stream_reconnects_and_stream_resumes(
    own_sshd: SshdServer,
) -> None:
    host = await own_sshd.connect_host()
    states: list[ConnectionState] = []
    host.on_state(states.append)
    queue: asyncio.Queue[str] = asyncio.Queue()
    consumer = asyncio.create_task(_collect(host, queue))
    try:
        assert len(await _next_lines(queue, 3, 15)) == 3
        docker_client = await host.docker() if _docker_works() else None

        killed_at = time.time()
        own_sshd.stop()  # the daemon and its session processes, SIGKILL
        assert await _wait_for(lambda: any(s.state is LinkState.STALE for s in states), 15)
        stale = next(s for s in states if s.state is LinkState.STALE)
        assert killed_at - 1 <= stale.since <= time.time()
        assert stale.reason

        own_sshd.start()
        assert await _wait_for(lambda: host.state.state is LinkState.CONNECTED, 60)
        seen = [s.state for s in states]
        assert seen.index(LinkState.STALE) < seen.index(LinkState.RECONNECTING)
        assert seen[-1] is LinkState.CONNECTED

        # The same iterator goes on by itself: the command was started again ("tick 1").
        _drain(queue)
        fresh = await _next_lines(queue, 3, 30)
        assert all(line.startswith("tick ") for line in fresh)
        assert not consumer.done()

        if docker_client is not None:
            # The forward came back on the same local path: the old client still works.
            assert await asyncio.to_thread(docker_client.ping)
            assert await host.docker() is docker_client
    finally:
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
        await host.close()
    assert host.state.state is LinkState.CLOSED


@pytest.mark.sshd
async def test_silent_link_turns_stale_by_keepalive(own_sshd: SshdServer) -> None:
    host = await own_sshd.connect_host()
    states: list[ConnectionState] = []
    host.on_state(states.append)
    assert own_sshd.proc is not None
    sessions = descendants(own_sshd.proc.pid)
    assert sessions, "the connection has its sshd session processes"
    # Freeze the server side of the link: no FIN, no RST, just silence (a dead network).
    for pid in sessions:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
    try:
        frozen_at = time.monotonic()
        assert await _wait_for(lambda: any(s.state is LinkState.STALE for s in states), 20)
        # Keepalive: 5 s interval, 2 unanswered probes.
        assert time.monotonic() - frozen_at <= 17
        # The listener is alive: a new connection comes up.
        assert await _wait_for(lambda: host.state.state is LinkState.CONNECTED, 30)
        assert (await host.run(["echo", "back"])).stdout == "back\n"
    finally:
        for pid in sessions:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                os.kill(pid, signal.SIGCONT)
        await host.close()

"""The stats source against the real engine: one sampler, numbers like `docker stats`, no forks."""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
from collections.abc import AsyncIterator, Sequence

import pytest

from incident_console.domain.events import ContainerProcesses, ContainerSample, Event
from incident_console.monitor.state import HostState
from incident_console.sources.docker_events import DockerEventsSource
from incident_console.sources.stats import StatsSource
from incident_console.transport.base import Process
from incident_console.transport.local import LocalHost
from sources_support import ALLOCATE, docker_or_skip, ensure_image, remove, run_container, wait_for

pytestmark = [pytest.mark.docker]

_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


def docker_stats_bytes(name: str) -> int:
    out = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", name],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    match = re.match(r"([\d.]+)(B|KiB|MiB|GiB)", out.strip())
    assert match, out
    return int(float(match.group(1)) * _UNITS[match.group(2)])


class Watched:
    """LocalHost + HostState + the docker events and stats sources, running."""

    def __init__(self, stats: StatsSource, host: LocalHost) -> None:
        self.host = host
        self.state = HostState("local")
        self.stats = stats
        self.events: list[Event] = []
        self.tasks: list[asyncio.Task[None]] = []

    def emit(self, event: Event) -> None:
        self.state.apply(event)
        self.events.append(event)

    def samples(self, cid: str) -> list[ContainerSample]:
        return [e for e in self.events if isinstance(e, ContainerSample) and e.id == cid]


@contextlib.asynccontextmanager
async def watched(
    stats: StatsSource | None = None, host: LocalHost | None = None
) -> AsyncIterator[Watched]:
    docker_or_skip()
    ensure_image()
    w = Watched(stats or StatsSource(), host or LocalHost())
    await w.host.connect()
    w.tasks.append(asyncio.create_task(DockerEventsSource().run(w.host, w.state, w.emit)))
    w.tasks.append(asyncio.create_task(w.stats.run(w.host, w.state, w.emit)))
    try:
        yield w
    finally:
        for task in w.tasks:
            task.cancel()
        for task in w.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await w.host.close()


@pytest.mark.parametrize("method", ["awk-sampler", "sh-sampler"])
async def test_memory_matches_docker_stats_and_containers_come_and_go(method: str) -> None:
    first = second = ""
    try:
        cid, first = run_container(ALLOCATE.format(mib=48), "--memory", "256m")
        async with watched(StatsSource(methods=(method,))) as w:
            await wait_for(lambda: len(w.samples(cid)) >= 2, 30, f"samples of {first}")
            starts = w.stats.starts
            ours = w.samples(cid)[-1].memory_used_bytes
            theirs = docker_stats_bytes(first)
            assert abs(ours - theirs) <= 0.05 * theirs, (ours, theirs)
            assert ours > 48 * 1024**2
            assert w.samples(cid)[-1].memory_limit_bytes == 256 * 1024**2

            def procs() -> list[ContainerProcesses]:
                return [e for e in w.events if isinstance(e, ContainerProcesses) and e.id == cid]

            # Processes are listed on the first tick after a `set` and every 5th tick: the first
            # list may predate the allocation, a later one must show it.
            def grown() -> list[ContainerProcesses]:
                return [
                    e for e in procs() if e.processes and e.processes[0].rss_bytes > 48 * 1024**2
                ]

            await wait_for(grown, 15, "the container's processes with their 48 MiB")
            assert grown()[-1].processes[0].name == "python3"

            # A container started later is sampled by the same sampler process.
            cid2, second = run_container(ALLOCATE.format(mib=16))
            await wait_for(lambda: len(w.samples(cid2)) >= 1, 30, f"samples of {second}")
            assert cid2 in w.stats.sampled_ids
            remove(second)
            await wait_for(lambda: cid2 not in w.stats.sampled_ids, 30, f"{second} dropped")
            assert w.stats.starts == starts, "the sampler was restarted instead of re-set"
            status = w.state.sources["stats"]
            assert status.ok and status.method == method
    finally:
        remove(*(n for n in (first, second) if n))


async def test_sampler_restarts_after_it_dies() -> None:
    name = ""
    try:
        cid, name = run_container(ALLOCATE.format(mib=8))
        async with watched() as w:
            await wait_for(lambda: len(w.samples(cid)) >= 1, 30, "first samples")
            assert w.stats.process is not None
            await w.stats.process.close()  # as a dropped link would end it
            count = len(w.samples(cid))
            await wait_for(lambda: len(w.samples(cid)) > count + 1, 30, "samples after restart")
            assert w.stats.starts >= 2
            assert any(
                getattr(e, "source", "") == "stats" and not getattr(e, "ok", True) for e in w.events
            )
    finally:
        if name:
            remove(name)


class NamespacedHost(LocalHost):
    """Starts long-lived processes as pid 1 of a new pid namespace, to count their forks."""

    def __init__(self) -> None:
        super().__init__()
        self.leaders: list[int] = []

    async def start(self, argv: Sequence[str]) -> Process:
        process = await super().start(["unshare", "--pid", "--fork", "--kill-child", *argv])
        self.leaders.append(process._proc.pid)  # type: ignore[attr-defined]
        return process


def forks_in_namespace(unshare_pid: int, measured: int = 0) -> int:
    """How many processes the namespace's pid 1 has forked so far.

    pids in a fresh namespace are handed out in order; the `cat` we enter with takes the next
    one and reads it back from ns_last_pid: 1 (the sampler) + forks + our `measured` earlier
    cats + 1 (this cat).
    """
    with open(f"/proc/{unshare_pid}/task/{unshare_pid}/children") as f:
        children = f.read().split()
    assert len(children) == 1, children
    out = subprocess.run(
        ["nsenter", "-t", children[0], "--pid", "--", "cat", "/proc/sys/kernel/ns_last_pid"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return int(out) - 2 - measured


async def test_forks_are_counted_in_the_namespace() -> None:
    """The control: the counting method sees an awk that forks a `cat` per tick."""
    docker_or_skip()
    host = NamespacedHost()
    forking = 'BEGIN { for (i = 0; i < 5; i++) { "cat /proc/uptime" | getline x; close("cat /proc/uptime") } }'
    process = await host.start(["awk", forking + " { print }"])
    await asyncio.sleep(1.0)
    try:
        assert forks_in_namespace(host.leaders[0]) >= 5
    finally:
        await process.close()


@pytest.mark.slow
async def test_steady_sampling_starts_no_process() -> None:
    name = ""
    try:
        cid, name = run_container(ALLOCATE.format(mib=8))
        host = NamespacedHost()
        async with watched(StatsSource(methods=("awk-sampler",)), host) as w:
            await wait_for(lambda: len(w.samples(cid)) >= 3, 30, "samples")
            leader = host.leaders[-1]
            before = forks_in_namespace(leader)
            frames_before = len(w.samples(cid))
            await asyncio.sleep(60)
            assert len(w.samples(cid)) - frames_before >= 50
            assert forks_in_namespace(leader, measured=1) == before == 0
    finally:
        if name:
            remove(name)

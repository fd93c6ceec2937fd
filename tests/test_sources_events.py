"""Kernel log, docker events, logs and probe sources against real components."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import os
import shutil
import threading
import time
from collections.abc import AsyncIterator

import pytest

from incident_console.domain.events import (
    ContainerEvent,
    ContainerGone,
    Event,
    HealthChange,
    LogLine,
    LogSignal,
    OomConstraint,
    OomKill,
    ProbeResult,
    SourceStatus,
)
from incident_console.monitor.state import HostState
from incident_console.sources.base import Source
from incident_console.sources.docker_events import DockerEventsSource
from incident_console.sources.kernel_log import KernelLogSource
from incident_console.sources.logs import LogFollower
from incident_console.sources.probes import ProbeSource
from incident_console.transport.local import LocalHost
from sources_support import docker_or_skip, ensure_image, remove, run_container, wait_for


class Running:
    def __init__(self) -> None:
        self.host = LocalHost()
        self.state = HostState("local")
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.state.apply(event)
        self.events.append(event)

    def of(self, kind: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]

    def lines_of(self, cid: str) -> list[LogLine]:
        return [e for e in self.events if isinstance(e, LogLine) and e.id == cid]

    def texts_of(self, cid: str) -> list[str]:
        return [e.text for e in self.lines_of(cid)]


@contextlib.asynccontextmanager
async def running(*sources: Source, docker: bool = True) -> AsyncIterator[Running]:
    if docker:
        docker_or_skip()
        ensure_image()
    r = Running()
    await r.host.connect()
    tasks = [asyncio.create_task(s.run(r.host, r.state, r.emit)) for s in sources]
    try:
        yield r
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await r.host.close()


@contextlib.asynccontextmanager
async def following(
    code: str, logs: LogFollower, *also: str
) -> AsyncIterator[tuple[Running, str, str]]:
    """A container running `code`, the inventory and `logs` following it (and `also`)."""
    name = ""
    try:
        cid, name = run_container(code)
        async with running(DockerEventsSource(), logs) as r:
            await wait_for(lambda: cid in r.state.containers, 30, "inventory")
            logs.follow([cid, *also])
            yield r, cid, name
    finally:
        if name:
            remove(name)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="reading the kernel log needs root (dmesg_restrict)")
async def test_kernel_log_attributes_a_real_oom_kill() -> None:
    start = time.time()
    name = ""
    kernel = KernelLogSource(since=start)
    try:
        async with running(DockerEventsSource(since=start), kernel) as r:
            # A kill the console sees live (its history replayed first): the kernel's stamps
            # drift from the wall clock, so only arrival tells live from replayed.
            await wait_for(lambda: kernel.live, 30, "the kernel log's replay to end")
            grow = "b = []\nwhile True: b.append(bytearray(8 * 1024 * 1024)); b[-1][::4096] = b'x' * 2048\n"
            cid, name = run_container(grow, "--memory", "48m", "--memory-swap", "48m")

            def ours() -> list[OomKill]:
                return [
                    k for k in r.of(OomKill) if isinstance(k, OomKill) and k.container_id == cid
                ]

            await wait_for(ours, 60, "the kernel's OOM kill of our container")
            kill = ours()[0]
            assert kill.container == name
            assert kill.process == "python3"
            assert kill.constraint is OomConstraint.LIMIT
            assert not kill.replayed
            assert kill.time >= start - 1
            assert kill.source == "dmesg"
            # Kills from before `since` (earlier tests, the lab) were left out.
            assert all(k.time >= start for k in r.of(OomKill) if isinstance(k, OomKill))
    finally:
        if name:
            remove(name)


async def test_kernel_log_says_why_when_dmesg_is_denied() -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv missing")
    with open("/proc/sys/kernel/dmesg_restrict") as f:  # noqa: ASYNC230 - one tiny read
        restricted = f.read().strip() == "1"
    if not restricted:
        pytest.skip("kernel.dmesg_restrict is 0 here: an unprivileged dmesg is not denied")
    source = KernelLogSource(retry_s=3600)
    unprivileged = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    source.dmesg_argv = (*unprivileged, *source.dmesg_argv)
    source.journal_probe_argv = (*unprivileged, *source.journal_probe_argv)
    source.journal_argv = (*unprivileged, *source.journal_argv)
    async with running(source, docker=False) as r:
        await wait_for(lambda: r.state.sources.get("kernel_log"), 30, "a status")
        status = r.state.sources["kernel_log"]
        assert not status.ok
        assert status.detail.startswith("dmesg denied (kernel.dmesg_restrict=1)")
        assert "docker oom events" in status.detail


async def test_docker_events_health_and_exit_code() -> None:
    name = ""
    code = (
        "import time, os\n"
        "open('/tmp/ok', 'w').close()\n"
        "time.sleep(5); os.remove('/tmp/ok')\n"
        "time.sleep(5); raise SystemExit(7)\n"
    )
    try:
        async with running(DockerEventsSource()) as r:
            await wait_for(lambda: r.state.sources.get("docker_events"), 30, "inventory")
            cid, name = run_container(
                code,
                "--health-cmd", "test -f /tmp/ok", "--health-interval", "1s",
                "--health-retries", "1", "--health-start-period", "0s",
                "--label", "com.docker.compose.service=icts-svc",
            )  # fmt: skip

            def changes() -> list[str]:
                return [
                    e.new for e in r.of(HealthChange) if isinstance(e, HealthChange) and e.id == cid
                ]

            await wait_for(lambda: "unhealthy" in changes(), 40, "healthy then unhealthy")
            assert changes().index("healthy") < changes().index("unhealthy")
            unhealthy = next(
                e for e in r.of(HealthChange)
                if isinstance(e, HealthChange) and e.id == cid and e.new == "unhealthy"
            )  # fmt: skip
            assert unhealthy.old == "healthy" and unhealthy.service == "icts-svc"
            assert unhealthy.failing_streak >= 1

            def died() -> list[ContainerEvent]:
                return [
                    e for e in r.of(ContainerEvent)
                    if isinstance(e, ContainerEvent) and e.id == cid and e.action == "die"
                ]  # fmt: skip

            await wait_for(died, 30, "the die event")
            assert died()[0].exit_code == 7
            # The die event comes first; the re-inspected facts follow it.
            await wait_for(lambda: r.state.containers[cid].info.state == "exited", 30, "exited")
            assert r.state.containers[cid].info.service == "icts-svc"
            remove(name)
            await wait_for(lambda: any(
                isinstance(e, ContainerGone) and e.id == cid for e in r.events), 30, "gone")  # fmt: skip
            assert r.state.containers[cid].gone
    finally:
        if name:
            remove(name)


async def test_logs_are_sanitized_and_capped() -> None:
    code = (
        "import sys, time\n"
        "sys.stdout.write(''.join(f'flood {i}\\n' for i in range(3000))); sys.stdout.flush()\n"
        "time.sleep(1.5)\n"
        "print('\\x1b[2Jcleared [bold red]x[/]')\n"
        "print('[2024-01-01] [9] [CRITICAL] WORKER TIMEOUT (pid:12)', flush=True)\n"
        "time.sleep(600)\n"
    )
    logs = LogFollower(tail=10000, max_lines_per_batch=100)
    async with following(code, logs) as (r, cid, name):
        await wait_for(lambda: any("WORKER TIMEOUT" in t for t in r.texts_of(cid)), 30, "the end")
        texts = r.texts_of(cid)
        assert "cleared [bold red]x[/]" in texts  # escape gone, markup kept as text
        assert not any("\x1b" in t for t in texts)
        timeout_line = next(e for e in r.lines_of(cid) if "WORKER TIMEOUT" in e.text)
        assert timeout_line.signal is LogSignal.WORKER_TIMEOUT
        dropped = [t for t in texts if t.startswith("[… ") and t.endswith(" lines dropped]")]
        assert dropped, "a 3000-line burst with a cap of 100 per batch must drop lines"
        shown = len([t for t in texts if t.startswith("flood ")])
        counted = sum(int(t.split()[1]) for t in dropped)
        assert shown + counted == 3000
        assert all(e.container == name for e in r.lines_of(cid))
        # A removed container ends its follower quietly.
        remove(name)
        await wait_for(lambda: cid not in logs.following, 30, "the follower to end")
        assert r.state.sources["logs"].ok


async def test_a_dying_containers_last_lines_arrive_and_a_gone_one_is_not_asked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Its last lines are what the on-call engineer needs; they come just before the stream
    # ends. A container followed but not (or no longer) running must not be asked for its
    # logs at every batch: each ask is an API request (and an SSH channel) on the server.
    from incident_console.sources import logs as logs_module

    streams: list[str] = []
    final_reads: list[str] = []

    class Counted(logs_module._Follower):
        def __init__(self, client: object, cid: str, *args: object, follow: bool = True) -> None:
            (streams if follow else final_reads).append(cid)
            super().__init__(client, cid, *args, follow=follow)  # type: ignore[arg-type]

    monkeypatch.setattr(logs_module, "_Follower", Counted)
    code = (
        "import sys, time\n"
        "print('starting', flush=True)\n"
        "time.sleep(2)\n"
        "print('Traceback (most recent call last):')\n"
        "print('last words', flush=True)\n"
        "sys.exit(3)\n"
    )
    logs = LogFollower(tail=100)
    # The second id is no container at all.
    async with following(code, logs, "0123456789ab") as (r, cid, _):
        await wait_for(
            lambda: any(isinstance(e, ContainerEvent) and e.action == "die" for e in r.events),
            30,
            "the container to die",
        )
        # No fixed delay: a loaded dockerd answers late; what matters is that they come.
        await wait_for(lambda: "last words" in r.texts_of(cid), 20, "the last lines")
        await asyncio.sleep(0.5)  # nothing more (no repeat) after them
        assert r.texts_of(cid) == ["starting", "Traceback (most recent call last):", "last words"]
        before = len(streams)
        await asyncio.sleep(3.0)  # 40 batches
        assert len(streams) == before, f"asked again for {streams[before:]}"
        assert "0123456789ab" not in streams + final_reads
        # Once stopped, its log is read once more (dockerd may end a stream early).
        assert final_reads == [cid]


async def test_a_restarted_container_resumes_where_its_stream_ended_without_repeats() -> None:
    # docker restart ends the follow stream; the new one starts from the last line read.
    # dockerd's `since` is inclusive and was truncated to whole seconds: the lines of that
    # second came twice. Each run prints its own token so every line is unique.
    code = (
        "import time, uuid\n"
        "run = uuid.uuid4().hex[:8]\n"
        "for i in range(20):\n"
        "    print(f'{run} {i}', flush=True)\n"
        "    time.sleep(0.02)\n"
        "time.sleep(600)\n"
    )
    logs = LogFollower(tail=100)
    async with following(code, logs) as (r, cid, name):
        await wait_for(lambda: len(r.texts_of(cid)) >= 20, 30, "the first run's lines")
        proc = await asyncio.create_subprocess_exec(
            "docker", "restart", "-t", "0", name, stdout=asyncio.subprocess.DEVNULL
        )
        assert await proc.wait() == 0
        await wait_for(lambda: len(r.texts_of(cid)) >= 40, 30, "the second run's lines")
        await asyncio.sleep(1.0)  # a repeat would come with them
        lines = r.texts_of(cid)
        assert len(lines) == len(set(lines)) == 40, lines
        runs = {line.split()[0] for line in lines}
        assert len(runs) == 2
        for run in runs:
            assert [line for line in lines if line.startswith(run)] == [
                f"{run} {i}" for i in range(20)
            ]


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.send_response(200 if self.path == "/ok" else 503)
        self.end_headers()
        self.wfile.write(b"x")

    def log_message(self, *args: object) -> None:
        pass


async def test_probes_report_status_latency_and_errors() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    closed = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    dead_port = closed.server_address[1]
    closed.server_close()
    urls = [f"http://127.0.0.1:{port}/ok", f"http://127.0.0.1:{port}/bad",
            f"http://127.0.0.1:{dead_port}/"]  # fmt: skip
    try:
        async with running(ProbeSource(urls, interval=0.5, timeout=2.0), docker=False) as r:
            await wait_for(lambda: len(r.of(ProbeResult)) >= 6, 20, "two rounds of probes")
    finally:
        server.shutdown()
        server.server_close()
    results = {e.url: e for e in r.of(ProbeResult) if isinstance(e, ProbeResult)}
    ok, bad, dead = (results[u] for u in urls)
    assert ok.ok and ok.status == 200 and ok.latency_ms is not None
    assert not bad.ok and bad.status == 503
    assert dead.status is None and dead.error and not dead.ok
    assert any(isinstance(e, SourceStatus) and e.source == "probes" for e in r.events)

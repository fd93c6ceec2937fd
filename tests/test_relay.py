"""The relay between serve's collection and its viewers: same state, read-only, ends with serve."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from incident_console.config import Settings
from incident_console.domain.events import (
    ContainerEvent,
    ContainerGone,
    ContainerInfo,
    ContainerProcesses,
    ContainerSample,
    Event,
    HealthChange,
    HostMemory,
    LinkChange,
    LogLine,
    LogSignal,
    OomConstraint,
    OomKill,
    ProbeResult,
    ProcessRss,
    SourceStatus,
    event_from_record,
)
from incident_console.monitor.changes import Change, ReadOnlyError
from incident_console.monitor.host_monitor import HostMonitor
from incident_console.monitor.relay import RelayConnection, RelayServer
from incident_console.monitor.relay_state import state_from_snapshot, state_snapshot
from incident_console.monitor.state import HostState
from incident_console.transport.local import LocalHost
from incident_console.ui.app import make_app

THEMES = Path(__file__).resolve().parents[1] / "themes"
A, B = "a" * 64, "b" * 64


def _events() -> list[Event]:
    return [
        LinkChange(time=1.0, state="connected"),
        SourceStatus(time=1.0, source="stats", method="awk-sampler"),
        ContainerInfo(
            time=1.0,
            id=A,
            name="app-backend-1",
            service="backend",
            state="running",
            health="healthy",
            config_files=("/srv/app/compose.yml",),
        ),  # fmt: skip
        ContainerInfo(time=1.0, id=B, name="app-db-1", service="db", state="running"),
        *(
            ContainerSample(
                time=2.0 + n,
                id=A,
                memory_used_bytes=100 + n,
                memory_limit_bytes=256 << 20,
                cpu_percent=1.5,
            )  # fmt: skip
            for n in range(5)
        ),
        HostMemory(
            time=3.0,
            total_bytes=8 << 30,
            available_bytes=2 << 30,
            swap_total_bytes=0,
            swap_free_bytes=0,
            psi_some_avg10=0.5,
        ),  # fmt: skip
        ContainerProcesses(time=4.0, id=A, processes=(ProcessRss(7, "gunicorn", 90 << 20),)),
        OomKill(
            time=5.0,
            pid=7,
            process="gunicorn",
            constraint=OomConstraint.LIMIT,
            container_id=A,
            container="app-backend-1",
            raw=("oom-kill:...",),
        ),  # fmt: skip
        HealthChange(
            time=6.0,
            id=A,
            name="app-backend-1",
            service="backend",
            old="healthy",
            new="unhealthy",
            failing_streak=3,
        ),  # fmt: skip
        ContainerEvent(
            time=6.5, id=A, name="app-backend-1", service="backend", action="die", exit_code=137
        ),  # fmt: skip
        LogLine(
            time=7.0,
            id=A,
            container="app-backend-1",
            text="Worker (pid:7) was sent SIGKILL!",
            signal=LogSignal.WORKER_KILLED,
        ),  # fmt: skip
        ProbeResult(time=8.0, url="http://127.0.0.1/", status=None, latency_ms=None, error="x"),
        ContainerGone(time=9.0, id=B, name="app-db-1"),
    ]


def test_every_event_comes_back_from_its_record() -> None:
    for event in _events():
        assert event_from_record(json.loads(json.dumps(event.to_record()))) == event
    with pytest.raises(ValueError, match="not an event record"):
        event_from_record({"kind": "nonsense"})


def test_a_snapshot_is_the_same_state() -> None:
    state = HostState("prod")
    for event in _events():
        state.apply(event)
    copy = state_from_snapshot(json.loads(json.dumps(state_snapshot(state))))
    assert copy == state
    # ...and it goes on as the original does.
    more = LogLine(time=10.0, id=A, container="app-backend-1", text="after")
    state.apply(more)
    copy.apply(more)
    assert copy == state
    with pytest.raises(ValueError, match="not a host state snapshot"):
        state_from_snapshot({"name": "x"})


async def _viewer(path: Path) -> RelayConnection:
    # open() blocks (the console builds its first frame from it): not on this loop's thread.
    return await asyncio.to_thread(RelayConnection.open, path)


async def test_a_viewer_starts_from_the_state_then_follows_the_events(tmp_path: Path) -> None:
    monitor = HostMonitor(LocalHost(), sources=[], read_only=True)
    for event in _events()[:6]:
        monitor.record(event)
    relay = RelayServer([monitor])
    await relay.start(tmp_path / "relay.sock")
    assert (tmp_path / "relay.sock").stat().st_mode & 0o777 == 0o600
    try:
        viewer = await _viewer(tmp_path / "relay.sock")
        (seen,) = viewer.monitors
        assert seen.host.name == "local" and seen.read_only
        assert seen.state == monitor.state
        closed: list[str] = []
        viewer.on_closed = closed.append
        await seen.start()
        for event in _events()[6:]:
            monitor.record(event)
        for _ in range(100):
            if seen.state.version == monitor.state.version:
                break
            await asyncio.sleep(0.05)
        assert seen.state == monitor.state
        assert seen.host.state.state.value == "connected"
        # Read-only: refused here, and by serve for a viewer that asks anyway.
        with pytest.raises(ReadOnlyError, match="viewer: read-only"):
            await seen.change(Change.restart(A))
        seen.read_only = False
        with pytest.raises(ReadOnlyError, match="viewer: read-only"):
            await seen.change(Change.restart(A))
        assert relay.viewers == 1
        await relay.close()  # serve stops: the viewer is told, and its console ends on it
        for _ in range(100):
            if closed:
                break
            await asyncio.sleep(0.05)
        assert closed == ["serve closed the relay"]
    finally:
        await relay.close()


async def test_nothing_but_a_relay_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "other.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)

    def talk_nonsense() -> None:
        conn, _ = listener.accept()
        conn.sendall(b'{"type": "greetings"}\n')
        conn.close()

    try:
        task = asyncio.create_task(asyncio.to_thread(talk_nonsense))
        with pytest.raises(OSError, match="not a relay"):
            await _viewer(path)
        await task
        with pytest.raises(OSError, match="relay"):
            await _viewer(tmp_path / "missing.sock")
    finally:
        listener.close()


async def test_a_viewer_console_has_no_mutating_keys_and_no_walkthrough(tmp_path: Path) -> None:
    monitor = HostMonitor(LocalHost(), sources=[], read_only=True)
    for event in _events():
        monitor.record(event)
    relay = RelayServer([monitor])
    await relay.start(tmp_path / "relay.sock")
    try:
        viewer = await _viewer(tmp_path / "relay.sock")
        app = make_app(Settings(read_only=True), viewer.monitors, theme_dirs=[THEMES])
        async with app.run_test(size=(160, 45)) as pilot:
            await pilot.pause()
            assert app.check_action("restart", ()) is False
            assert app.check_action("runbook", ()) is False
            assert app.check_action("help", ()) is True
            table = app.active_dashboard.table
            assert table.get_cell(A, "name").plain == "app-backend-1"
            # The detail screen reads the same state (no host of its own behind it).
            table.move_cursor(row=table._keys.index(A))
            await pilot.press("enter")
            await pilot.pause()
            assert type(app.screen).__name__ == "ContainerDetailScreen"
            assert app.screen.container_id == A  # type: ignore[attr-defined]
            assert "READ-ONLY" in str(app.screen.query_one("HostHeader").render())
            await pilot.press("escape")
            await pilot.pause()
            await pilot.press("q")
    finally:
        await relay.close()


async def test_allowed_changes_go_through_serves_monitor_and_its_journal(tmp_path: Path) -> None:
    """With --allow-changes a viewer's restart is done by serve's HostMonitor, journaled."""
    from incident_console.monitor.journal import Journal
    from incident_console.sources.docker_events import DockerEventsSource
    from sources_support import docker_or_skip, remove, run_container, wait_for

    docker_or_skip()
    cid, name = run_container("import time\ntime.sleep(600)\n")
    journal = Journal(tmp_path / "journal.jsonl")
    monitor = HostMonitor(LocalHost(), journal=journal, sources=[DockerEventsSource()])
    relay = RelayServer([monitor], allow_changes=True)
    try:
        await monitor.start()
        await wait_for(lambda: cid in monitor.state.containers, 30, "the inventory")
        await relay.start(tmp_path / "relay.sock")
        viewer = await _viewer(tmp_path / "relay.sock")
        (seen,) = viewer.monitors
        assert not seen.read_only
        await seen.start()
        before = monitor.state.containers[cid].info.started_at
        await seen.change(Change.restart(cid))
        await wait_for(
            lambda: monitor.state.containers[cid].info.started_at != before, 30, "the restart"
        )
        await wait_for(lambda: seen.state.containers[cid].info.started_at != before, 10, "relay")
    finally:
        await relay.close()
        await monitor.stop()
        journal.close()
        remove(name)
    actions = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    restarts = [a for a in actions if a.get("what") == "restart container"]
    assert [(a["container"], a["error"]) for a in restarts] == [(name, "")]

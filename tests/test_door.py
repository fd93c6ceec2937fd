"""The one door (HostMonitor.change) on a real LocalHost: refusals, confirmation, the journal.

Commands really run (or must not): a `touch` of a file in a temp folder is the witness, as
the compose write is for writes. Restarts are refused before docker is reached, so no engine is
needed for the read-only cases.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from incident_console.domain.events import SourceStatus
from incident_console.monitor import host_monitor
from incident_console.monitor.changes import (
    Change,
    ChangeDeclined,
    ChangeRefused,
    NotReadOnlyCommand,
    ReadOnlyError,
)
from incident_console.monitor.host_monitor import HostMonitor
from incident_console.monitor.journal import Journal, operator, read_journal
from incident_console.monitor.state import HostState
from incident_console.sources.base import Emit, Source
from incident_console.transport.base import Host
from incident_console.transport.local import LocalHost

FAKE_ID = "f" * 64


async def _monitor(tmp_path: Path, *, read_only: bool) -> tuple[HostMonitor, Journal]:
    journal = Journal(tmp_path / f"journal-{'ro' if read_only else 'rw'}.jsonl")
    monitor = HostMonitor(LocalHost(), journal=journal, sources=[], read_only=read_only)
    await monitor.start()
    return monitor, journal


@pytest.fixture
async def read_only(tmp_path: Path) -> AsyncIterator[HostMonitor]:
    monitor, journal = await _monitor(tmp_path, read_only=True)
    yield monitor
    await monitor.stop()
    journal.close()


@pytest.fixture
async def writable(tmp_path: Path) -> AsyncIterator[HostMonitor]:
    monitor, journal = await _monitor(tmp_path, read_only=False)
    yield monitor
    await monitor.stop()
    journal.close()


def _records(monitor: HostMonitor, kind: str) -> list[dict[str, Any]]:
    assert monitor.journal is not None
    monitor.journal.close()  # flushes; the next write reopens it
    return [r for r in read_journal(monitor.journal.path) if r.get("kind") == kind]


def _changes(tmp_path: Path) -> dict[str, Change]:
    target = tmp_path / "compose.yml"
    target.write_text("services: {}\n")
    return {
        "command": Change.command(["touch", str(tmp_path / "witness")], why="test"),
        "write": Change.write(str(target), "changed\n", diff="-services: {}\n+changed\n"),
        "restart": Change.restart(FAKE_ID, container="backend-1"),
    }


async def test_read_only_refuses_every_kind_and_journals_the_refusal(
    read_only: HostMonitor, tmp_path: Path
) -> None:
    asked: list[Change] = []

    async def confirm(change: Change) -> bool:
        asked.append(change)
        return True

    for kind, change in _changes(tmp_path).items():
        with pytest.raises(ReadOnlyError) as refused:
            await read_only.change(change, confirm=confirm)
        message = str(refused.value)
        assert message.startswith("local is read-only: ") and "\n" not in message, message
        assert change.what in message, kind
    assert asked == [], "a read-only door asks nothing"
    assert not (tmp_path / "witness").exists()
    assert (tmp_path / "compose.yml").read_text() == "services: {}\n"
    records = _records(read_only, "change")
    intents = [r for r in records if r["phase"] == "intent"]
    refusals = [r for r in records if r["phase"] == "refused"]
    assert [r["change"] for r in intents] == ["command", "write", "restart"]
    assert [r["reason"] for r in refusals] == ["read-only"] * 3
    assert [r["change_id"] for r in intents] == [r["change_id"] for r in refusals]
    assert intents[0]["argv"] == ["touch", str(tmp_path / "witness")]
    assert intents[1]["path"] == str(tmp_path / "compose.yml") and "+changed" in intents[1]["diff"]
    assert intents[2]["container_id"] == FAKE_ID
    assert all(r["who"] == operator() and r["host"] == "local" for r in records)
    assert not [r for r in records if r["phase"] == "result"]
    assert _records(read_only, "command") == [] and _records(read_only, "action") == []


async def test_a_declined_confirmation_runs_nothing(writable: HostMonitor, tmp_path: Path) -> None:
    async def no(_change: Change) -> bool:
        return False

    for change in _changes(tmp_path).values():
        with pytest.raises(ChangeDeclined):
            await writable.change(change, confirm=no)
    assert not (tmp_path / "witness").exists()
    assert (tmp_path / "compose.yml").read_text() == "services: {}\n"
    refusals = [r for r in _records(writable, "change") if r["phase"] == "refused"]
    assert [r["reason"] for r in refusals] == ["declined"] * 3
    assert _records(writable, "command") == []


async def test_a_host_turned_read_only_during_the_dialog_refuses(
    writable: HostMonitor, tmp_path: Path
) -> None:
    async def lock_then_yes(_change: Change) -> bool:
        writable.read_only = True
        return True

    with pytest.raises(ReadOnlyError):
        await writable.change(_changes(tmp_path)["command"], confirm=lock_then_yes)
    assert not (tmp_path / "witness").exists()


async def test_a_confirmed_change_runs_and_journals_intent_and_result(
    writable: HostMonitor, tmp_path: Path
) -> None:
    changes = _changes(tmp_path)
    asked: list[str] = []

    async def yes(change: Change) -> bool:
        asked.append(change.what)
        return True

    done = await writable.change(changes["command"], confirm=yes)
    assert done.ok and done.exit_status == 0 and (tmp_path / "witness").exists()
    wrote = await writable.change(changes["write"])
    assert wrote.ok and (tmp_path / "compose.yml").read_text() == "changed\n"
    failed = await writable.change(Change.command(["ls", str(tmp_path / "absent")]))
    assert not failed.ok and failed.exit_status not in (0, None)
    assert asked == [changes["command"].what]

    records = _records(writable, "change")
    by_id: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_id.setdefault(record["change_id"], []).append(record)
    assert [[r["phase"] for r in group] for group in by_id.values()] == [["intent", "result"]] * 3
    results = [group[1] for group in by_id.values()]
    assert [r["ok"] for r in results] == [True, True, False]
    assert results[0]["exit_status"] == 0 and results[2]["exit_status"] == failed.exit_status
    write_intent = by_id[wrote.change_id][0]
    assert write_intent["bytes"] == len("changed\n") and len(write_intent["sha256"]) == 64
    # The report and `runbook undo` keep reading the command records they always read.
    commands = _records(writable, "command")
    assert [c["argv"][0] for c in commands] == ["touch", "ls"]
    assert commands[0]["change_id"] == done.change_id and commands[0]["exit_status"] == 0
    assert commands[1]["exit_status"] == failed.exit_status and commands[0]["who"] == operator()


async def test_a_failed_write_is_journaled_and_raised(
    writable: HostMonitor, tmp_path: Path
) -> None:
    target = tmp_path / "no-such-dir" / "compose.yml"
    with pytest.raises(OSError):
        await writable.change(Change.write(str(target), "x"))
    result = [r for r in _records(writable, "change") if r["phase"] == "result"]
    assert len(result) == 1 and result[0]["ok"] is False and result[0]["error"]


async def test_read_runs_only_what_the_classifier_calls_read_only(
    read_only: HostMonitor, writable: HostMonitor, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("hello\n")
    got = await read_only.read(["cat", str(tmp_path / "file")], why="a read")
    assert got.ok and got.stdout == "hello\n"
    for monitor in (read_only, writable):
        with pytest.raises(NotReadOnlyCommand) as refused:
            await monitor.read(["touch", str(tmp_path / "witness")])
        assert "not known to be read-only" in str(refused.value)
        assert isinstance(refused.value, ChangeRefused)
    assert not (tmp_path / "witness").exists()
    commands = _records(read_only, "command")
    assert [c["argv"][0] for c in commands] == ["cat"] and "change_id" not in commands[0]


async def test_read_only_is_a_latch(writable: HostMonitor) -> None:
    writable.read_only = True
    with pytest.raises(ReadOnlyError):
        writable.read_only = False
    assert writable.read_only


def test_callers_get_a_host_view_that_cannot_change_anything() -> None:
    monitor = HostMonitor(LocalHost(), sources=[])
    view = monitor.host
    assert not isinstance(view, Host)
    for name in ("run", "write_text", "docker", "stream", "start", "connect", "close"):
        assert not hasattr(view, name), name
    assert view.name == "local"
    # The old side doors are gone: the only way to change the server is change().
    for name in ("run_command", "restart_container"):
        assert not hasattr(monitor, name), name


class _Stubborn(Source):
    """A source that swallows `misses` cancellations before it lets one through."""

    name = "stubborn"

    def __init__(self, misses: int) -> None:
        self.misses = misses
        self.running = asyncio.Event()

    async def run(self, host: Host, state: HostState, emit: Emit) -> None:
        emit(SourceStatus(time=0.0, source=self.name, method="stubborn"))
        self.running.set()
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if self.misses <= 0:
                    raise
                self.misses -= 1


async def test_stop_with_a_deadline_cancels_again_and_closes_the_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host_monitor, "STOP_RETRY_S", 0.3)
    source = _Stubborn(misses=1)
    journal = Journal(tmp_path / "journal.jsonl")
    monitor = HostMonitor(LocalHost(), journal=journal, sources=[source])
    await monitor.start()
    await source.running.wait()
    assert await monitor.stop(deadline_s=5.0)
    notes = _records(monitor, "note")
    assert notes and "closing the host" in notes[0]["what"]
    journal.close()


async def test_stop_with_a_deadline_gives_up_in_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host_monitor, "STOP_RETRY_S", 0.2)
    source = _Stubborn(misses=1_000_000)
    monitor = HostMonitor(LocalHost(), sources=[source])
    await monitor.start()
    await source.running.wait()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert not await monitor.stop(deadline_s=1.0)
    assert loop.time() - started < 3.0
    source.misses = 0  # let it end, so the test leaves nothing running
    assert await monitor.stop(deadline_s=5.0)

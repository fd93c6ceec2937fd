"""Two compose_set steps within one second keep two backups, and undo gets the original back.

Real LocalHost (sha256sum, cp, test run as processes), a compose file in a temp folder; no
docker needed: compose_set only edits the file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from incident_console.monitor.host_monitor import HostMonitor
from incident_console.monitor.journal import Journal, read_journal
from incident_console.runbook.actions import HostExecutor
from incident_console.runbook.compose_patch import backup_path, is_backup
from incident_console.runbook.engine import Engine, StepState
from incident_console.runbook.loader import parse_runbook
from incident_console.runbook.runner import Runner
from incident_console.runbook.session import file_changes, undo_changes
from incident_console.transport.local import LocalHost

COMPOSE = """\
# comments survive
services:
  app:
    image: busybox
    environment:
      - WORKERS=4  # seed default
    mem_limit: 64m
"""

RUNBOOK = """
name: t
title: two patches in a row
steps:
  - id: workers
    title: Fewer workers
    kind: remediate
    compose_set:
      environment: {WORKERS: '2'}
  - id: limit
    title: More memory
    kind: remediate
    compose_set:
      memory_limit: 96m
"""


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


@pytest.fixture
async def monitor(tmp_path: Path) -> AsyncIterator[HostMonitor]:
    journal = Journal(tmp_path / "journal.jsonl")
    mon = HostMonitor(LocalHost(), journal=journal, sources=[])
    await mon.start()
    yield mon
    await mon.stop()
    journal.close()


def test_backup_names_with_a_sequence_are_backups() -> None:
    first = backup_path("/srv/dc.yml", now=1796050862.0)
    second = backup_path("/srv/dc.yml", now=1796050862.0, seq=1)
    assert first != second
    assert is_backup(first) and is_backup(second)


async def test_two_patches_in_one_second_keep_the_original(
    monitor: HostMonitor, tmp_path: Path
) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    original = COMPOSE.encode()
    engine = Engine(parse_runbook(RUNBOOK), {"service": "app", "compose_file": str(compose)})
    runner = Runner(engine, HostExecutor(monitor), poll_s=0.1)

    assert await runner.run(0) is StepState.PASSED, engine.records[0].verdict
    assert await runner.run(1) is StepState.PASSED, engine.records[1].verdict
    first, second = engine.records[0].change, engine.records[1].change
    assert first is not None and second is not None
    assert first.backup != second.backup
    assert _read(first.backup) == original
    assert b"mem_limit: 96m" in _read(str(compose))

    done = await undo_changes(monitor, file_changes(tmp_path / "journal.jsonl"))
    assert len(done) == 2
    assert _read(str(compose)) == original
    assert monitor.journal is not None
    monitor.journal.close()
    restores = [r for r in read_journal(monitor.journal.path) if r.get("kind") == "file_restore"]
    assert [r["backup"] for r in restores] == [second.backup, first.backup]


def test_undo_of_a_journal_with_a_broken_file_change_is_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    journal = tmp_path / "j.jsonl"
    journal.write_text('{"kind":"file_change","path":"/etc/x"}\n')
    script = Path(sys.executable).with_name("incident-console")
    done = subprocess.run(
        [str(script), "runbook", "undo", str(journal)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "file_change record #1 has no backup" in lines[0], lines

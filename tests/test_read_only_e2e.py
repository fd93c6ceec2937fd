"""Read-only over a real sshd cannot change the lab by any path.

Its own (unloaded) lab project: containers and a compose file are all it needs. A read-only
HostMonitor over SSH tries every remediate step of the built-in runbook, imported changing
steps (a `diagnose` step that restarts or resizes a container), a restart, the undo of a
file_change and a direct compose write; a read-only console is asked to restart (`r`, then
`y`, and the intent itself past the hidden key) and to undo (`u`); `runbook run --read-only
--yes` runs the built-in runbook and an imported one. Everything is refused, and every
container's Id, StartedAt and memory limit and every file of the lab's folder (the compose
file's sha256 among them) are the same after as before.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures_lab import require_docker
from fixtures_sshd import SshdServer, ssh_target
from incident_console.config import Settings
from incident_console.domain.commands import classify_argv
from incident_console.lab.lab import Lab
from incident_console.monitor.changes import Change, ReadOnlyError
from incident_console.monitor.host_monitor import HostMonitor
from incident_console.monitor.journal import Journal, read_journal
from incident_console.runbook.actions import ActionError, HostExecutor
from incident_console.runbook.engine import FileChange, StepRecord, changes_server
from incident_console.runbook.loader import load_runbook, parse_runbook
from incident_console.runbook.session import file_changes, gather, undo_changes
from incident_console.transport.targets import open_host

pytestmark = [pytest.mark.docker, pytest.mark.sshd]

CLI = str(Path(sys.executable).parent / "incident-console")
THEMES = Path(__file__).resolve().parents[1] / "themes"
#: Variables the remediate steps need that an unloaded lab cannot measure.
SETS = {
    "service": "backend",
    "workers": "2",
    "max_requests": "1000",
    "max_requests_jitter": "50",
    "watch": "5s",
}

#: What an imported runbook guessed: steps that change the server, each of kind diagnose.
IMPORTED = """
name: imported-guess
title: Steps an importer called diagnose
steps:
  - id: look
    title: Look at memory
    kind: diagnose
    run: [cat, /proc/meminfo]
    checks:
      - exit_status: 0
  - id: restart-it
    title: Restart the container
    kind: diagnose
    run: [docker, restart, '{{container}}']
  - id: restart-snippet
    title: Restart it from shell text
    kind: diagnose
    run: 'docker restart "{{container}}"'
  - id: resize
    title: Give it more memory
    kind: verify
    run: [docker, update, --memory=300m, --memory-swap=300m, '{{container}}']
"""

MARKDOWN = """# Backend troubleshooting

## Look at memory

```bash
cat /proc/meminfo
```

## Give the backend more room

```bash
docker update --memory=300m --memory-swap=300m {name}
```
"""


@pytest.fixture(scope="module")
def door_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_docker()
    lab = Lab(f"icdoor{os.getpid()}", tmp_path_factory.mktemp("doorlab") / "lab")
    try:
        lab.up()
        # A backup beside the compose file, as an earlier run would have left it: an undo
        # would copy it over the compose file (it differs).
        backup = lab.compose_file.with_name(lab.compose_file.name + ".orig-test")
        backup.write_bytes(lab.compose_file.read_bytes() + b"# an older version\n")
        yield lab
    finally:
        lab.down()


def _backup(lab: Lab) -> Path:
    return lab.compose_file.with_name(lab.compose_file.name + ".orig-test")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def server_state(lab: Lab) -> dict[str, Any]:
    """Every container's Id, StartedAt, restarts and memory limit; every lab file's sha256."""
    ids = lab.container_ids()
    docs = json.loads(
        subprocess.run(
            ["docker", "inspect", *ids], capture_output=True, text=True, check=True, timeout=60
        ).stdout
    )
    containers = {
        d["Name"]: (
            d["Id"],
            d["State"]["StartedAt"],
            d["RestartCount"],
            d["HostConfig"].get("Memory"),
        )
        for d in docs
    }
    files = {p.name: _sha256(p) for p in sorted(lab.directory.iterdir()) if p.is_file()}
    assert lab.compose_file.name in files and len(containers) >= 2
    return {"containers": containers, "files": files}


def backend_name(lab: Lab) -> str:
    out = subprocess.run(
        ["docker", "inspect", "--format", "{{.Name}}", lab.backend_container_id()],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return out.strip().lstrip("/")


def read_only_monitor(sshd: SshdServer, lab: Lab, journal: Journal) -> HostMonitor:
    host = open_host(sshd.target, **sshd.host_options())  # type: ignore[arg-type]
    return HostMonitor(host, journal=journal, probes=[lab.health_url], read_only=True)


async def _wait_for_inventory(monitor: HostMonitor, lab: Lab) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        mine = [v for v in monitor.state.containers.values() if v.info.project == lab.project]
        if mine and "docker_events" in monitor.state.sources:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the monitor never saw the containers of {lab.project}")


def _no_change_ran(journal: Path) -> list[dict[str, Any]]:
    """The journal's records: no change went through, no changing command ran."""
    records = read_journal(journal)
    results = [r for r in records if r.get("kind") == "change" and r.get("phase") == "result"]
    assert results == [], results
    ran = [r["argv"] for r in records if r.get("kind") == "command"]
    # Read-only diagnose commands (docker ps, docker logs, free) may run; nothing that the
    # classifier does not call read-only, and no copy or compose call at all.
    assert not [a for a in ran if classify_argv(a).changes], ran
    assert not [a for a in ran if a[:1] in (["cp"], ["docker-compose"]) or a[1:2] == ["compose"]]
    assert not [r for r in records if r.get("kind") in ("action", "file_change", "file_restore")]
    return records


async def test_a_read_only_monitor_over_ssh_refuses_every_change(
    door_lab: Lab, sshd: SshdServer, tmp_path: Path
) -> None:
    before = server_state(door_lab)
    journal_path = tmp_path / "journal.jsonl"
    journal = Journal(journal_path)
    monitor = read_only_monitor(sshd, door_lab, journal)
    await monitor.start()
    tried: list[str] = []
    try:
        await _wait_for_inventory(monitor, door_lab)
        runbook = load_runbook("oom-after-deploy")
        found = await gather(
            monitor, runbook, {**SETS, "project": door_lab.project}, max_s=15, min_s=2
        )
        variables = found.values
        assert variables["compose_file"] == str(door_lab.compose_file)
        executor = HostExecutor(monitor)
        imported = parse_runbook(IMPORTED)
        # Straight to the executor, past the engine's own read-only rule: the door refuses.
        steps = [s for s in runbook.steps if s.kind == "remediate"] + [
            s for s in imported.steps if changes_server(s)
        ]
        assert len(steps) == 6, [s.id for s in steps]
        for step in steps:
            with pytest.raises(ActionError) as refused:
                await executor.perform(StepRecord(step), variables, lambda _record: None)
            assert f"{monitor.host.name} is read-only" in str(refused.value), step.id
            tried.append(step.id)

        backend = door_lab.backend_container_id()
        with pytest.raises(ReadOnlyError):
            await monitor.change(Change.restart(backend, why="test: restart"))
        with pytest.raises(ReadOnlyError):
            await monitor.change(Change.write(str(door_lab.compose_file), "services: {}\n"))
        assert not hasattr(monitor.host, "write_text")

        backup = _backup(door_lab)
        undo_journal = tmp_path / "earlier-run.jsonl"
        undo_journal.write_text(
            json.dumps(
                {
                    "kind": "file_change",
                    "host": monitor.host.name,
                    "path": str(door_lab.compose_file),
                    "backup": str(backup),
                    "sha256_before": _sha256(backup),
                    "sha256_after": _sha256(door_lab.compose_file),
                    "time": time.time(),
                }
            )
            + "\n"
        )
        with pytest.raises(ReadOnlyError):
            await undo_changes(monitor, file_changes(undo_journal))
        change = FileChange(
            str(door_lab.compose_file),
            str(backup),
            _sha256(backup),
            _sha256(door_lab.compose_file),
        )
        with pytest.raises(ReadOnlyError):
            await executor.undo(change)
    finally:
        assert await monitor.stop(deadline_s=30)
        journal.close()

    assert server_state(door_lab) == before
    records = _no_change_ran(journal_path)
    refusals = [r for r in records if r.get("kind") == "change" and r.get("phase") == "refused"]
    # One per step (a compose_set's first change is its backup copy), restart, write, 2 undos.
    assert len(refusals) == len(tried) + 4, refusals
    assert {r["reason"] for r in refusals} == {"read-only"}
    kinds = {r["change"] for r in refusals}
    assert kinds == {"command", "write", "restart"}


async def test_a_read_only_console_over_ssh_restarts_and_undoes_nothing(
    door_lab: Lab, sshd: SshdServer, tmp_path: Path
) -> None:
    from incident_console.ui.app import make_app
    from incident_console.ui.screens.confirm import ConfirmScreen
    from incident_console.ui.screens.runbook import RunbookScreen
    from incident_console.ui.screens.variables_form import ProjectChoice

    before = server_state(door_lab)
    journal_path = tmp_path / "console.jsonl"
    journal = Journal(journal_path)
    monitor = read_only_monitor(sshd, door_lab, journal)
    await monitor.start()
    try:
        await _wait_for_inventory(monitor, door_lab)
        app = make_app(Settings(), [monitor], start_monitors=False, theme_dirs=[THEMES])
        async with app.run_test(size=(160, 45)) as pilot:
            await pilot.pause(0.5)
            assert app.active_dashboard.selected_id, "no container selected"
            await pilot.press("r")
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            # Past the hidden key, as a binding the UI forgot to remove would call it: the
            # door refuses before any dialog.
            backend = door_lab.backend_container_id()
            app._restart(monitor, backend, backend_name(door_lab))
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmScreen)

            app.action_runbook()
            await pilot.pause(0.5)
            if isinstance(app.screen, ProjectChoice):
                # Other projects on this engine have a backend too: the walkthrough asks.
                assert door_lab.project in [name for name, _ in app.screen.options]
                app.screen.dismiss(door_lab.project)
                await pilot.pause(0.5)
            screen = app.screen
            assert isinstance(screen, RunbookScreen)
            k = screen.engine.index("memory-limit")
            backup = _backup(door_lab)
            screen.engine.records[k].change = FileChange(
                str(door_lab.compose_file),
                str(backup),
                _sha256(backup),
                _sha256(door_lab.compose_file),
            )
            screen.action_move(k)
            await pilot.press("u")
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            screen._undo(k)
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert screen.engine.records[k].state.value == "pending"
    finally:
        assert await monitor.stop(deadline_s=30)
        journal.close()

    assert server_state(door_lab) == before
    records = _no_change_ran(journal_path)
    refusals = [r for r in records if r.get("kind") == "change" and r.get("phase") == "refused"]
    assert [(r["change"], r["reason"]) for r in refusals] == [("restart", "read-only")]


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "runbook", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _sets(**extra: str) -> list[str]:
    return [item for k, v in {**SETS, **extra}.items() for item in ("--set", f"{k}={v}")]


def _steps(journal: Path) -> dict[str, dict[str, Any]]:
    """The last runbook_step record of each step."""
    return {str(r["step"]): r for r in read_journal(journal) if r.get("kind") == "runbook_step"}


def test_runbook_run_read_only_over_ssh_changes_nothing(
    door_lab: Lab, sshd: SshdServer, tmp_path: Path
) -> None:
    before = server_state(door_lab)
    target, *ssh = ssh_target(sshd)
    journal = tmp_path / "builtin.jsonl"
    run = _cli(
        "run", "oom-after-deploy", target, *ssh, "--read-only", "--yes",
        *_sets(project=door_lab.project), "--probe", door_lab.health_url,
        "--journal", str(journal),
    )  # fmt: skip
    assert run.returncode in (0, 1), run.stdout + run.stderr
    steps = _steps(journal)
    remediate = [s.id for s in load_runbook("oom-after-deploy").steps if s.kind == "remediate"]
    for step in remediate:
        assert steps[step]["state"] == "skipped", steps[step]
        assert "read-only" in steps[step]["verdict"]
    assert steps["host-memory"]["state"] == "passed", run.stdout  # reads still run
    assert server_state(door_lab) == before
    _no_change_ran(journal)

    # A runbook written by someone else, its changing steps called diagnose (and imported).
    name = backend_name(door_lab)
    handwritten = tmp_path / "imported-guess.yaml"
    handwritten.write_text(IMPORTED)
    markdown = tmp_path / "troubleshooting.md"
    markdown.write_text(MARKDOWN.format(name=name))
    converted = tmp_path / "troubleshooting.yaml"
    imported = _cli("import", str(markdown), "-o", str(converted), timeout=60)
    assert imported.returncode == 0, imported.stderr
    for book in (handwritten, converted):
        journal = tmp_path / f"{book.stem}.jsonl"
        run = _cli(
            "run", str(book), target, *ssh, "--read-only", "--yes",
            *_sets(project=door_lab.project), "--journal", str(journal),
        )  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
        steps = _steps(journal)
        reads = [k for k, s in steps.items() if k == "look" or "meminfo" in s["title"]]
        assert len(reads) == 1 and steps[reads[0]]["state"] == "passed", steps
        changing = [s for k, s in steps.items() if k not in reads]
        assert len(changing) == (3 if book is handwritten else 1), steps
        assert all(s["state"] == "skipped" for s in changing), steps
        assert all("read-only" in s["verdict"] for s in changing), steps
        assert server_state(door_lab) == before
        _no_change_ran(journal)

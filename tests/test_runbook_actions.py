"""Runbook actions on real components: LocalHost, the docker engine, docker-compose, a compose
file in a temp folder. compose_set + backup + undo byte for byte; recreate applies the limit
(v1: --compatibility for deploy:); limit_in_effect reads docker inspect, not the file."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from conftest import IN_CI
from incident_console.monitor.host_monitor import HostMonitor
from incident_console.monitor.journal import Journal, read_journal
from incident_console.runbook.actions import HostExecutor
from incident_console.runbook.engine import Engine, StepState
from incident_console.runbook.loader import parse_runbook
from incident_console.runbook.runner import Runner
from incident_console.runbook.session import file_changes, undo_changes
from incident_console.transport.local import LocalHost

pytestmark = pytest.mark.docker


def _docker_ok() -> str:
    if shutil.which("docker-compose") is None and shutil.which("docker") is None:
        return "no docker client"
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    return "" if probe.returncode == 0 else "docker engine not running"


@pytest.fixture(scope="module")
def lab_image() -> str:
    reason = _docker_ok()
    if reason:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    from incident_console.lab.image import LAB_IMAGE, ensure_image

    ensure_image()
    return LAB_IMAGE


COMPOSE_PLAIN = """\
# test stack: comments and order must survive the edit
version: "2.4"
services:
  app:
    image: {image}
    command: ["/usr/bin/python3", "-c", "import time; time.sleep(3600)"]
    environment:
      - GUNICORN_WORKERS=${{GUNICORN_WORKERS:-4}}  # the seed's default
    volumes:
      - /usr:/usr:ro
    mem_limit: 64m
    memswap_limit: 64m
"""

COMPOSE_DEPLOY = """\
services:
  app:
    image: {image}
    command: ["/usr/bin/python3", "-c", "import time; time.sleep(3600)"]
    volumes:
      - /usr:/usr:ro
    deploy:
      resources:
        limits:
          memory: 64M  # compose v1 applies this only with --compatibility
"""

RUNBOOK = """
name: t
title: actions on a real stack
steps:
  - id: patch
    title: Patch
    kind: remediate
    compose_set:
      environment: {GUNICORN_WORKERS: '${GUNICORN_WORKERS:-{{workers}}}'}
      memory_limit: '{{mem_limit}}'
  - id: not-yet
    title: Limit not in effect before recreate
    kind: verify
    wait: 1s
    checks:
      - limit_in_effect: true
  - id: recreate
    title: Recreate
    kind: remediate
    recreate: true
    checks:
      - exit_status: 0
      - limit_in_effect: true
"""


class Stack:
    def __init__(self, tmp: Path, text: str) -> None:
        self.project = f"icrb{uuid.uuid4().hex[:8]}"
        self.dir = tmp / "srv"
        self.dir.mkdir()
        self.file = self.dir / "docker-compose.yml"
        self.file.write_text(text)
        self.original = self.file.read_bytes()

    def compose(self, *args: str) -> None:
        subprocess.run(
            ["docker-compose", "-p", self.project, "-f", str(self.file), *args],
            check=True,
            capture_output=True,
            timeout=180,
        )

    def memory(self) -> int:
        out = subprocess.run(
            ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={self.project}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert len(out) == 1
        got = subprocess.run(
            ["docker", "inspect", "-f", "{{.HostConfig.Memory}}", out[0]],
            capture_output=True,
            text=True,
            check=True,
        )
        return int(got.stdout)


def _stack(tmp_path: Path, text: str, image: str) -> Iterator[Stack]:
    stack = Stack(tmp_path, text.format(image=image))
    stack.compose("up", "-d")
    try:
        yield stack
    finally:
        stack.compose("down", "-t", "1")


@pytest.fixture
def plain_stack(tmp_path: Path, lab_image: str) -> Iterator[Stack]:
    yield from _stack(tmp_path, COMPOSE_PLAIN, lab_image)


@pytest.fixture
def deploy_stack(tmp_path: Path, lab_image: str) -> Iterator[Stack]:
    yield from _stack(tmp_path, COMPOSE_DEPLOY, lab_image)


@pytest.fixture
async def monitor(tmp_path: Path) -> AsyncIterator[HostMonitor]:
    journal = Journal(tmp_path / "journal.jsonl")
    mon = HostMonitor(LocalHost(), journal=journal, sources=[])
    await mon.start()
    yield mon
    await mon.stop()
    journal.close()


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def _compose_v1_only() -> bool:
    if shutil.which("docker-compose") is None:
        return False
    v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return v2.returncode != 0


def _variables(stack: Stack) -> dict[str, str]:
    return {
        "service": "app",
        "compose_file": str(stack.file),
        "project": stack.project,
        "project_dir": str(stack.dir),
        "workers": "2",
        "mem_limit": "96M",
    }


async def test_patch_recreate_undo_on_a_real_stack(
    plain_stack: Stack, monitor: HostMonitor, tmp_path: Path
) -> None:
    engine = Engine(parse_runbook(RUNBOOK), _variables(plain_stack))
    executor = HostExecutor(monitor)
    preview = await executor.preview(engine.records[0].step, engine.variables)
    assert "-      - GUNICORN_WORKERS=${GUNICORN_WORKERS:-4}  # the seed's default" in preview
    assert "+    mem_limit: 96M" in preview
    runner = Runner(engine, executor, poll_s=0.2)

    assert await runner.run(0) is StepState.PASSED
    patched = plain_stack.file.read_text()
    assert "# test stack: comments and order must survive the edit" in patched
    assert "GUNICORN_WORKERS=${GUNICORN_WORKERS:-2}  # the seed's default" in patched
    assert "memswap_limit: 96M" in patched  # else docker refuses a limit above the swap limit
    change = engine.records[0].change
    assert change is not None and ".incident-console-" in change.backup
    assert _read(change.backup) == plain_stack.original
    assert os.path.dirname(change.backup) == str(plain_stack.dir)

    # The file says 96M, the running container still has 64m: the check reads docker.
    assert await runner.run(1) is StepState.FAILED
    assert "HostConfig.Memory 64 MiB" in engine.records[1].verdict

    assert await runner.run(2) is StepState.PASSED, engine.records[2].verdict
    assert "--force-recreate" in engine.records[2].output
    assert plain_stack.memory() == 96 * 1024 * 1024

    records = read_journal(tmp_path / "journal.jsonl")
    kinds = [r["kind"] for r in records]
    assert "file_change" in kinds and "runbook_step" in kinds
    commands = [r for r in records if r["kind"] == "command"]
    assert any("--force-recreate" in r["argv"] for r in commands)
    assert all("output" in r and "sha256" in r["output"] for r in commands)

    done = await undo_changes(monitor, file_changes(tmp_path / "journal.jsonl"))
    assert len(done) == 1
    assert plain_stack.file.read_bytes() == plain_stack.original


@pytest.mark.skipif(not _compose_v1_only(), reason="compose v2 present: a v1 matter")
async def test_deploy_limit_gets_compatibility_on_compose_v1(
    deploy_stack: Stack, monitor: HostMonitor
) -> None:
    variables = _variables(deploy_stack)
    engine = Engine(parse_runbook(RUNBOOK), variables)
    runner = Runner(engine, HostExecutor(monitor), poll_s=0.2)
    assert await runner.run(0) is StepState.PASSED
    text = deploy_stack.file.read_text()
    assert "memory: 96M  # compose v1 applies this only with --compatibility" in text
    assert "mem_limit" not in text
    assert await runner.run(2) is StepState.PASSED, engine.records[2].verdict
    assert "--compatibility" in engine.records[2].output
    assert deploy_stack.memory() == 96 * 1024 * 1024

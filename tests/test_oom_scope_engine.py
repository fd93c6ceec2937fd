"""A real kill at a SHARED limit on this machine's engine, seen by a real HostMonitor.

Two containers are started with the same ``--cgroup-parent``, whose memory cgroup gets a limit
smaller than their sum (cgroup v1: ``memory.limit_in_bytes``, written as root): ``db`` holds
120 MiB with a high ``oom_score_adj``, ``leak`` grows. The kernel kills at the ANCESTOR's
limit and picks ``db`` (the highest score), while ``leak`` grew: the monitor must report scope
shared-limit, victim db, culprit leak, the limit's cgroup shared by 2 containers. Other
engineers' labs OOM on this kernel too: only kills of our own container ids are looked at.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import IN_CI
from fixtures_lab import require_docker
from incident_console.domain.events import OomKill
from incident_console.domain.oom_scope import SHARED_LIMIT, describe_kill
from incident_console.lab.image import LAB_IMAGE, ensure_image
from incident_console.monitor.host_monitor import HostMonitor
from incident_console.transport.local import LocalHost

pytestmark = [pytest.mark.docker, pytest.mark.slow]

MEMORY_V1 = Path("/sys/fs/cgroup/memory")
MiB = 1 << 20
PARENT_LIMIT = 200 * MiB
DB = """
import time
b = bytearray(120 * 1024 * 1024)
for i in range(0, len(b), 4096): b[i] = 1
time.sleep(600)
"""
# 4 MiB a second to 160 MiB: with db's 120 MiB the parent's 200 MiB runs out after ~20 s,
# time for the monitor to sample the growth; alone it stays under the limit.
LEAK = """
import time
keep = []
for _ in range(40):
    b = bytearray(4 * 1024 * 1024)
    for i in range(0, len(b), 4096): b[i] = 1
    keep.append(b)
    time.sleep(1.0)
time.sleep(600)
"""


def _skip_or_fail(reason: str) -> None:
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def parent() -> Iterator[str]:
    """A cgroup_parent whose memory limit is the shared one; removed in every controller."""
    require_docker()
    if os.geteuid() != 0:
        _skip_or_fail("writing a cgroup's memory limit needs root")
    if not (MEMORY_V1 / "memory.limit_in_bytes").exists():
        _skip_or_fail("cgroup v1 memory controller not mounted (this test writes v1's limit)")
    name = f"iop-shared-{uuid.uuid4().hex[:8]}"
    (MEMORY_V1 / name).mkdir()
    try:
        (MEMORY_V1 / name / "memory.limit_in_bytes").write_text(str(PARENT_LIMIT))
        yield name
    finally:
        subprocess.run(
            ["docker", "rm", "-f", f"{name}-db", f"{name}-leak"],
            capture_output=True,
            check=False,
        )
        # runc made the parent in every controller; remove each (empty once the containers are).
        for controller in Path("/sys/fs/cgroup").iterdir():
            folder = controller / name
            for _ in range(50):
                if not folder.exists():
                    break
                try:
                    folder.rmdir()
                except OSError:
                    time.sleep(0.1)
        assert not (MEMORY_V1 / name).exists()


def _run(parent: str, service: str, code: str, *extra: str) -> str:
    done = subprocess.run(
        ["docker", "run", "-d", "--name", f"{parent}-{service}",
         "--label", f"com.docker.compose.project={parent}",
         "--label", f"com.docker.compose.service={service}",
         "--cgroup-parent", f"/{parent}", *extra,
         "-v", "/usr:/usr:ro", LAB_IMAGE, "python3", "-c", code],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def test_kill_at_a_shared_cgroup_parent_limit_names_victim_and_culprit(parent: str) -> None:
    ensure_image()
    monitor = HostMonitor(LocalHost(), read_only=True, since=time.time())
    await monitor.start()
    try:
        db = _run(parent, "db", DB, "--oom-score-adj", "500")
        await asyncio.sleep(3.0)  # db resident before leak starts
        leak = _run(parent, "leak", LEAK)
        ours: list[OomKill] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not ours:
            await asyncio.sleep(0.5)
            ours = [k for k in monitor.state.oom_kills if k.container_id in (db, leak)]
        assert ours, f"no kernel kill of {parent}'s containers within 120 s"
        (kill,) = ours
        print(describe_kill(kill))
        assert kill.scope == SHARED_LIMIT, kill
        assert kill.oom_memcg == f"/{parent}" and kill.task_memcg == f"/{parent}/{db}"
        # The victim: db (the highest OOM score), named as compose names it.
        assert (kill.container_id, kill.service, kill.project) == (db, "db", parent)
        # The culprit: leak, which grew; the limit was shared by the two (read from their
        # /proc/<pid>/cgroup, not guessed from the driver).
        assert (kill.culprit_id, kill.culprit) == (leak, "leak"), kill
        assert kill.culprit_growth_bytes is not None and kill.culprit_growth_bytes >= 16 * MiB
        assert kill.sharing == 2 and kill.any_limit is False
        text = describe_kill(kill)
        assert f"the limit of /{parent} ran out (shared by 2 containers); culprit leak" in text
    finally:
        await monitor.stop()

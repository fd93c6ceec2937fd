"""The seed's server as it was, fixed from nothing: headless, over a real sshd.

The lab runs in `--host-memory` mode (no container limit; every container under one cgroup
parent whose limit stands for the server's RAM; a db holding a resident set; the stack from
docker-compose.yml + docker-compose.prod.yml). Under `lab load` the backend leaks until the
group runs out and the kernel kills in it. `runbook run oom-after-deploy ssh://... --yes --set
watch=90s` must set a limit on backend from nothing that fits what the server has left,
recreate it from both compose files, and see no new kill in the group for the window; then
`runbook undo` restores both files byte for byte.

The budget and culprit arithmetic is unit-tested here too, on states built from events.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures_lab import require_docker, require_kernel_log
from fixtures_sshd import SshdServer
from incident_console.domain.events import (
    ContainerEvent,
    ContainerInfo,
    ContainerSample,
    HostMemory,
    OomConstraint,
    OomKill,
)
from incident_console.lab.lab import Lab
from incident_console.monitor.state import HostState
from incident_console.runbook.budget import culprit, fitting_limit, other_limits, service_budget

CLI = str(Path(sys.executable).parent / "incident-console")
MIB = 1 << 20
PARENT = "/incident-console-lab-x"

# -- no docker needed ------------------------------------------------------------------------


def _state(parent: str = PARENT, limit: int = 512 * MIB) -> HostState:
    """backend grows from 100 to 340 MiB over 4 minutes; db holds 140 MiB and is killed."""
    state = HostState("t")
    for cid, service in (("b" * 64, "backend"), ("d" * 64, "db"), ("r" * 64, "redis")):
        state.apply(ContainerInfo(time=0.0, id=cid, name=f"x_{service}_1", state="running",
                                  project="x", service=service, cgroup_parent=parent))  # fmt: skip
    for t in range(0, 241, 10):
        for cid, used in (("b" * 64, 100 + t), ("d" * 64, 140), ("r" * 64, 5)):
            state.apply(ContainerSample(time=1000.0 + t, id=cid, memory_used_bytes=used * MIB,
                                        memory_limit_bytes=limit, cpu_percent=0.0))  # fmt: skip
    state.apply(HostMemory(time=1240.0, total_bytes=2048 * MIB, available_bytes=1200 * MIB,
                           swap_total_bytes=0, swap_free_bytes=0))  # fmt: skip
    state.apply(OomKill(time=1241.0, pid=7, process="python3", constraint=OomConstraint.LIMIT,
                        container_id="d" * 64, service="db"))  # fmt: skip
    return state


def test_the_culprit_is_who_grew_not_who_was_killed() -> None:
    state = _state()
    found = culprit(state, "x")
    assert found is not None and found[0] == "backend"
    assert "killed db 1" in found[1] and "no container had a limit of its own" in found[1]
    assert "while a limit it shares ran out" in found[1]  # the cgroup parent's
    host = culprit(_state(parent=""), "x")  # no parent: the server's RAM ran out
    assert host is not None and "while the server's memory ran out" in host[1], host


def test_a_db_refilling_after_each_restart_is_no_culprit() -> None:
    # Seen in a rehearsal: db killed five times, docker restarting it each time, each time it
    # fills its 256 MiB again; the backend, full, saws as its workers are killed and respawn.
    state = HostState("t")
    db, backend = "d" * 64, "b" * 64
    for cid, service in ((backend, "backend"), (db, "db")):
        state.apply(ContainerInfo(time=0.0, id=cid, name=f"x_{service}_1", state="running",
                                  project="x", service=service, cgroup_parent=PARENT))  # fmt: skip
    for t in range(0, 200):
        now = 1000.0 + t
        if t % 40 == 0:
            state.apply(ContainerEvent(time=now, id=db, name="x_db_1", service="db",
                                       action="start"))  # fmt: skip
        refill = min(t % 40, 2) * 128  # 0, 128, 256 MiB in its first two seconds
        saw = 380 + (t % 20) * 7  # a worker grows 7 MiB a second, killed every 20 s
        for cid, used in ((db, refill), (backend, saw)):
            state.apply(ContainerSample(time=now, id=cid, memory_used_bytes=used * MIB,
                                        memory_limit_bytes=768 * MIB, cpu_percent=0.0))  # fmt: skip
        if t % 40 == 39:
            state.apply(OomKill(time=now, pid=t, process="python3",
                                constraint=OomConstraint.LIMIT, container_id=db, service="db"))  # fmt: skip
    found = culprit(state, "x")
    assert found is not None and found[0] == "backend", found


def test_a_shared_limit_leaves_the_others_peaks_for_the_service() -> None:
    state = _state()
    views = state.service_containers("backend")
    budget, group, why = service_budget(state, views)
    assert budget is not None and why == ""
    assert (
        budget.ram_bytes == 512 * MIB and "cgroup parent /incident-console-lab-x" in budget.ram_how
    )
    assert budget.free_bytes == (512 - 140 - 5) * MIB and budget.host_bytes == 0
    assert fitting_limit(budget) == 352 * MIB  # 367 MiB rounded down to 32 MiB
    assert (
        other_limits(group) == "db 192M (seen at most 140.0 MiB), redis 32M (seen at most 5.0 MiB)"
    )


def test_with_no_limit_at_all_the_host_ram_and_its_own_use_count() -> None:
    state = _state(parent="", limit=0)
    budget, _, _ = service_budget(state, state.service_containers("backend"))
    assert budget is not None and budget.ram_how == "the host's RAM"
    # used 848 MiB on the host, 485 MiB of it in the containers: 363 MiB the host's own.
    assert budget.host_bytes == (848 - 340 - 140 - 5) * MIB
    assert budget.free_bytes == (2048 - 145 - 363) * MIB


def test_a_kill_at_the_containers_own_limit_names_no_culprit() -> None:
    state = _state()
    state.apply(ContainerInfo(time=0.0, id="d" * 64, name="x_db_1", state="running", project="x",
                              service="db", memory_limit_bytes=160 * MIB))  # fmt: skip
    assert culprit(state, "x") is None


# -- over sshd, on the engine ----------------------------------------------------------------


@pytest.fixture
def seed_lab(tmp_path: Path) -> Iterator[Lab]:
    require_docker()
    require_kernel_log()
    lab = Lab(f"ihn{os.getpid()}", tmp_path / "lab", host_memory="512m", db_memory="128m")
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


def PARENT_OF(lab: Lab) -> str:  # noqa: N802 - reads as the constant it stands for
    """`oom_memcg=/incident-console-lab-<project>,` as the kernel names our group's limit."""
    return f"oom_memcg={lab.settings.cgroup_parent},"


def _cli(sshd: SshdServer, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    ssh = ["-i", str(sshd.client_key), "--known-hosts", str(sshd.known_hosts)]
    return subprocess.run(
        [CLI, "runbook", *args, *ssh], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.docker
@pytest.mark.sshd
@pytest.mark.slow
def test_a_limit_from_nothing_over_ssh(seed_lab: Lab, sshd: SshdServer, tmp_path: Path) -> None:
    lab = seed_lab
    originals = {p: p.read_bytes() for p in lab.compose_files}
    assert len(originals) == 2
    assert all(c.memory_limit == 0 for c in lab.status())  # no limit anywhere
    stop = threading.Event()
    loader = threading.Thread(
        target=lab.load, kwargs={"duration_s": 1200, "rate": 8.0, "stop": stop}, daemon=True
    )
    loader.start()
    try:
        deadline = time.monotonic() + 240
        while not lab.oom_kills() and time.monotonic() < deadline:
            time.sleep(2)
        assert lab.oom_kills(), "the group never ran out under load"
        journal = tmp_path / "incident.jsonl"
        run = _cli(
            sshd, "run", "oom-after-deploy", sshd.target, "--yes", "--set", "watch=90s",
            "--set", f"project={lab.project}", "--journal", str(journal), timeout=900,
        )  # fmt: skip
    finally:
        stop.set()
        loader.join(timeout=60)
    print(run.stdout[:4000], run.stdout[-4000:], run.stderr[-2000:])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-1000:]
    out = run.stdout
    assert "service = backend" in out and "10/10 steps passed" in out
    base, prod = lab.compose_files
    assert f"compose_file = {prod}    (" in out
    limit = re.search(r"^  mem_limit = (\d+)M    \((.*)\)$", out, re.MULTILINE)
    assert limit, out[:3000]
    free = re.search(r"= ([\d.]+) MiB left for backend", limit.group(2))
    assert "no limit anywhere" in limit.group(2) and free, limit.group(2)
    # The limit fits what the server has left: 512 MiB minus the db's 128+ MiB and the rest.
    assert 64 <= int(limit.group(1)) <= float(free.group(1)) < 512 - 128
    assert "other_limits = db " in out  # the others' limits are offered

    records = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    recreate = next(
        r["argv"] for r in records if r.get("kind") == "command" and "--force-recreate" in r["argv"]
    )
    assert [recreate[i + 1] for i, a in enumerate(recreate) if a == "-f"] == [str(base), str(prod)]
    assert recreate[recreate.index("--project-directory") + 1] == str(lab.directory)
    steps = {r["step"]: r for r in records if r.get("kind") == "runbook_step" and r.get("finished")}
    assert steps["watch"]["state"] == "passed"
    assert steps["watch"]["finished"] - steps["watch"]["started"] >= 90
    assert f"no OOM kill of project {lab.project} since the step began" in out
    backend = next(c for c in lab.status() if c.service == "backend")
    assert backend.memory_limit == int(limit.group(1)) * MIB  # from nothing, in effect
    assert backend.cgroup_parent == lab.settings.cgroup_parent  # still on the same "server"
    # The kills' scope is another part's work: where the journal has it, it is the group's.
    # Other labs on this kernel kill too: ours are the kills under our cgroup parent.
    for r in records:
        ours = PARENT_OF(lab) in " ".join(r.get("raw") or [])
        if r.get("kind") == "oom_kill" and ours and "scope" in r:
            assert r["scope"] == "shared-limit", r

    undo = _cli(sshd, "undo", str(journal), sshd.target, timeout=120)
    assert undo.returncode == 0, undo.stdout + undo.stderr
    assert {p: p.read_bytes() for p in lab.compose_files} == originals

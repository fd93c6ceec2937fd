"""The seed's server as it was, on this machine's engine: `lab up --host-memory SIZE`.

No container has a limit; every lab container is under one cgroup parent whose limit (written
by the lab) stands for the server's RAM; the stack is started from a base file and a
production override. Under load the parent runs out and the kernel kills whatever scores
highest. `lab down` removes the parent, and a second `lab down` is no error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from fixtures_lab import require_docker, require_kernel_log
from incident_console.domain.memory import (
    LimitScope,
    effective_limit,
    is_limit,
    limit_scope,
    parse_limit,
    server_budget,
)
from incident_console.lab.host_memory import HostMemoryCgroup, parent_name
from incident_console.lab.lab import Lab, LabError
from incident_console.lab.oom import oom_kills
from incident_console.lab.stackfiles import OVERRIDE_FILE, LabSettings, compose_texts

CLI = str(Path(sys.executable).parent / "incident-console")
MIB = 1 << 20

# -- no docker needed ------------------------------------------------------------------------


def test_the_override_holds_the_settings_that_matter() -> None:
    s = LabSettings("ihx", "256m", 4, 18080, 18000, limits=False, override=True,
                    cgroup_parent="/incident-console-lab-ihx", db_memory="300m")  # fmt: skip
    texts = compose_texts(s)
    assert list(texts) == ["docker-compose.yml", OVERRIDE_FILE]
    base, prod = (YAML(typ="safe").load(t)["services"] for t in texts.values())
    assert set(base) == set(prod) == {"backend", "frontend", "db", "redis"}
    # The gunicorn settings, the restart policy and the cgroup parent are production's.
    assert "GUNICORN_WORKERS=${GUNICORN_WORKERS:-4}" in prod["backend"]["environment"]
    assert not any("GUNICORN" in e for e in base["backend"]["environment"])
    for name in prod:
        assert prod[name]["cgroup_parent"] == "/incident-console-lab-ihx"
        assert "cgroup_parent" not in base[name] and "mem_limit" not in prod[name]
    assert "STANDIN_RESIDENT_MIB=300" in base["db"]["environment"]
    assert "image" in base["backend"] and "image" not in prod["backend"]


def test_a_single_file_lab_is_as_before() -> None:
    texts = compose_texts(LabSettings("ihx", "300m", 3, 18080, 18000))
    assert list(texts) == ["docker-compose.yml"]
    backend = YAML(typ="safe").load(texts["docker-compose.yml"])["services"]["backend"]
    assert backend["mem_limit"] == "300m" and "cgroup_parent" not in backend


def test_the_memory_rules_have_one_home() -> None:
    assert parse_limit("max\n") is None and parse_limit("9223372036854771712") is None
    assert parse_limit("268435456\n") == 256 * MIB and parse_limit("0") is None
    assert not is_limit(0) and not is_limit(2**63) and not is_limit(True) and is_limit(1)
    # A container with no limit of its own under a parent with one: the parent's is in effect.
    assert effective_limit(0, 512 * MIB) == 512 * MIB
    assert effective_limit(256 * MIB, 9223372036854771712) == 256 * MIB
    assert limit_scope(0, 512 * MIB) is LimitScope.SHARED
    assert limit_scope(256 * MIB, 256 * MIB) is LimitScope.OWN
    assert limit_scope(0, 9223372036854771712) is LimitScope.NONE
    budget = server_budget(512 * MIB, "the group's limit", {"db": 140 * MIB, "redis": 5 * MIB})
    assert budget.free_bytes == 367 * MIB and budget.others[0] == ("db", 140 * MIB)
    assert "367.0 MiB left for backend" in budget.describe("backend")


def test_the_lab_oom_reader_finds_kills_under_a_cgroup_parent() -> None:
    cid = "ab" * 32
    lines = [
        "[1.0] python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
        f"[1.1] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset={'cd' * 32},"
        f"mems_allowed=0,oom_memcg=/incident-console-lab-x,task_memcg=/incident-console-lab-x/"
        f"{cid},task=python3,pid=5373,uid=0",
        "[1.2] Memory cgroup out of memory: Killed process 5373 (python3) total-vm:145812kB, "
        "anon-rss:135296kB, file-rss:5928kB, shmem-rss:0kB, UID:0 pgtables:320kB",
    ]
    (kill,) = oom_kills({cid: "db"}, lines)
    assert (kill.pid, kill.task, kill.service, len(kill.lines)) == (5373, "python3", "db", 3)
    assert oom_kills("ef" * 32, lines) == []


def test_host_memory_is_for_this_machine_and_a_size() -> None:
    with pytest.raises(LabError, match="not a memory size"):
        Lab("ihx", host_memory="plenty")
    lab = Lab("ihx", host_memory="512m")
    assert not lab.settings.limits and lab.settings.override
    assert lab.settings.cgroup_parent == f"/{parent_name('ihx')}"


# -- on the engine ---------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "lab", *args], capture_output=True, text=True, timeout=300,
                          check=False)  # fmt: skip


@pytest.mark.docker
@pytest.mark.slow
def test_host_memory_lab_runs_out_as_one_server(tmp_path: Path) -> None:
    require_docker()
    require_kernel_log()
    project = f"ihm{os.getpid()}"
    where = ["--project", project, "--dir", str(tmp_path / project)]
    cgroup = HostMemoryCgroup(parent_name(project))
    up = _cli("up", *where, "--host-memory", "384m", "--db-memory", "96m")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "-f docker-compose.yml -f docker-compose.prod.yml" in up.stdout
        assert "no container limits" in up.stdout
        # The parent's limit is the lab's, written before compose started anything.
        assert cgroup.exists() and int(cgroup.limit_file.read_text()) == 384 * MIB
        lab = Lab.existing(project, tmp_path / project)
        rows = lab.status()
        assert {r.service for r in rows} == {"backend", "frontend", "db", "redis"}
        docs = json.loads(
            subprocess.run(["docker", "inspect", *(r.id for r in rows)], capture_output=True,
                           text=True, check=True).stdout
        )  # fmt: skip
        for doc in docs:
            assert doc["HostConfig"]["CgroupParent"] == cgroup.cgroup_parent
            assert int(doc["HostConfig"]["Memory"] or 0) == 0
            files = doc["Config"]["Labels"]["com.docker.compose.project.config_files"]
            assert files.split(",") == [str(p) for p in lab.compose_files]
            # The kernel puts the container under the parent (its memory cgroup says so).
            memcg = next(
                line
                for line in Path(f"/proc/{doc['State']['Pid']}/cgroup").read_text().split()
                if ":memory:" in line
            )
            assert memcg.endswith(f"/{cgroup.name}/{doc['Id']}"), memcg
        status = _cli("status", *where)
        assert status.returncode == 0 and f"cgroup {cgroup.cgroup_parent}" in status.stdout
        assert "of 384 MiB used" in status.stdout

        # Under load the parent runs out: the kernel kills in the group, at the parent's limit.
        stop = threading.Event()
        loader = threading.Thread(target=lab.load, kwargs={"duration_s": 240, "rate": 8.0,
                                                           "stop": stop}, daemon=True)  # fmt: skip
        loader.start()
        try:
            deadline = time.monotonic() + 200
            while not lab.oom_kills() and time.monotonic() < deadline:
                time.sleep(2)
        finally:
            stop.set()
            loader.join(timeout=60)
        kills = lab.oom_kills()
        assert kills, "the group never ran out under load"
        assert {k.service for k in kills} <= {"backend", "db", "frontend", "redis"}
        summary = next(line for line in kills[0].lines if "oom-kill:" in line)
        assert f"oom_memcg=/{cgroup.name}," in summary, summary
        assert kills[0].task in ("gunicorn", "python3")
    finally:
        down = _cli("down", *where)
        again = _cli("down", *where)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not cgroup.exists() and not list(Path("/sys/fs/cgroup").glob(f"*/{cgroup.name}"))
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr

"""The incident lab, for real: docker engine, compose, gunicorn and the kernel's OOM killer."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from fixtures_lab import LabOom, require_docker
from incident_console.cli import main
from incident_console.lab.compose import (
    COMPOSE_CANDIDATES,
    ComposeUnavailable,
    compose_command,
    detect_compose,
)
from incident_console.lab.image import rootfs_tar
from incident_console.lab.lab import Lab, LabError, parse_size
from incident_console.lab.load import run_load
from incident_console.lab.oom import oom_kills
from incident_console.lab.stackfiles import LabSettings, compose_yaml
from incident_console.transport.local import LocalHost

FIXTURES = Path(__file__).parent / "fixtures" / "lab"
GUNICORN_KILLED = re.compile(
    r"Worker with pid \d+ was terminated due to signal 9|Worker \(pid:\d+\) was sent SIGKILL"
)


# -- no docker needed ------------------------------------------------------------------------


def test_rootfs_has_mount_points_users_and_usr_merge_links() -> None:
    with tarfile.open(fileobj=io.BytesIO(rootfs_tar())) as tar:
        members = {m.name: m for m in tar.getmembers()}
        passwd = tar.extractfile(members["etc/passwd"])
        assert passwd is not None
        users = [line.split(":")[0] for line in passwd.read().decode().splitlines()]
    assert users == ["root", "nobody"]
    assert members["tmp"].isdir() and members["tmp"].mode == 0o1777
    for d in ("proc", "sys", "dev", "run", "app", "usr"):
        assert members[d].isdir(), d
    for link in ("bin", "sbin", "lib", "lib64"):
        if os.path.islink(f"/{link}"):
            assert members[link].issym() and members[link].linkname == f"usr/{link}"


def test_compose_file_is_shaped_like_the_seed() -> None:
    text = compose_yaml(LabSettings("icx", "300m", 3, 18080, 18000, extra=2))
    doc = YAML(typ="safe").load(text)
    backend = doc["services"]["backend"]
    assert "GUNICORN_WORKERS=${GUNICORN_WORKERS:-3}" in backend["environment"]
    assert "GUNICORN_MAX_REQUESTS=${GUNICORN_MAX_REQUESTS:-0}" in backend["environment"]
    assert backend["mem_limit"] == "300m"
    assert "/usr:/usr:ro" in backend["volumes"]
    assert backend["healthcheck"]["test"][0] == "CMD"
    assert doc["services"]["frontend"]["ports"] == ["127.0.0.1:18080:8080"]
    assert set(doc["services"]) == {"backend", "frontend", "db", "redis", "idle-01", "idle-02"}


def test_sizes_and_names_are_checked() -> None:
    assert parse_size("256m") == 256 * 1024 * 1024
    assert parse_size("1G") == 1024**3
    with pytest.raises(LabError, match="not a memory size"):
        parse_size("lots")
    with pytest.raises(LabError, match="bad project name"):
        Lab("Bad Name!")


def test_load_refuses_anything_but_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        run_load("http://203.0.113.10/api/v1/items", 1, 1, 1)


def test_compose_command_reports_every_candidate_it_tried() -> None:
    with pytest.raises(ComposeUnavailable) as err:
        compose_command(run=lambda argv: 1)
    assert "docker compose" in str(err.value) and "docker-compose" in str(err.value)


def test_lab_layer_does_not_load_textual() -> None:
    code = "import sys, incident_console.lab.lab, incident_console.lab.compose; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cli_bad_project_is_one_line() -> None:
    result = CliRunner().invoke(main, ["lab", "status", "--project", "NO WAY"])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "bad project name" in result.output


def test_captured_fixtures_are_real_lab_text() -> None:
    dmesg = (FIXTURES / "dmesg-oom.txt").read_text().splitlines()
    cid = re.search(r"task_memcg=/docker/([0-9a-f]{64})", "\n".join(dmesg))
    assert cid is not None
    kills = oom_kills(cid.group(1), dmesg)
    assert len(kills) == 1 and kills[0].task == "gunicorn" and kills[0].pid > 0
    assert (
        kills[0]
        .lines[0]
        .endswith("invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0")
    )
    assert GUNICORN_KILLED.search((FIXTURES / "gunicorn-oom.log").read_text())


# -- real docker -----------------------------------------------------------------------------


async def test_detect_compose_through_the_local_transport() -> None:
    require_docker()
    host = LocalHost()
    await host.connect()
    try:
        found = await detect_compose(host)
        assert tuple(found) in COMPOSE_CANDIDATES
        assert (await host.run([*found, "version"])).ok
    finally:
        await host.close()


@pytest.mark.docker
@pytest.mark.lab
def test_lab_up_is_healthy_with_the_limit_in_effect(lab: Lab) -> None:
    assert lab.last_up is not None and lab.last_up.seconds_to_healthy <= 60
    by_service = {c.service: c for c in lab.status()}
    assert set(by_service) >= {"backend", "frontend", "db", "redis"}
    backend = by_service["backend"]
    assert backend.state == "running" and backend.health == "healthy"
    inspected = json.loads(
        subprocess.run(["docker", "inspect", backend.id], capture_output=True, check=True).stdout
    )
    assert inspected[0]["HostConfig"]["Memory"] == 256 * 1024 * 1024
    with urllib.request.urlopen(lab.health_url, timeout=10) as resp:
        assert resp.status == 200 and json.load(resp)["status"] == "ok"
    logs = lab.logs("backend")
    assert logs.count("Booting worker with pid") >= 4 and "--workers 4" in logs


@pytest.mark.docker
@pytest.mark.lab
def test_cli_status_shows_the_shared_lab(lab: Lab) -> None:
    result = CliRunner().invoke(
        main, ["lab", "status", "--project", lab.project, "--dir", str(lab.directory)]
    )
    assert result.exit_code == 0, result.output
    backend = next(ln for ln in result.output.splitlines() if ln.startswith("backend"))
    assert "healthy" in backend and "256 MiB" in backend
    assert lab.frontend_url in result.output


@pytest.mark.docker
@pytest.mark.lab
@pytest.mark.slow
def test_load_ends_in_a_kernel_oom_kill_of_a_gunicorn_worker(lab: Lab, lab_oom: LabOom) -> None:
    kill = lab_oom.kill
    assert kill.container_id == lab.backend_container_id() == lab_oom.container_id
    oom_line = next(ln for ln in kill.lines if "oom-kill:" in ln)
    assert f"task_memcg=/docker/{lab_oom.container_id}" in oom_line
    assert (
        "CONSTRAINT_MEMCG" in oom_line and f"oom_memcg=/docker/{lab_oom.container_id}" in oom_line
    )
    assert kill.task == "gunicorn" and any(
        f"Killed process {kill.pid} (gunicorn)" in ln for ln in kill.lines
    )
    # The kill is in the live kernel log, not only in what we parsed.
    dmesg = subprocess.run(["dmesg"], capture_output=True, text=True, check=True).stdout
    assert oom_line in dmesg
    # gunicorn notices the dead worker: its master logs it (20.1 and 21+ wordings).
    deadline = time.monotonic() + 15
    while not GUNICORN_KILLED.search(logs := lab.logs("backend")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert GUNICORN_KILLED.search(logs), logs[-2000:]
    # The container lives on: docker's own OOMKilled flag misses this kill.
    backend = next(c for c in lab.status() if c.service == "backend")
    assert backend.state == "running"


@pytest.mark.docker
def test_lab_down_leaves_nothing(tmp_path: Path) -> None:
    require_docker()
    project = f"ictd{os.getpid()}"
    small = Lab(project, tmp_path / project, mem_limit="64m", workers=1, extra=2)
    label = f"label=com.docker.compose.project={project}"
    try:
        small.up()
        idle = [c for c in small.status() if c.service.startswith("idle-")]
        assert len(idle) == 2 and all(c.memory_limit == 16 * 1024 * 1024 for c in idle)
        assert all(c.state == "running" for c in idle)
    finally:
        small.down()
    ps = subprocess.run(["docker", "ps", "-aq", "--filter", label], capture_output=True, text=True)
    assert ps.stdout.strip() == ""
    nets = subprocess.run(
        ["docker", "network", "ls", "-q", "--filter", label], capture_output=True, text=True
    )
    assert nets.stdout.strip() == ""
    vols = subprocess.run(
        ["docker", "volume", "ls", "-q", "--filter", label], capture_output=True, text=True
    )
    assert vols.stdout.strip() == ""
    assert not small.directory.exists()

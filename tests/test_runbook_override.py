"""A project started from a base file and a production override, fixed by a runbook.

Compose records every `-f` file in the containers' labels. The runbook patches the file that
holds the service's settings (the override) and recreates the service with every file, in
order, from the project's working dir: the new container has the override's settings (its
memory limit in `docker inspect`), and `runbook undo` restores both files byte for byte.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures_lab import require_docker
from incident_console.lab.lab import Lab
from incident_console.runbook.actions import compose_argv
from incident_console.runbook.compose_files import label_files, settings_file

CLI = str(Path(sys.executable).parent / "incident-console")
MIB = 1 << 20

BASE = """services:
  backend:
    image: app
    environment:
      - A=1
  db:
    image: postgres
"""
PROD = """services:
  backend:
    restart: unless-stopped
    environment:
      - GUNICORN_WORKERS=4
"""
PROD_WITH_LIMIT = PROD + "    mem_limit: 512m\n"


# -- no docker needed ------------------------------------------------------------------------


def test_the_file_that_sets_the_memory_wins_else_the_last_that_names_the_service() -> None:
    files = label_files(["docker-compose.yml", "docker-compose.prod.yml"], "/srv/app")
    assert files == ["/srv/app/docker-compose.yml", "/srv/app/docker-compose.prod.yml"]
    base, prod = files
    path, why = settings_file({base: BASE, prod: PROD}, "backend")
    assert path == prod and "no file sets backend's memory" in why
    limited = BASE.replace("      - A=1\n", "      - A=1\n    mem_limit: 256m\n")
    path, why = settings_file({base: limited, prod: PROD}, "backend")
    assert path == base and "sets backend's memory" in why
    assert settings_file({base: limited, prod: PROD_WITH_LIMIT}, "backend")[0] == prod
    # db is only in the base file: that is where its settings are.
    assert settings_file({base: BASE, prod: PROD}, "db")[0] == base
    # An unreadable file is said, never fatal.
    path, why = settings_file({base: BASE, prod: None}, "backend")
    assert path == base and "could not be read" in why
    assert settings_file({base: BASE}, "backend")[0] == base


@pytest.mark.parametrize(
    ("prefix", "compat"),
    [(["docker-compose"], ["--compatibility"]), (["docker", "compose"], [])],
)
def test_recreate_passes_every_file_and_the_env_file_in_order(
    prefix: list[str], compat: list[str]
) -> None:
    v = {
        "compose_files": "/srv/app/docker-compose.yml,/srv/app/docker-compose.prod.yml",
        "compose_file": "/srv/app/docker-compose.prod.yml",
        "project": "shop",
        "project_dir": "/srv/app",
        "env_file": "/srv/app/.env.prod",
    }
    argv = compose_argv(prefix, v, "backend", compatibility=True)
    assert argv == [
        *prefix, *compat,
        "-f", "/srv/app/docker-compose.yml", "-f", "/srv/app/docker-compose.prod.yml",
        "-p", "shop", "--project-directory", "/srv/app", "--env-file", "/srv/app/.env.prod",
        "up", "-d", "--force-recreate", "--no-deps", "backend",
    ]  # fmt: skip
    # A file set by hand that is not one of the project's is passed after them.
    argv = compose_argv(prefix, {**v, "compose_file": "/tmp/x.yml"}, "backend", compatibility=False)
    assert argv[argv.index("/srv/app/docker-compose.prod.yml") + 1 : argv.index("-p")] == [
        "-f",
        "/tmp/x.yml",
    ]


# -- on the engine ---------------------------------------------------------------------------

RUNBOOK = """name: override-limit
title: A limit written where production keeps it
steps:
  - id: memory-limit
    title: A limit for the backend
    kind: remediate
    why: the override holds the backend's settings
    requires: [compose_file]
    compose_set:
      memory_limit: 192m
      environment:
        GUNICORN_WORKERS: '${GUNICORN_WORKERS:-2}'
  - id: recreate
    title: Recreate it from every compose file
    kind: remediate
    why: the settings apply to a new container only
    requires: [compose_file, project, project_dir]
    recreate: {service: backend}
    checks:
      - exit_status: 0
      - limit_in_effect: {service: backend}
"""


@pytest.fixture
def two_file_lab(tmp_path: Path) -> Iterator[Lab]:
    require_docker()
    lab = Lab(f"iho{os.getpid()}", tmp_path / "lab", limits=False)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


def _inspect(cid: str) -> dict[str, object]:
    out = subprocess.run(["docker", "inspect", cid], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]  # type: ignore[no-any-return]


@pytest.mark.docker
@pytest.mark.slow
def test_recreated_container_has_the_overrides_settings(two_file_lab: Lab, tmp_path: Path) -> None:
    lab = two_file_lab
    base, prod = lab.compose_files
    assert prod.name == "docker-compose.prod.yml"
    before = {p: p.read_bytes() for p in lab.compose_files}
    old = lab.backend_container_id()
    runbook = tmp_path / "override.yaml"
    runbook.write_text(RUNBOOK)
    journal = tmp_path / "run.jsonl"
    run = subprocess.run(
        [CLI, "runbook", "run", str(runbook), "local", "--yes", "--set",
         f"project={lab.project}", "--journal", str(journal)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-1000:]
    assert f"compose_file = {prod}" in run.stdout, run.stdout[:2000]
    # The override was patched, the base file left alone.
    assert base.read_bytes() == before[base]
    assert "mem_limit: 192m" in prod.read_text()
    records = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    recreate = next(
        r["argv"] for r in records if r.get("kind") == "command" and "--force-recreate" in r["argv"]
    )
    assert recreate[recreate.index("-f") :].count("-f") == 2
    assert [recreate[i + 1] for i, a in enumerate(recreate) if a == "-f"] == [str(base), str(prod)]
    new = lab.backend_container_id()
    assert new != old
    doc = _inspect(new)
    host_config = doc["HostConfig"]
    config = doc["Config"]
    assert isinstance(host_config, dict) and isinstance(config, dict)
    assert host_config["Memory"] == 192 * MIB  # the override's limit is in effect
    assert "GUNICORN_WORKERS=2" in config["Env"]  # and its environment
    assert "LAB_LEAK_KIB=1024" in config["Env"]  # with the base file's
    assert host_config["RestartPolicy"]["Name"] == "unless-stopped"  # type: ignore[index]

    undo = subprocess.run([CLI, "runbook", "undo", str(journal), "local"], capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert undo.returncode == 0, undo.stdout + undo.stderr
    assert {p: p.read_bytes() for p in lab.compose_files} == before

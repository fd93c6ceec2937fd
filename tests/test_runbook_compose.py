"""Round-trip compose edits: comments, order and quoting kept; limits where the file keeps them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from incident_console.runbook.compose_patch import (
    ComposeError,
    ComposeFile,
    backup_path,
    is_backup,
    unified_diff,
)

SEEDLIKE = """\
# production stack
services:
  backend:
    image: app/backend:1.4   # pinned
    command: gunicorn app.main:app --workers 4 --timeout 120
    environment:
      GUNICORN_WORKERS: "4"
      DATABASE_URL: postgres://db/app
    deploy:
      resources:
        limits:
          cpus: "1.5"
  db:
    image: postgres:15
"""


def test_mapping_env_string_command_and_deploy_limit() -> None:
    compose = ComposeFile(SEEDLIKE, "docker-compose.prod.yml")
    compose.set_environment(
        "backend", {"GUNICORN_WORKERS": "${GUNICORN_WORKERS:-2}", "GUNICORN_MAX_REQUESTS": "1000"}
    )
    compose.set_command_args("backend", {"--workers": "2", "--max-requests": "1000"})
    compose.set_memory_limit("backend", "512M")
    compose.set_memory_reservation("backend", "256M")
    out = compose.dump()
    assert out.startswith("# production stack\n")
    assert "image: app/backend:1.4   # pinned" in out
    assert 'GUNICORN_WORKERS: "${GUNICORN_WORKERS:-2}"' in out  # the file's quoting kept
    assert "command: gunicorn app.main:app --workers 2 --timeout 120 --max-requests 1000" in out
    assert "mem_limit" not in out  # no version, deploy: already there: the limit goes there
    again = ComposeFile(out)
    assert again.memory_limit("backend") == "512M"
    assert again.limit_under_deploy("backend")
    assert again.environment("backend")["GUNICORN_MAX_REQUESTS"] == "1000"
    # Order kept: services and keys appear where they were.
    assert out.index("backend:") < out.index("db:")
    assert out.index("cpus:") < out.index("memory: 512M")


def test_version_2_file_gets_mem_limit_and_keeps_no_swap() -> None:
    text = (
        'version: "2.4"\nservices:\n  backend:\n    image: x\n    mem_limit: 256m\n'
        "    memswap_limit: 256m\n"
    )
    compose = ComposeFile(text)
    compose.set_memory_limit("backend", "384M")
    out = compose.dump()
    assert "mem_limit: 384M" in out and "memswap_limit: 384M" in out
    assert "deploy" not in out
    assert not ComposeFile(out).limit_under_deploy("backend")


def test_errors_name_the_file_and_service() -> None:
    with pytest.raises(ComposeError, match="c.yml: no service 'api'"):
        ComposeFile(SEEDLIKE, "c.yml").set_environment("api", {"A": "1"})
    with pytest.raises(ComposeError, match="has no command"):
        ComposeFile(SEEDLIKE, "c.yml").set_command_args("db", {"--workers": "2"})
    with pytest.raises(ComposeError, match="no services"):
        ComposeFile("just: text\n", "c.yml")


def test_diff_and_backup_names() -> None:
    compose = ComposeFile(SEEDLIKE, "c.yml")
    compose.set_environment("backend", {"GUNICORN_WORKERS": "2"})
    diff = unified_diff(SEEDLIKE, compose.dump(), "c.yml")
    assert '-      GUNICORN_WORKERS: "4"' in diff and '+      GUNICORN_WORKERS: "2"' in diff
    name = backup_path("/srv/app/docker-compose.yml", now=1796050862.0)
    assert name == "/srv/app/docker-compose.yml.incident-console-20261130T150102Z.bak"
    assert is_backup(name)


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose v1 missing")
def test_patched_files_are_valid_for_docker_compose(tmp_path: Path) -> None:
    compose = ComposeFile(SEEDLIKE)
    compose.set_environment("backend", {"GUNICORN_WORKERS": "${GUNICORN_WORKERS:-2}"})
    compose.set_memory_limit("backend", "512M")
    compose.set_memory_reservation("backend", "256M")
    path = tmp_path / "docker-compose.yml"
    path.write_text(compose.dump())
    done = subprocess.run(
        ["docker-compose", "--compatibility", "-f", str(path), "config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "GUNICORN_WORKERS: '2'" in done.stdout or 'GUNICORN_WORKERS: "2"' in done.stdout

"""`diagnose` on the lab over a real sshd: healthy before the incident, the OOM kill attributed after."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from fixtures_lab import LabOom
from fixtures_sshd import SshdServer, ssh_target
from incident_console.lab.lab import Lab


def _diagnose(sshd: SshdServer, *args: str) -> tuple[int, dict[str, object], str]:
    argv = [sys.executable, "-m", "incident_console", "diagnose", *ssh_target(sshd), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    doc = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    return proc.returncode, doc, proc.stderr


def test_healthy_lab_is_healthy(sshd: SshdServer, lab: Lab) -> None:
    """No kill in the window, every container healthy: verdict healthy, exit 0."""
    code, doc, err = _diagnose(sshd, "--json", "--project", lab.project, "--since", "2s")
    assert code == 0, (err, doc.get("findings"))
    assert doc["verdict"] == "healthy"
    names = {c["service"] for c in doc["containers"]}  # type: ignore[index, union-attr]
    assert {"backend", "frontend", "db", "redis"} <= names
    backend = next(c for c in doc["containers"] if c["service"] == "backend")  # type: ignore[union-attr, index]
    assert backend["memory_limit_bytes"] == 256 * 1024 * 1024
    assert backend["health"] == "healthy"
    mem = doc["memory"]
    assert mem["total_bytes"] > 0 and 0 < mem["available_bytes"] <= mem["total_bytes"]  # type: ignore[index, operator]


def test_oom_kill_is_attributed_to_backend(sshd: SshdServer, lab: Lab, lab_oom: LabOom) -> None:
    since = int(time.time() - lab_oom.at + 120)
    code, doc, err = _diagnose(sshd, "--json", "--since", f"{since}s")
    assert code == 1, err
    assert doc["verdict"] == "problems"
    kills = [k for k in doc["oom_kills"] if k["container_id"] == lab_oom.container_id]  # type: ignore[union-attr, index]
    assert kills, doc["oom_kills"]
    kill = kills[0]
    assert kill["service"] == "backend"
    assert kill["constraint"] == "limit"
    assert kill["process"] in ("gunicorn", "python3")
    assert kill["pid"] == lab_oom.kill.pid
    assert any(
        f["severity"] == "critical" and "backend" in f["summary"] and "OOM" in f["summary"]
        for f in doc["findings"]  # type: ignore[union-attr]
    ), doc["findings"]


def test_human_output_names_the_cause(sshd: SshdServer, lab: Lab, lab_oom: LabOom) -> None:
    since = int(time.time() - lab_oom.at + 120)
    argv = [
        sys.executable,
        "-m",
        "incident_console",
        "diagnose",
        *ssh_target(sshd),
        "--since",
        f"{since}s",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert "PROBLEMS" in first
    assert "OOM kill(s) in backend" in proc.stdout and "256.0 MiB limit" in proc.stdout


def test_bad_target_is_one_line_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "incident_console", "diagnose", "ftp://nowhere"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def _run_cli(
    args: list[str], env: dict[str, str], prefix: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "incident_console", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def test_no_docker_engine_is_one_line_exit_2() -> None:
    proc = _run_cli(
        ["diagnose", "--sample", "2"], {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "no docker engine at unix:///nonexistent/docker.sock" in lines[0]
    assert "host local:" in proc.stdout  # what the host said is still shown


def test_docker_socket_permission_denied_is_one_line_exit_2(tmp_path: Path) -> None:
    """Root without CAP_DAC_OVERRIDE meets a mode-000 socket as a user outside the docker group would."""
    path = tmp_path / "docker.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()
    path.chmod(0)
    try:
        proc = _run_cli(
            ["diagnose", "--sample", "2"],
            {"DOCKER_HOST": f"unix://{path}"},
            prefix=["setpriv", "--bounding-set", "-dac_override,-dac_read_search"],
        )
    finally:
        server.close()
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert f"permission denied on {path}" in lines[0] and "docker group" in lines[0]

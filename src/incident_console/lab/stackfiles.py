"""The lab's compose project on disk: docker-compose.yml and the services' files.

The compose file is shaped like the seed's production file (gunicorn settings as environment
variables with defaults, a healthcheck, a memory limit), so the console's runbook can patch it
as it would patch the real one. It uses `mem_limit` (file format 2.4): docker-compose v1
ignores `deploy.resources` unless run with --compatibility, while `mem_limit` works in v1 and v2.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from incident_console.lab.image import LAB_IMAGE

COMPOSE_FILE = "docker-compose.yml"
STATE_FILE = "lab.json"

_HEALTH_HTTP = (
    "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=3)"
)
_HEALTH_TCP = "import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3).close()"


@dataclass(frozen=True, slots=True)
class LabSettings:
    """What `lab up` was asked for; kept in the lab folder so status/load/down find it.

    Attributes:
        project: compose project name.
        mem_limit: the backend's memory limit as compose writes it ('256m').
        workers: the GUNICORN_WORKERS default written into the compose file.
        frontend_port: loopback port of the frontend.
        backend_port: loopback port of the backend (for probes that bypass the frontend).
        extra: how many extra idle containers.
        leak_kib: KiB each /api/v1/items request keeps in its worker.
        limits: False for no container memory limit at all (the seed's server before the fix).
        publish_address: where the ports are published on the host (a lab server's VM: all).
        health_interval_s: seconds between healthchecks (each starts a python3).
        health_timeout_s: seconds a healthcheck may take.
        health_start_s: the healthchecks' start period.
    """

    project: str
    mem_limit: str = "256m"
    workers: int = 4
    frontend_port: int = 0
    backend_port: int = 0
    extra: int = 0
    leak_kib: int = 1024
    limits: bool = True
    publish_address: str = "127.0.0.1"
    health_interval_s: int = 5
    health_timeout_s: int = 4
    health_start_s: int = 5

    def save(self, directory: Path) -> None:
        """Write the settings to `directory`/lab.json."""
        (directory / STATE_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> LabSettings | None:
        """Read `directory`/lab.json, or None when there is none (or it is unreadable)."""
        try:
            data = json.loads((directory / STATE_FILE).read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None


def _healthcheck(test: str, s: LabSettings) -> str:
    return (
        "    healthcheck:\n"
        f"      test: {json.dumps(['CMD', '/usr/bin/python3', '-c', test])}\n"
        f"      interval: {s.health_interval_s}s\n"
        f"      timeout: {s.health_timeout_s}s\n"
        "      retries: 3\n"
        f"      start_period: {s.health_start_s}s\n"
    )


def compose_yaml(s: LabSettings) -> str:
    """The docker-compose.yml text for `s` (the `$` of ${VAR:-default} are compose's, not ours)."""
    mounts = "    volumes:\n      - /usr:/usr:ro\n"
    addr = s.publish_address

    def limit(size: str, swap: bool = False) -> str:
        if not s.limits:
            return ""
        # memswap equal to mem_limit: no swap, so the limit ends in an OOM kill, not swapping.
        return f"    mem_limit: {size}\n" + (f"    memswap_limit: {size}\n" if swap else "")

    common = f"    image: {LAB_IMAGE}\n    restart: unless-stopped\n"
    backend = (
        "  backend:\n"
        + common
        + '    entrypoint: ["/bin/sh", "/app/entrypoint.sh"]\n'
        + "    environment:\n"
        + f"      - GUNICORN_WORKERS=${{GUNICORN_WORKERS:-{s.workers}}}\n"
        + "      - GUNICORN_MAX_REQUESTS=${GUNICORN_MAX_REQUESTS:-0}\n"
        + "      - GUNICORN_MAX_REQUESTS_JITTER=${GUNICORN_MAX_REQUESTS_JITTER:-0}\n"
        + "      - GUNICORN_TIMEOUT=${GUNICORN_TIMEOUT:-30}\n"
        + f"      - LAB_LEAK_KIB={s.leak_kib}\n"
        + "      - PYTHONDONTWRITEBYTECODE=1\n"
        + "      - PYTHONUNBUFFERED=1\n"
        + mounts
        + "      - ./backend:/app:ro\n"
        + limit(s.mem_limit, swap=True)
        + f'    ports:\n      - "{addr}:{s.backend_port}:8000"\n'
        + _healthcheck(_HEALTH_HTTP.format(port=8000, path="/api/v1/health"), s)
        + "    depends_on:\n      - db\n      - redis\n"
    )
    frontend = (
        "  frontend:\n"
        + common
        + '    command: ["/usr/bin/python3", "/app/frontend.py"]\n'
        + "    environment:\n      - PYTHONDONTWRITEBYTECODE=1\n      - PROXY_TIMEOUT_S=15\n"
        + mounts
        + "      - ./frontend:/app:ro\n"
        + limit("64m")
        + f'    ports:\n      - "{addr}:{s.frontend_port}:8080"\n'
        + _healthcheck(_HEALTH_HTTP.format(port=8080, path="/"), s)
        + "    depends_on:\n      - backend\n"
    )
    standins = ""
    for name, port in (("db", 5432), ("redis", 6379)):
        standins += (
            f"  {name}:\n"
            + common
            + f'    command: ["/usr/bin/python3", "/app/standin.py", "{port}", "{name}"]\n'
            + "    environment:\n      - PYTHONDONTWRITEBYTECODE=1\n"
            + mounts
            + "      - ./standins:/app:ro\n"
            + limit("32m")
            + _healthcheck(_HEALTH_TCP.format(port=port), s)
        )
    idle = ""
    for i in range(1, s.extra + 1):
        idle += (
            f"  idle-{i:02d}:\n"
            + common
            + '    command: ["/usr/bin/sleep", "infinity"]\n'
            # sleep as PID 1 ignores SIGTERM; nothing to save, so stop it at once.
            + "    stop_signal: SIGKILL\n"
            + mounts
            + limit("16m")
        )
    return (
        f"# incident-console lab, project {s.project}: written by `incident-console lab up`.\n"
        'version: "2.4"\n\nservices:\n' + backend + frontend + standins + idle
    )


def _resource(name: str) -> str:
    return (resources.files("incident_console.lab") / "stack" / name).read_text()


def write_stack(directory: Path, s: LabSettings) -> Path:
    """Write the compose project into `directory` (created). Returns the compose file's path."""
    files = {
        "backend/app.py": _resource("app.py.txt"),
        "backend/entrypoint.sh": _resource("entrypoint.sh"),
        "frontend/frontend.py": _resource("frontend.py.txt"),
        "standins/standin.py": _resource("standin.py.txt"),
        COMPOSE_FILE: compose_yaml(s),
    }
    for rel, text in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        # Readable by any uid in the containers (they mount these read-only).
        os.chmod(path, 0o755 if rel.endswith(".sh") else 0o644)
    s.save(directory)
    return directory / COMPOSE_FILE

"""The lab's compose project on disk: docker-compose.yml and the services' files.

The compose file is shaped like the seed's production file (gunicorn settings as environment
variables with defaults, a healthcheck, a memory limit), so the console's runbook can patch it
as it would patch the real one. It uses `mem_limit` (file format 2.4): docker-compose v1
ignores `deploy.resources` unless run with --compatibility, while `mem_limit` works in v1 and v2.

With `override` the stack is split the way production stacks are: docker-compose.yml holds
what every environment shares (image, mounts, healthchecks, ports) and docker-compose.prod.yml
the settings that matter (the gunicorn variables, memory limits, restart policy, the cgroup
parent); compose runs with `-f docker-compose.yml -f docker-compose.prod.yml`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from incident_console.domain import durations
from incident_console.lab.image import LAB_IMAGE

COMPOSE_FILE = "docker-compose.yml"
#: The production override (issue [11]): the seed's server ran `-f docker-compose.prod.yml`.
OVERRIDE_FILE = "docker-compose.prod.yml"
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
        override: split the stack into docker-compose.yml and docker-compose.prod.yml.
        cgroup_parent: every container's cgroup parent ('' = docker's default); its limit
            stands for a server's RAM (`lab up --host-memory`).
        host_memory: that parent's memory limit as asked ('768m'; '' = none).
        db_memory: what the db stand-in holds resident, like PostgreSQL's shared buffers
            ('' or '0' = nothing).
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
    override: bool = False
    cgroup_parent: str = ""
    host_memory: str = ""
    db_memory: str = ""

    @property
    def compose_files(self) -> list[str]:
        """The compose files in the order compose reads them (`-f` each)."""
        return [COMPOSE_FILE, OVERRIDE_FILE] if self.override else [COMPOSE_FILE]

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


@dataclass(slots=True)
class _Service:
    """One service's settings, each marked shared (docker-compose.yml) or production."""

    name: str
    shared: list[str] = field(default_factory=list)
    prod: list[str] = field(default_factory=list)
    env_shared: list[str] = field(default_factory=list)
    env_prod: list[str] = field(default_factory=list)

    def text(self, shared: bool, prod: bool) -> str:
        lines = (self.shared if shared else []) + (self.prod if prod else [])
        env = (self.env_shared if shared else []) + (self.env_prod if prod else [])
        if env:
            lines = [*lines[:1], "    environment:\n", *(f"      - {e}\n" for e in env),
                     *lines[1:]]  # fmt: skip
        return f"  {self.name}:\n" + "".join(lines) if lines else ""


def _services(s: LabSettings) -> list[_Service]:
    mounts = "    volumes:\n      - /usr:/usr:ro\n"
    addr = s.publish_address

    def limit(size: str, swap: bool = False) -> list[str]:
        if not s.limits:
            return []
        # memswap equal to mem_limit: no swap, so the limit ends in an OOM kill, not swapping.
        return [f"    mem_limit: {size}\n"] + ([f"    memswap_limit: {size}\n"] if swap else [])

    def prod() -> list[str]:
        lines = ["    restart: unless-stopped\n"]
        if s.cgroup_parent:
            lines.append(f"    cgroup_parent: {s.cgroup_parent}\n")
        return lines

    image = f"    image: {LAB_IMAGE}\n"
    backend = _Service(
        "backend",
        shared=[
            image,
            '    entrypoint: ["/bin/sh", "/app/entrypoint.sh"]\n',
            mounts + "      - ./backend:/app:ro\n",
            f'    ports:\n      - "{addr}:{s.backend_port}:8000"\n',
            _healthcheck(_HEALTH_HTTP.format(port=8000, path="/api/v1/health"), s),
            "    depends_on:\n      - db\n      - redis\n",
        ],
        prod=[*prod(), *limit(s.mem_limit, swap=True)],
        env_shared=[
            f"LAB_LEAK_KIB={s.leak_kib}",
            "PYTHONDONTWRITEBYTECODE=1",
            "PYTHONUNBUFFERED=1",
        ],  # fmt: skip
        env_prod=[
            f"GUNICORN_WORKERS=${{GUNICORN_WORKERS:-{s.workers}}}",
            "GUNICORN_MAX_REQUESTS=${GUNICORN_MAX_REQUESTS:-0}",
            "GUNICORN_MAX_REQUESTS_JITTER=${GUNICORN_MAX_REQUESTS_JITTER:-0}",
            "GUNICORN_TIMEOUT=${GUNICORN_TIMEOUT:-30}",
        ],
    )
    frontend = _Service(
        "frontend",
        shared=[
            image,
            '    command: ["/usr/bin/python3", "/app/frontend.py"]\n',
            mounts + "      - ./frontend:/app:ro\n",
            f'    ports:\n      - "{addr}:{s.frontend_port}:8080"\n',
            _healthcheck(_HEALTH_HTTP.format(port=8080, path="/"), s),
            "    depends_on:\n      - backend\n",
        ],
        prod=[*prod(), *limit("64m")],
        env_shared=["PYTHONDONTWRITEBYTECODE=1", "PROXY_TIMEOUT_S=15"],
    )
    services = [backend, frontend]
    resident = _mib(s.db_memory)
    for name, port in (("db", 5432), ("redis", 6379)):
        held = resident if name == "db" else 0
        # The stand-in's own interpreter (~10 MiB) and the pages it holds must fit its limit.
        size = f"{held + 48}m" if held else "32m"
        services.append(
            _Service(
                name,
                shared=[
                    image,
                    f'    command: ["/usr/bin/python3", "/app/standin.py", "{port}", "{name}"]\n',
                    mounts + "      - ./standins:/app:ro\n",
                    _healthcheck(_HEALTH_TCP.format(port=port), s),
                ],
                prod=[*prod(), *limit(size)],
                env_shared=["PYTHONDONTWRITEBYTECODE=1"]
                + ([f"STANDIN_RESIDENT_MIB={held}"] if held else []),
            )
        )
    for i in range(1, s.extra + 1):
        services.append(
            _Service(
                f"idle-{i:02d}",
                shared=[
                    image,
                    '    command: ["/usr/bin/sleep", "infinity"]\n',
                    # sleep as PID 1 ignores SIGTERM; nothing to save, so stop it at once.
                    "    stop_signal: SIGKILL\n",
                    mounts,
                ],
                prod=[*prod(), *limit("16m")],
            )
        )
    return services


def _mib(size: str) -> int:
    """MiB of a size text ('300m'), 0 for '' or '0'."""
    if not size or size == "0":
        return 0
    return durations.parse_size(size) // 1048576


def _header(s: LabSettings, what: str) -> str:
    return (
        f"# incident-console lab, project {s.project}: written by `incident-console lab up`.\n"
        f"{what}"
        'version: "2.4"\n\nservices:\n'
    )


def compose_yaml(s: LabSettings) -> str:
    """The docker-compose.yml text for `s` (the `$` of ${VAR:-default} are compose's, not ours).

    With `s.override` it holds only what is shared; :func:`override_yaml` has the rest.
    """
    both = not s.override
    what = "" if both else f"# Shared settings; production's are in {OVERRIDE_FILE}.\n"
    return _header(s, what) + "".join(v.text(True, both) for v in _services(s))


def override_yaml(s: LabSettings) -> str:
    """The docker-compose.prod.yml text: the settings that matter in production."""
    what = f"# Production settings, read after {COMPOSE_FILE} (-f both).\n"
    return _header(s, what) + "".join(v.text(False, True) for v in _services(s))


def compose_texts(s: LabSettings) -> dict[str, str]:
    """Every compose file of the stack, name -> text, in the order compose reads them."""
    texts = {COMPOSE_FILE: compose_yaml(s)}
    if s.override:
        texts[OVERRIDE_FILE] = override_yaml(s)
    return texts


def _resource(name: str) -> str:
    return (resources.files("incident_console.lab") / "stack" / name).read_text()


def write_stack(directory: Path, s: LabSettings) -> Path:
    """Write the compose project into `directory` (created). Returns the base compose file."""
    files = {
        "backend/app.py": _resource("app.py.txt"),
        "backend/entrypoint.sh": _resource("entrypoint.sh"),
        "frontend/frontend.py": _resource("frontend.py.txt"),
        "standins/standin.py": _resource("standin.py.txt"),
        **compose_texts(s),
    }
    if not s.override:
        # A lab up again without the override must not leave the old one for `-f` readers.
        (directory / OVERRIDE_FILE).unlink(missing_ok=True)
    for rel, text in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        # Readable by any uid in the containers (they mount these read-only).
        os.chmod(path, 0o755 if rel.endswith(".sh") else 0o644)
    s.save(directory)
    return directory / COMPOSE_FILE

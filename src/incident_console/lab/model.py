"""The lab's plain pieces: names, sizes, places, and what `status` and `up` report."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from incident_console.domain import durations

DEFAULT_PROJECT = "icl"
_PROJECT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


def mib_text(n: int) -> str:
    """A memory size for the lab's listings: whole MiB, or "none" for 0 (no limit)."""
    return f"{n / 1048576:.0f} MiB" if n else "none"


class LabError(Exception):
    """The lab could not do what was asked; the message is one line for the user."""


def parse_size(text: str) -> int:
    """'256m' -> 268435456 (docker's units, powers of 1024), as domain.durations reads it.

    Raises:
        LabError: not a size.
    """
    try:
        return durations.parse_size(text)
    except ValueError as exc:
        raise LabError(f"not a memory size: {text!r} (expected e.g. 256m, 1g)") from exc


def check_project(project: str) -> None:
    """Refuse a compose project name compose (or a folder name) would not take.

    Raises:
        LabError: the name is not lowercase letters, digits, '-' and '_'.
    """
    if not _PROJECT.match(project):
        raise LabError(f"bad project name {project!r}: use lowercase letters, digits, - and _")


def default_lab_dir(project: str) -> Path:
    """Where a project's files live: <user data dir>/lab/<project>."""
    return Path(platformdirs.user_data_dir("incident-console")) / "lab" / project


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class ContainerStatus:
    """One lab container as `docker inspect` sees it.

    Attributes:
        id: full container id.
        name: container name.
        service: compose service name.
        state: 'running', 'restarting', 'exited', ...
        health: 'healthy', 'unhealthy', 'starting', or '' without a healthcheck.
        memory_limit: HostConfig.Memory in bytes (0 = none): the limit in effect.
        restarts: RestartCount.
        cgroup_parent: HostConfig.CgroupParent ('' = docker's default).
    """

    id: str
    name: str
    service: str
    state: str
    health: str
    memory_limit: int
    restarts: int
    cgroup_parent: str = ""


@dataclass(frozen=True, slots=True)
class UpResult:
    """What `Lab.up` did: seconds until the backend was healthy, and whether it built the image."""

    seconds_to_healthy: float
    image_built: bool

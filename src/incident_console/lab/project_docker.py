"""A lab project's docker plumbing: docker and compose CLIs through its host, as argv lists.

:class:`~incident_console.lab.lab.Lab` inherits it; kept apart so the lab's lifecycle reads on
its own. Compose gets every `-f` file of the stack, in order (docker-compose.yml, then the
production override when there is one).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

from incident_console.lab.compose import compose_command
from incident_console.lab.hosts import LabHost
from incident_console.lab.model import (
    PROJECT_LABEL,
    SERVICE_LABEL,
    ContainerStatus,
    LabError,
)
from incident_console.lab.stackfiles import LabSettings


def last_line(text: str) -> str:
    """The last non-empty line of `text` (a command's stderr, for one-line errors)."""
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


class ProjectDocker:
    """docker and compose on one lab project (the attributes are set by Lab's constructor)."""

    project: str
    directory: Path
    host: LabHost
    stack_dir: str
    settings: LabSettings
    _compose: list[str] | None

    def _docker(self, argv: Sequence[str], timeout: float = 60.0) -> str:
        try:
            done = self.host.run(["docker", *argv], timeout=timeout)
        except FileNotFoundError:
            raise LabError("the docker CLI is not installed") from None
        except subprocess.TimeoutExpired:
            raise LabError(f"docker {argv[0]} did not finish within {timeout:g} s") from None
        if done.returncode != 0:
            raise LabError(f"docker {argv[0]} failed: {last_line(done.stderr)}")
        return done.stdout

    def compose(self, *args: str, timeout: float = 300.0) -> str:
        """Run compose (v2 plugin or v1, detected once) on this project; returns stdout.

        Raises:
            LabError: compose failed (its last stderr line).
        """
        if self._compose is None:
            self._compose = compose_command(lambda argv: self.host.run(argv, timeout=20).returncode)
        files = [a for name in self.settings.compose_files
                 for a in ("-f", f"{self.stack_dir}/{name}")]  # fmt: skip
        argv = [*self._compose, "-p", self.project, *files, *args]
        try:
            done = self.host.run(argv, cwd=self.directory, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise LabError(f"compose {args[0]} did not finish within {timeout:g} s") from None
        if done.returncode != 0:
            raise LabError(f"compose {args[0]} failed: {last_line(done.stderr)}")
        return done.stdout

    def container_ids(self) -> list[str]:
        """Ids of every container of the project, running or not."""
        out = self._docker(
            ["ps", "-aq", "--no-trunc", "--filter", f"label={PROJECT_LABEL}={self.project}"]
        )
        return out.split()

    def container_id(self, service: str) -> str | None:
        """The full id of `service`'s container, or None."""
        out = self._docker(
            [
                "ps",
                "-aq",
                "--no-trunc",
                "--filter",
                f"label={PROJECT_LABEL}={self.project}",
                "--filter",
                f"label={SERVICE_LABEL}={service}",
            ]
        )
        ids = out.split()
        return ids[0] if ids else None

    def backend_container_id(self) -> str:
        """The backend container's full id.

        Raises:
            LabError: the backend is not there.
        """
        cid = self.container_id("backend")
        if cid is None:
            raise LabError(f"lab {self.project!r} has no backend container (is it up?)")
        return cid

    def status(self) -> list[ContainerStatus]:
        """Every container of the project, sorted by service."""
        ids = self.container_ids()
        if not ids:
            return []
        found = []
        for c in json.loads(self._docker(["inspect", *ids])):
            labels = c["Config"].get("Labels") or {}
            found.append(
                ContainerStatus(
                    id=c["Id"],
                    name=c["Name"].lstrip("/"),
                    service=labels.get(SERVICE_LABEL, ""),
                    state=c["State"]["Status"],
                    health=(c["State"].get("Health") or {}).get("Status", ""),
                    memory_limit=int(c["HostConfig"].get("Memory") or 0),
                    restarts=int(c.get("RestartCount") or 0),
                    cgroup_parent=str(c["HostConfig"].get("CgroupParent") or ""),
                )
            )
        return sorted(found, key=lambda s: s.service)

    def logs(self, service: str = "backend") -> str:
        """`docker logs` of `service` (stdout and stderr together, in order of arrival)."""
        cid = self.container_id(service)
        if cid is None:
            raise LabError(f"lab {self.project!r} has no {service} container")
        return self.host.run(["docker", "logs", cid], timeout=60, merge_stderr=True).stdout

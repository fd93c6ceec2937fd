"""Docker inspect documents turned into ContainerInfo (pure; used by the docker events source),
and the narrow view of a host's containers the sources read (ContainerDirectory)."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from incident_console.domain.events import ContainerInfo
from incident_console.domain.redact import redact_env, redact_record
from incident_console.domain.sampler import cgroup_dirs

_DOCKER_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?")

LABEL_PROJECT = "com.docker.compose.project"
LABEL_SERVICE = "com.docker.compose.service"
LABEL_WORKING_DIR = "com.docker.compose.project.working_dir"
LABEL_CONFIG_FILES = "com.docker.compose.project.config_files"
LABEL_ENV_FILE = "com.docker.compose.project.environment_file"

if TYPE_CHECKING:
    from incident_console.monitor.state import HostState


@dataclass(frozen=True, slots=True)
class ContainerRef:
    """What a source knows of one container: its id, names, compose labels, state and pid."""

    id: str
    name: str
    service: str = ""
    project: str = ""
    state: str = ""  # running, exited, restarting, ...
    health: str = ""
    pid: int = 0  # State.Pid: its init process on the host
    cgroup_parent: str = ""  # HostConfig.CgroupParent: where the guess looks when /proc fails
    gone: bool = False  # removed (kept a while for the kills and the detail view)


class ContainerDirectory:
    """The host's containers as the sources see them: refs and a version counter.

    A narrow view of the monitor's HostState: no samples, logs or history, so a source cannot
    come to depend on them. The refs are rebuilt only when the state's version moved.
    """

    def __init__(self, state: HostState) -> None:
        self._state = state
        self._seen = -1
        self._refs: dict[str, ContainerRef] = {}

    @property
    def version(self) -> int:
        """Bumped on every change of the host's state: compare to tell cheaply if any."""
        return self._state.version

    def refs(self) -> Mapping[str, ContainerRef]:
        """Every container known (the removed ones too, marked gone), by full id."""
        if self._state.version != self._seen:
            self._seen = self._state.version
            self._refs = {
                cid: _ref(cid, view.info, view.gone)
                for cid, view in list(self._state.containers.items())
            }
        return self._refs

    def get(self, cid: str) -> ContainerRef | None:
        """One container's ref (None: never seen, or forgotten), without building them all."""
        view = self._state.containers.get(cid)
        return _ref(cid, view.info, view.gone) if view is not None else None


def _ref(cid: str, info: ContainerInfo, gone: bool) -> ContainerRef:
    return ContainerRef(
        id=cid,
        name=info.name,
        service=info.service,
        project=info.project,
        state=info.state,
        health=info.health,
        pid=info.pid,
        cgroup_parent=info.cgroup_parent,
        gone=gone,
    )


def parse_docker_time(text: object) -> float | None:
    """Epoch seconds of a docker timestamp ('2024-05-01T10:00:00.123456789Z'); None if unset."""
    if not isinstance(text, str) or text.startswith("0001-01-01"):
        return None
    match = _DOCKER_TIME.match(text)
    if match is None:
        return None
    head, frac, zone = match.groups()
    stamp = (
        head
        + ("." + frac[:6].ljust(6, "0") if frac else "")
        + ("+00:00" if zone in (None, "Z") else zone)
    )
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except (ValueError, OverflowError):
        return None


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return 0
    try:
        return int(value)
    except ValueError:
        return 0


def _ports(attrs: Mapping[str, Any]) -> tuple[tuple[str, str, str], ...]:
    """("8000/tcp", host ip, host port) of each published port: the live mapping of a running
    container, else what its HostConfig asks for."""
    live = _dict(attrs.get("NetworkSettings")).get("Ports")
    asked = _dict(attrs.get("HostConfig")).get("PortBindings")
    out: list[tuple[str, str, str]] = []
    for private, bindings in _dict(live or asked).items():
        for binding in bindings if isinstance(bindings, list) else []:
            port = str(_dict(binding).get("HostPort") or "")
            if port:
                out.append((str(private), str(_dict(binding).get("HostIp") or ""), port))
    return tuple(out)


def _health_test(config: Mapping[str, Any]) -> list[str]:
    test = _dict(config.get("Healthcheck")).get("Test")
    return [str(a) for a in test] if isinstance(test, list) else []


def container_info(
    attrs: Mapping[str, Any],
    now: float | None = None,
    cgroup: tuple[str, str] | None = None,
) -> ContainerInfo:
    """A ContainerInfo from `docker inspect` output (the API's dict). Tolerates missing keys.

    Args:
        attrs: the inspect document.
        now: the event time (defaults to now).
        cgroup: (cgroup version, driver) from `docker info`, to fill cgroup_path.
    """
    state = _dict(attrs.get("State"))
    health = _dict(state.get("Health"))
    host_config = _dict(attrs.get("HostConfig"))
    config = _dict(attrs.get("Config"))
    labels = _dict(config.get("Labels"))
    log = health.get("Log") or []
    last_output = ""
    if isinstance(log, list) and log and isinstance(log[-1], Mapping):
        last_output = str(log[-1].get("Output") or "").strip()[-500:]
    cid = str(attrs.get("Id") or "")
    path = attrs.get("Path")
    args = attrs.get("Args") or []
    argv = [str(a) for a in ([path] if path else []) + list(args)]
    # Secrets on the command line (--password X, DB_PASSWORD=X) are hidden like env values:
    # the detail screen, the journal and the report all show this tuple.
    command = tuple(str(a) for a in redact_record(argv))
    config_files = str(labels.get(LABEL_CONFIG_FILES) or "")
    parent = str(host_config.get("CgroupParent") or "")
    return ContainerInfo(
        time=time.time() if now is None else now,
        id=cid,
        name=str(attrs.get("Name") or "").lstrip("/") or cid[:12],
        image=str(config.get("Image") or attrs.get("Image") or ""),
        state=str(state.get("Status") or ""),
        health=str(health.get("Status") or ""),
        failing_streak=_int(health.get("FailingStreak")),
        last_probe_output=last_output,
        restarts=_int(attrs.get("RestartCount")),
        started_at=parse_docker_time(state.get("StartedAt")),
        created_at=parse_docker_time(attrs.get("Created")),
        memory_limit_bytes=_int(host_config.get("Memory")),
        memory_reservation_bytes=_int(host_config.get("MemoryReservation")),
        restart_policy=str(_dict(host_config.get("RestartPolicy")).get("Name") or ""),
        project=str(labels.get(LABEL_PROJECT) or ""),
        service=str(labels.get(LABEL_SERVICE) or ""),
        working_dir=str(labels.get(LABEL_WORKING_DIR) or ""),
        config_files=tuple(f for f in config_files.split(",") if f),
        environment=redact_env(config.get("Env") or []),
        command=command,
        cgroup_path=cgroup_dirs(cid, *cgroup, parent=parent)[0] if cgroup and cid else "",
        pid=_int(state.get("Pid")),
        ports=_ports(attrs),
        # A healthcheck may carry credentials (curl -u user:secret): hidden like the command.
        healthcheck=tuple(str(a) for a in redact_record(list(_health_test(config)))),
        cgroup_parent=parent,
        env_file=str(labels.get(LABEL_ENV_FILE) or ""),
    )

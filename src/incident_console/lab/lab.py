"""The incident lab as a Python API: the seed's stack on the local docker engine, offline.

`Lab` is what `incident-console lab ...` and the test fixtures use. It is blocking (docker and
compose CLIs as argv lists, run through a `LabHost`: this machine by default, or a lab server
over SSH, lab/remote.py) and never imports textual.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from incident_console.lab.host_memory import HostMemoryCgroup, parent_name
from incident_console.lab.hosts import LabHost, LocalLabHost
from incident_console.lab.load import LoadStats, run_load
from incident_console.lab.model import DEFAULT_PROJECT as DEFAULT_PROJECT
from incident_console.lab.model import PROJECT_LABEL
from incident_console.lab.model import ContainerStatus as ContainerStatus
from incident_console.lab.model import LabError as LabError
from incident_console.lab.model import UpResult as UpResult
from incident_console.lab.model import check_project as check_project
from incident_console.lab.model import default_lab_dir as default_lab_dir
from incident_console.lab.model import free_loopback_port as free_loopback_port
from incident_console.lab.model import parse_size as parse_size
from incident_console.lab.oom import KernelOomKill, oom_kills
from incident_console.lab.project_docker import ProjectDocker, last_line
from incident_console.lab.stackfiles import COMPOSE_FILE, LabSettings, write_stack


class Lab(ProjectDocker):
    """One lab compose project.

    Args:
        project: compose project name (lowercase letters, digits, '-', '_').
        directory: where its files go; default: :func:`default_lab_dir`.
        mem_limit: the backend's memory limit ('256m').
        workers: GUNICORN_WORKERS default in the compose file.
        port: frontend loopback port; default: a free one (kept across `up`s).
        extra: extra idle containers.
        leak_kib: KiB each /api/v1/items request keeps in a worker.
        host: where the stack runs; default this machine (a lab server: lab/remote.py).
        backend_port: the backend's published port; default a free one (kept across `up`s).
        limits: False starts every container with no memory limit.
        host_memory: '' or a size ('768m'): every container under one cgroup parent with
            that limit, standing for a server's RAM (this machine's engine only; see
            lab/host_memory.py). It implies `limits=False` unless limits are asked for.
        db_memory: what the db stand-in holds resident ('300m'; '' = nothing).
        override: split the stack into docker-compose.yml + docker-compose.prod.yml; default:
            split when there are no container limits (the seed's server as it was).
    """

    def __init__(
        self,
        project: str = DEFAULT_PROJECT,
        directory: Path | None = None,
        mem_limit: str = "256m",
        workers: int = 4,
        port: int | None = None,
        extra: int = 0,
        leak_kib: int = 1024,
        host: LabHost | None = None,
        backend_port: int | None = None,
        limits: bool | None = None,
        host_memory: str = "",
        db_memory: str = "",
        override: bool | None = None,
    ) -> None:
        check_project(project)
        parse_size(mem_limit)
        if host_memory:
            parse_size(host_memory)
        if db_memory:
            parse_size(db_memory)
        if limits is None:
            limits = not host_memory
        if workers < 1 or extra < 0 or leak_kib < 1:
            raise LabError("workers and leak must be positive, extra not negative")
        self.project = project
        self.directory = directory or default_lab_dir(project)
        self.host: LabHost = host or LocalLabHost()
        #: The stack's folder where compose runs (on a lab server: in the VM).
        self.stack_dir = self.host.stack_dir(self.directory)
        saved = LabSettings.load(self.directory)
        self.settings = LabSettings(
            project=project,
            mem_limit=mem_limit,
            workers=workers,
            frontend_port=port or (saved.frontend_port if saved else 0),
            backend_port=backend_port or (saved.backend_port if saved else 0),
            extra=extra,
            leak_kib=leak_kib,
            limits=limits,
            publish_address=self.host.publish_address,
            health_interval_s=self.host.healthcheck_s[0],
            health_timeout_s=self.host.healthcheck_s[1],
            health_start_s=self.host.healthcheck_s[2],
            override=(not limits) if override is None else override,
            cgroup_parent=HostMemoryCgroup(parent_name(project)).cgroup_parent
            if host_memory
            else "",
            host_memory=host_memory,
            db_memory=db_memory,
        )
        self._compose: list[str] | None = None
        #: What the last successful `up` did (None before).
        self.last_up: UpResult | None = None

    @classmethod
    def existing(
        cls,
        project: str = DEFAULT_PROJECT,
        directory: Path | None = None,
        host: LabHost | None = None,
    ) -> Lab:
        """The lab as `lab up` left it (settings read from its folder).

        Raises:
            LabError: no lab folder for `project`.
        """
        check_project(project)
        directory = directory or default_lab_dir(project)
        saved = LabSettings.load(directory)
        if saved is None:
            raise LabError(f"no lab {project!r} in {directory} (run `incident-console lab up`)")
        return cls(
            project,
            directory,
            saved.mem_limit,
            saved.workers,
            saved.frontend_port,
            saved.extra,
            saved.leak_kib,
            host,
            limits=saved.limits,
            host_memory=saved.host_memory,
            db_memory=saved.db_memory,
            override=saved.override,
        )

    # -- addresses ---------------------------------------------------------------------------

    @property
    def frontend_url(self) -> str:
        """The frontend on its loopback port."""
        return f"http://127.0.0.1:{self.settings.frontend_port}/"

    @property
    def backend_url(self) -> str:
        """The backend, published on its own loopback port (bypassing the frontend)."""
        return f"http://127.0.0.1:{self.settings.backend_port}/"

    @property
    def health_url(self) -> str:
        """The backend's health endpoint through the frontend, as the seed checks it."""
        return f"http://127.0.0.1:{self.settings.frontend_port}/api/v1/health"

    @property
    def leak_url(self) -> str:
        """The endpoint whose every request keeps memory in a worker."""
        return f"http://127.0.0.1:{self.settings.frontend_port}/api/v1/items"

    @property
    def compose_file(self) -> Path:
        """The compose file as written here (on a lab server: the copy staged for the VM)."""
        return self.directory / COMPOSE_FILE

    @property
    def compose_files(self) -> list[Path]:
        """Every compose file, in the order compose reads them (`-f` each)."""
        return [self.directory / name for name in self.settings.compose_files]

    @property
    def host_memory_cgroup(self) -> HostMemoryCgroup:
        """The cgroup parent that stands for the server's RAM in `--host-memory` mode."""
        return HostMemoryCgroup(parent_name(self.project))

    # -- lifecycle ---------------------------------------------------------------------------

    def up(
        self, timeout_s: float = 60.0, progress: Callable[[str], None] | None = None
    ) -> UpResult:
        """Write the files, make the image, `compose up -d`, wait for a healthy backend.

        Raises:
            LabError: docker/compose failed, the backend is not healthy within `timeout_s`, or
                the memory limit in effect differs from the one asked for.
        """
        say = progress or (lambda _msg: None)
        self._docker(["version", "--format", "{{.Server.Version}}"], timeout=20)
        s = self.settings
        self.settings = s = replace(
            s,
            frontend_port=s.frontend_port or free_loopback_port(),
            backend_port=s.backend_port or free_loopback_port(),
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        write_stack(self.directory, s)
        self.host.push_tree(self.directory, self.stack_dir)
        built = self.host.ensure_image()
        say("image built" if built else "image reused")
        if s.host_memory:
            self._make_host_memory(say)
        t0 = time.monotonic()
        self.compose("up", "-d", "--remove-orphans")
        say(f"compose project {self.project!r} started")
        # The budget starts when compose returns: creating many --extra containers takes time.
        self.wait_healthy("backend", timeout_s)
        waited = time.monotonic() - t0
        want = parse_size(s.mem_limit) if s.limits else 0
        backend = next(c for c in self.status() if c.service == "backend")
        if backend.memory_limit != want:
            raise LabError(
                f"backend memory limit in effect is {backend.memory_limit} bytes, "
                f"not {want} ({s.mem_limit}): compose ignored mem_limit"
            )
        if backend.cgroup_parent != s.cgroup_parent:
            raise LabError(
                f"backend's cgroup parent is {backend.cgroup_parent or 'docker default'!r}, "
                f"not {s.cgroup_parent!r}: compose ignored cgroup_parent"
            )
        self.last_up = UpResult(seconds_to_healthy=waited, image_built=built)
        return self.last_up

    def _make_host_memory(self, say: Callable[[str], None]) -> None:
        """Write the cgroup parent's limit before any container starts under it."""
        if not isinstance(self.host, LocalLabHost):
            raise LabError(
                f"--host-memory works on this machine's engine, not on {self.host.where} "
                "(there the VM's --memory is the server's RAM)"
            )
        driver = self._docker(["info", "--format", "{{.CgroupDriver}}"], timeout=20).strip()
        if driver == "systemd":
            raise LabError(
                "--host-memory needs docker's cgroupfs driver (this engine uses systemd, "
                "whose cgroup parents are slices)"
            )
        cgroup = self.host_memory_cgroup
        cgroup.create(parse_size(self.settings.host_memory))
        say(f"host memory {self.settings.host_memory}: every container under cgroup "
            f"{cgroup.cgroup_parent} ({cgroup.limit_file})")  # fmt: skip

    def wait_healthy(self, service: str, timeout_s: float) -> None:
        """Block until `service` is healthy.

        Raises:
            LabError: not healthy within `timeout_s` (with its last state and log line).
        """
        deadline = time.monotonic() + max(1.0, timeout_s)
        last = ""
        while time.monotonic() < deadline:
            cid = self.container_id(service)
            if cid:
                state = json.loads(self._docker(["inspect", cid]))[0]["State"]
                last = (state.get("Health") or {}).get("Status", state["Status"])
                if last == "healthy":
                    return
            time.sleep(0.5)
        log = last_line(self.logs(service)) if self.container_id(service) else ""
        raise LabError(
            f"{service} not healthy after {timeout_s:.0f} s (state {last or 'absent'})"
            + (f"; last log line: {log}" if log else "")
        )

    def down(self) -> None:
        """Remove every container, network and volume of the project, and its folder."""
        if self.compose_file.exists():
            # On failure, the label sweep below still removes what compose left.
            with contextlib.suppress(LabError):
                self.compose("down", "-v", "--remove-orphans", "--timeout", "5")
        label = f"label={PROJECT_LABEL}={self.project}"
        ids = self.container_ids()
        if ids:
            self._docker(["rm", "-f", "-v", *ids])
        for kind in ("network", "volume"):
            names = self._docker([kind, "ls", "-q", "--filter", label]).split()
            if names:
                self._docker([kind, "rm", *names])
        if self.stack_dir != str(self.directory):
            self.host.remove_tree(self.stack_dir)
        shutil.rmtree(self.directory, ignore_errors=True)
        # The host memory's cgroup parent goes last: the containers in it are gone by now.
        # Its name is the project's, so a `down` without the lab's folder still finds it.
        if isinstance(self.host, LocalLabHost):
            left = self.host_memory_cgroup.remove()
            if left:
                raise LabError(f"the lab's cgroup parent was not removed: {left[0]}")

    # -- the incident ------------------------------------------------------------------------

    def backend_memory_bytes(self) -> int | None:
        """The backend cgroup's memory usage (cgroup v1 or v2 file), None if unreadable."""
        cid = self.container_id("backend")
        if cid is None:
            return None
        paths = [
            f"/sys/fs/cgroup/memory/docker/{cid}/memory.usage_in_bytes",
            f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/memory.current",
        ]
        if self.settings.cgroup_parent:
            cgroup = self.host_memory_cgroup
            name = "memory.usage_in_bytes" if cgroup.v1 else "memory.current"
            paths.insert(0, f"{cgroup.directory}/{cid}/{name}")
        for path in paths:
            try:
                return int(self.host.read_text(path))
            except (OSError, ValueError):
                continue
        return None

    def oom_kills(self) -> list[KernelOomKill]:
        """The kernel's OOM kills in the backend container (from dmesg).

        In `--host-memory` mode: in every container of the project, each with its service
        (the kernel kills whatever scores highest when the shared parent runs out: a
        gunicorn worker, or the db that holds the most).
        """
        if self.settings.cgroup_parent:
            ids = {c.id: c.service for c in self.status()}
            if not ids:
                raise LabError(f"lab {self.project!r} has no containers (is it up?)")
            return oom_kills(ids, self.host.kernel_log())
        return oom_kills({self.backend_container_id(): "backend"}, self.host.kernel_log())

    def load(
        self,
        duration_s: float = 180.0,
        rate: float = 4.0,
        concurrency: int | None = None,
        progress: Callable[[LoadStats], None] | None = None,
        stop: threading.Event | None = None,
    ) -> LoadStats:
        """Load the leak endpoint through the frontend's loopback port.

        Args:
            duration_s: stop after this long.
            rate: requests per second.
            concurrency: concurrent requests; default twice the workers (at least 4).
            progress: called about once a second.
            stop: set to end early.
        """
        conc = concurrency or max(4, 2 * self.settings.workers)
        return run_load(self.leak_url, duration_s, rate, conc, progress=progress, stop=stop)

"""The lab server: today's compose server in a VM on this machine, with the lab's stack in it.

`LabServer.up` builds the image once (lab/vm.py), boots it under qemu's software emulation
from a copy-on-write overlay of that image (the cached image stays clean), waits for sshd,
and starts the lab's stack inside through SSH as the non-root `deploy` user with compose v2.
Everything is reached through qemu's user-mode network, forwarded on 127.0.0.1 only: SSH, the
frontend and the backend. The run's files (overlay, known_hosts, pid, console log, the staged
stack) live in the server's folder; `down` removes them and ends qemu.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import platformdirs

from incident_console.lab.lab import Lab
from incident_console.lab.model import (
    DEFAULT_PROJECT,
    ContainerStatus,
    LabError,
    free_loopback_port,
    parse_size,
)
from incident_console.lab.qemu import is_our_qemu, last_console_line, qemu_argv, run_tool, stop_qemu
from incident_console.lab.remote import ServerLabHost
from incident_console.lab.vm import DEPLOY_USER, VM_LAB_TAR, VmImage, build_image, purge_images

STATE_FILE = "server.json"
_BOOT_TIMEOUT_S = 600.0
_STACK_TIMEOUT_S = 600.0
#: KiB each leaking request keeps with limits (the lab's own default) and without them. With no
#: limit the VM's whole memory has to fill: at 1 MiB a request (about 4 requests a second
#: through the emulated frontend) that took minutes, and the last of them were spent evicting
#: and re-reading the page cache (the VM stopped answering, no kill). 16 MiB a request fills it
#: in well under a minute, the way the issue's fast allocating python did, which got a clean
#: kill.
LEAK_KIB = 1024
NO_LIMITS_LEAK_KIB = 16384
#: MGLRU's thrashing guard: when the pages used in the last N ms cannot stay in memory, the
#: kernel OOM-kills instead of evicting them (and re-reading them, again and again: on a VM
#: with no swap that is the page cache of every binary, sshd's included). Set at boot as root.
MIN_TTL_MS = 1000
_MIN_TTL_FILE = "/sys/kernel/mm/lru_gen/min_ttl_ms"


def default_server_dir() -> Path:
    """Where the lab server's run files live: <user data dir>/lab-server."""
    return Path(platformdirs.user_data_dir("incident-console")) / "lab-server"


@dataclass(frozen=True, slots=True)
class ServerState:
    """A running lab server, as `up` recorded it in <dir>/server.json.

    Attributes:
        pid: qemu's pid.
        ssh_port: 127.0.0.1 port forwarded to the VM's sshd.
        frontend_port: 127.0.0.1 port forwarded to the stack's frontend (same port in the VM).
        backend_port: the same for the backend.
        image: the cached image folder the overlay is based on.
        memory: the VM's memory ('1536m').
        limits: whether the stack has container memory limits.
        project: the stack's compose project in the VM.
        started: epoch seconds qemu was started.
    """

    pid: int
    ssh_port: int
    frontend_port: int
    backend_port: int
    image: str
    memory: str
    limits: bool
    project: str
    started: float


@dataclass(frozen=True, slots=True)
class UpReport:
    """What `up` did, with its times (seconds).

    Attributes:
        target: the console's target line (with -i and --known-hosts).
        frontend_url: the stack's frontend, reachable from this machine.
        build_s: the image build, None when the cached one was used.
        boot_s: qemu start to sshd taking the lab's key and dockerd answering.
        stack_s: compose up to a healthy backend, the lab image import included.
    """

    target: str
    frontend_url: str
    build_s: float | None
    boot_s: float
    stack_s: float


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """`status`: whether qemu runs, and what the server says about itself.

    Attributes:
        state: the recorded state, None when no server was started from this folder.
        running: qemu is alive.
        versions: 'kernel', 'docker', 'cgroup', 'compose' as the VM reports them.
        containers: the stack's containers.
        error: why the VM could not be asked (one line), else ''.
    """

    state: ServerState | None
    running: bool
    versions: dict[str, str]
    containers: list[ContainerStatus]
    error: str = ""


class LabServer:
    """The lab server whose run files are in `directory`.

    Args:
        directory: the run folder; default :func:`default_server_dir`.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = (directory or default_server_dir()).resolve()

    # -- places ------------------------------------------------------------------------------

    @property
    def overlay(self) -> Path:
        """This run's copy-on-write disk (qcow2 over the cached raw image)."""
        return self.directory / "disk.qcow2"

    @property
    def known_hosts(self) -> Path:
        """The known_hosts file holding the VM's host key (taken from the image)."""
        return self.directory / "known_hosts"

    @property
    def console_log(self) -> Path:
        """The VM's serial console (kernel and systemd boot messages)."""
        return self.directory / "console.log"

    @property
    def _pidfile(self) -> Path:
        return self.directory / "qemu.pid"

    def state(self) -> ServerState | None:
        """The recorded state, or None."""
        try:
            return ServerState(**json.loads((self.directory / STATE_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def running(self, state: ServerState | None = None) -> bool:
        """Whether the recorded qemu is alive."""
        state = state or self.state()
        return state is not None and is_our_qemu(state.pid, self.overlay)

    def host(self, state: ServerState, user: str = DEPLOY_USER) -> ServerLabHost:
        """The VM as a lab host (SSH as `user`)."""
        image = VmImage(Path(state.image))
        return ServerLabHost(state.ssh_port, image.key, self.known_hosts, user, VM_LAB_TAR)

    def target(self, state: ServerState) -> str:
        """`ssh://deploy@127.0.0.1:PORT -i KEY --known-hosts FILE`, the console's arguments."""
        key = VmImage(Path(state.image)).key
        return (
            f"ssh://{DEPLOY_USER}@127.0.0.1:{state.ssh_port} -i {key} "
            f"--known-hosts {self.known_hosts}"
        )

    def lab(self, state: ServerState | None = None) -> Lab:
        """The stack in the VM as a `Lab` (status, load, logs, oom_kills, down).

        Raises:
            LabError: no server is running from this folder.
        """
        state = state or self.state()
        if state is None or not self.running(state):
            raise LabError(
                f"no lab server running from {self.directory} (run `incident-console lab server up`)"
            )
        return Lab.existing(state.project, self.directory / state.project, self.host(state))

    # -- lifecycle ---------------------------------------------------------------------------

    def up(
        self,
        memory: str = "1536m",
        limits: bool = True,
        port: int | None = None,
        mem_limit: str = "256m",
        workers: int = 4,
        extra: int = 0,
        mirror: str | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> UpReport:
        """Build (once), boot, wait for sshd, start the stack; see the module docstring.

        Raises:
            LabError: a step failed (the VM is left running for a look when the stack failed;
                `down` removes it).
        """
        say = progress or (lambda _msg: None)
        mib = parse_size(memory) // 1048576
        if mib < 768:
            raise LabError(
                f"--memory {memory} is too small for docker and the stack (768m at least)"
            )
        if self.running():
            raise LabError(
                f"a lab server already runs from {self.directory} (`incident-console lab server down`)"
            )
        image, build_s = build_image(mirror, say)
        how = f"built in {build_s:.0f} s" if build_s is not None else "cached"
        say(f"image {image.directory} ({how})")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._remove_run_files()
        ports = {port} if port else set()
        ssh_port = port or free_loopback_port()
        frontend_port, backend_port = (self._free_port(ports | {ssh_port}) for _ in range(2))
        if frontend_port == backend_port:
            backend_port = self._free_port({ssh_port, frontend_port})
        self.known_hosts.write_text(image.known_hosts_line(ssh_port))
        run_tool(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image.disk), "-F", "raw",
             str(self.overlay)],
            "qemu-img create",
        )  # fmt: skip
        t0 = time.monotonic()
        started = time.time()
        run_tool(
            qemu_argv(
                image,
                mib,
                self.overlay,
                self.console_log,
                self._pidfile,
                [(ssh_port, 22), (frontend_port, frontend_port), (backend_port, backend_port)],
            ),
            "qemu",
        )
        pid = int(self._pidfile.read_text().strip())
        state = ServerState(
            pid, ssh_port, frontend_port, backend_port, str(image.directory), memory, limits,
            DEFAULT_PROJECT, started,
        )  # fmt: skip
        (self.directory / STATE_FILE).write_text(json.dumps(asdict(state), indent=2) + "\n")
        say(f"qemu pid {pid}: booting (software emulation, about a minute) ...")
        host = self.host(state)
        try:
            self._wait_for_ssh(state, host)
        except LabError:
            stop_qemu(state.pid, self.overlay)
            raise
        say(f"sshd answered after {time.monotonic() - t0:.0f} s; waiting for dockerd ...")
        self._wait_for_docker(state, host)
        self._guard_against_thrashing(state)
        boot_s = time.monotonic() - t0
        say(f"dockerd answered after {boot_s:.0f} s; starting the stack as {DEPLOY_USER} ...")
        t1 = time.monotonic()
        lab = Lab(
            DEFAULT_PROJECT,
            self.directory / DEFAULT_PROJECT,
            mem_limit,
            workers,
            frontend_port,
            extra,
            leak_kib=LEAK_KIB if limits else NO_LIMITS_LEAK_KIB,
            host=host,
            backend_port=backend_port,
            limits=limits,
        )
        lab.up(timeout_s=_STACK_TIMEOUT_S, progress=say)
        stack_s = time.monotonic() - t1
        return UpReport(self.target(state), lab.frontend_url, build_s, boot_s, stack_s)

    def restack(self, limits: bool, progress: Callable[[str], None] | None = None) -> float:
        """Recreate the running server's stack with (or without) container memory limits.

        One VM serves both incidents: the limit kill and, after `restack(False)`, the server
        itself running out. Compose recreates the containers whose settings changed; the
        ports, the workers and the backend's limit size stay as `up` set them.

        Returns:
            Seconds to a healthy backend.

        Raises:
            LabError: no server runs here, or the stack did not come up healthy.
        """
        state = self.state()
        old = self.lab(state)
        assert state is not None  # self.lab raised otherwise
        t0 = time.monotonic()
        host = self.host(state)
        # A fresh login costs seconds on the emulated CPU, and compose's detection gives a
        # command 20 s: share one connection, as `up` does.
        host.open_master()
        s = old.settings
        lab = Lab(
            state.project,
            old.directory,
            s.mem_limit,
            s.workers,
            s.frontend_port,
            s.extra,
            leak_kib=LEAK_KIB if limits else NO_LIMITS_LEAK_KIB,
            host=host,
            backend_port=s.backend_port,
            limits=limits,
        )
        lab.up(timeout_s=_STACK_TIMEOUT_S, progress=progress)
        (self.directory / STATE_FILE).write_text(
            json.dumps(asdict(replace(state, limits=limits)), indent=2) + "\n"
        )
        return time.monotonic() - t0

    def status(self) -> ServerStatus:
        """Whether qemu runs, the versions inside, and the stack's containers."""
        state = self.state()
        if state is None or not self.running(state):
            return ServerStatus(state, False, {}, [])
        host = self.host(state)
        queries = {
            "kernel": ["uname", "-r"],
            "docker": ["docker", "version", "--format", "{{.Server.Version}}"],
            "cgroup": ["docker", "info", "--format", "v{{.CgroupVersion}} {{.CgroupDriver}}"],
            "compose": ["docker", "compose", "version", "--short"],
        }
        versions: dict[str, str] = {}
        try:
            for name, argv in queries.items():
                done = host.run(argv, timeout=60)
                versions[name] = done.stdout.strip() if done.returncode == 0 else "?"
            containers = self.lab(state).status()
        except LabError as exc:
            return ServerStatus(state, True, versions, [], str(exc))
        except subprocess.TimeoutExpired as exc:
            return ServerStatus(
                state, True, versions, [], f"the VM did not answer within {exc.timeout:g} s"
            )
        return ServerStatus(state, True, versions, containers)

    def down(self, purge: bool = False) -> list[str]:
        """Stop the stack and the VM, remove the run files; `purge` removes the image too.

        Returns:
            What was done, one line each.
        """
        done: list[str] = []
        state = self.state()
        if state is not None and self.running(state):
            try:
                # Only compose down: the VM's disk is a throwaway overlay, so the label sweep
                # of Lab.down (a minute of docker commands on an emulated CPU) buys nothing.
                self.lab(state).compose("down", "--timeout", "5", timeout=120)
                done.append(f"stack {state.project!r} stopped")
            except LabError as exc:
                done.append(f"stack not stopped ({exc}); the VM goes anyway")
            except subprocess.TimeoutExpired as exc:
                done.append(
                    f"stack not stopped (the VM did not answer within {exc.timeout:g} s); "
                    "the VM goes anyway"
                )
            for user in (DEPLOY_USER, "root"):
                self.host(state, user).close_master()
            stop_qemu(state.pid, self.overlay)
            done.append(f"qemu pid {state.pid} stopped")
        elif state is not None:
            done.append(f"qemu pid {state.pid} was not running")
        self._remove_run_files()
        if purge:
            done += [f"removed {p}" for p in purge_images()]
        return done

    # -- plumbing ----------------------------------------------------------------------------

    def _free_port(self, taken: set[int]) -> int:
        while True:
            candidate = free_loopback_port()
            if candidate not in taken:
                return candidate

    def _wait_for_ssh(self, state: ServerState, host: ServerLabHost) -> None:
        deadline = time.monotonic() + _BOOT_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.running(state):
                raise LabError(
                    f"qemu exited while booting; see {self.console_log}: {last_console_line(self.console_log)}"
                )
            if host.open_master():
                host.as_user("root").open_master()
                return
            time.sleep(2)
        raise LabError(
            f"the VM's sshd did not answer within {_BOOT_TIMEOUT_S:.0f} s; "
            f"last console line: {last_console_line(self.console_log)}"
        )

    def _wait_for_docker(self, state: ServerState, host: ServerLabHost) -> None:
        # sshd comes up before dockerd on a fresh boot, and an emulated CPU makes the gap long.
        deadline = time.monotonic() + _BOOT_TIMEOUT_S
        last = ""
        while time.monotonic() < deadline and self.running(state):
            try:
                done = host.run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=60)
            except subprocess.TimeoutExpired:
                last = "docker info timed out"
                continue
            if done.returncode == 0:
                return
            lines = done.stderr.strip().splitlines()
            last = lines[-1] if lines else f"exit status {done.returncode}"
            time.sleep(2)
        raise LabError(f"dockerd in the VM did not answer within {_BOOT_TIMEOUT_S:.0f} s: {last}")

    def _guard_against_thrashing(self, state: ServerState) -> None:
        root = self.host(state, "root")
        try:
            root.write_text(_MIN_TTL_FILE, f"{MIN_TTL_MS}\n")
        except OSError as exc:
            # A kernel without MGLRU still runs the lab; only a host-wide OOM may not come.
            raise LabError(f"{exc} (the thrashing guard for --no-limits)") from None

    def _remove_run_files(self) -> None:
        for path in (self.overlay, self._pidfile, self.known_hosts, self.directory / STATE_FILE):
            path.unlink(missing_ok=True)
        # The stack's staged copy (Lab.down removes it too, when the VM still answered).
        shutil.rmtree(self.directory / DEFAULT_PROJECT, ignore_errors=True)

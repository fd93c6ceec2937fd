"""The lab's commands on a lab server, through OpenSSH's `ssh` with the VM's key and host key.

Each argv becomes the remote command through transport's `command_line` (`shlex.join`), the
project's one place for shell text. The host key is checked against the known_hosts file made
from the image (StrictHostKeyChecking=yes, the user's ssh config and known_hosts ignored). One
master connection per user is kept open (ControlMaster) because a login on a software-emulated
VM costs about a second and `Lab.up` runs dozens of docker commands.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from incident_console.lab.hosts import RunResult
from incident_console.lab.image import LAB_IMAGE
from incident_console.lab.model import LabError
from incident_console.lab.oom import KernelLogUnavailable
from incident_console.transport.base import command_line

_MASTER_TIMEOUT_S = 30.0
#: The lab's command budgets are a native machine's. The VM's CPU is emulated (about 15x
#: slower) on cores other work shares: a test session saw `compose up` of the 4 containers take
#: over 300 s with the machine's load at 16-20. Every command on the VM gets this many times
#: its caller's budget (a timeout message then names the caller's figure, not the scaled one).
TIMEOUT_SCALE = 3.0


class ServerLabHost:
    """A lab server (the VM) on 127.0.0.1:`port`, as `user`.

    Args:
        port: the forwarded SSH port on 127.0.0.1.
        key: the lab's private key.
        known_hosts: the known_hosts file holding the VM's host key.
        user: who runs the stack (`deploy`); the kernel log is read as root.
        lab_tar: the lab image's rootfs tar inside the VM (`docker import`ed by ensure_image).
        home: the user's home on the VM (the stacks go under <home>/lab/).
    """

    def __init__(
        self,
        port: int,
        key: Path,
        known_hosts: Path,
        user: str = "deploy",
        lab_tar: str = "/var/lib/incident-console/lab-rootfs.tar",
        home: str | None = None,
    ) -> None:
        self.port = port
        self.key = key
        self.known_hosts = known_hosts
        self.user = user
        self.lab_tar = lab_tar
        self.home = home or ("/root" if user == "root" else f"/home/{user}")
        self.where = f"lab server {user}@127.0.0.1:{port}"
        #: The VM's network is reached only through qemu's forwards on this machine's
        #: loopback, so the stack publishes on every address of the VM.
        self.publish_address = "0.0.0.0"
        #: python3's start takes ~15x longer on the emulated CPU, and 4 containers checking
        #: every 5 s kept the VM's CPUs busy: the backend went 'unhealthy' while idle.
        self.healthcheck_s = (15, 12, 60)

    def as_user(self, user: str) -> ServerLabHost:
        """The same server, logged in as `user`."""
        return ServerLabHost(self.port, self.key, self.known_hosts, user, self.lab_tar)

    # -- ssh ---------------------------------------------------------------------------------

    def _control_path(self) -> str:
        # Unix socket paths are short (108 bytes): %C is a hash of host, port and user.
        return str(Path(tempfile.gettempdir()) / "icl-ssh-%C")

    def ssh_argv(self, *, master: bool = False) -> list[str]:
        """The `ssh` command line up to the destination (no remote command)."""
        argv = [
            "ssh",
            "-F", "/dev/null",
            "-i", str(self.key),
            "-p", str(self.port),
            "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "ConnectTimeout=20",
            "-o", "ServerAliveInterval=10",
            "-o", "LogLevel=ERROR",
            "-o", f"ControlPath={self._control_path()}",
            "-o", "ControlMaster=yes" if master else "ControlMaster=no",
        ]  # fmt: skip
        if master:
            argv += ["-o", "ControlPersist=300"]
        return [*argv, f"{self.user}@127.0.0.1"]

    def open_master(self) -> bool:
        """Start the shared connection in the background; False when the VM did not take it.

        Its output goes to /dev/null: a background master holding our pipes open would make
        every later `subprocess.run` wait for it.
        """
        if self.master_alive():
            return True
        with contextlib.suppress(subprocess.TimeoutExpired):
            return (
                subprocess.run(
                    [*self.ssh_argv(master=True), "-f", "-N"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=_MASTER_TIMEOUT_S,
                    check=False,
                ).returncode
                == 0
            )
        return False

    def _control(self, command: str) -> int:
        base = self.ssh_argv()
        try:
            return subprocess.run(
                [*base[:-1], "-O", command, base[-1]],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=10,
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            return -1

    def master_alive(self) -> bool:
        """Whether a shared connection to this server and user is open."""
        return self._control("check") == 0

    def close_master(self) -> None:
        """End the shared connection (if any)."""
        self._control("exit")

    def _ssh(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        input: bytes | None = None,
        merge_stderr: bool = False,
    ) -> RunResult:
        done = subprocess.run(
            [*self.ssh_argv(), "--", command_line(argv)],
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            timeout=timeout * TIMEOUT_SCALE,
            check=False,
        )
        out = done.stdout.decode(errors="replace")
        err = (done.stderr or b"").decode(errors="replace")
        if done.returncode == 255 and not merge_stderr:
            # ssh's own failure (connection, host key), not the command's.
            lines = err.strip().splitlines()
            raise LabError(f"{self.where}: ssh failed: {lines[-1] if lines else 'exit 255'}")
        return RunResult(done.returncode, out, err)

    # -- LabHost -----------------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 60.0,
        cwd: Path | None = None,
        merge_stderr: bool = False,
    ) -> RunResult:
        """Run `argv` on the VM (`cwd` is ignored: compose resolves paths from its -f file)."""
        return self._ssh(argv, timeout=timeout, merge_stderr=merge_stderr)

    def stack_dir(self, local: Path) -> str:
        """<home>/lab/<the staging folder's name>."""
        return f"{self.home}/lab/{local.name}"

    def push_tree(self, local: Path, remote: str) -> None:
        """Copy `local`'s files into `remote` as a tar stream read by `tar -x` on the VM."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for path in sorted(local.rglob("*")):
                tar.add(path, arcname=str(path.relative_to(local)), recursive=False)
        mkdir = self._ssh(["mkdir", "-p", "--", remote], timeout=30)
        if mkdir.returncode != 0:
            raise LabError(f"{self.where}: mkdir {remote} failed: {mkdir.stderr.strip()}")
        done = self._ssh(
            ["tar", "-x", "--no-same-owner", "-m", "-C", remote, "-f", "-"],
            timeout=60,
            input=buf.getvalue(),
        )
        if done.returncode != 0:
            raise LabError(f"{self.where}: copying the stack failed: {done.stderr.strip()}")

    def remove_tree(self, remote: str) -> None:
        """`rm -rf` the stack's folder on the VM."""
        self._ssh(["rm", "-rf", "--", remote], timeout=30)

    def read_text(self, path: str) -> str:
        """`cat` a file on the VM.

        Raises:
            OSError: it could not be read.
        """
        done = self._ssh(["cat", "--", path], timeout=20)
        if done.returncode != 0:
            raise OSError(f"{self.where}: {done.stderr.strip()}")
        return done.stdout

    def write_text(self, path: str, text: str) -> None:
        """Write `text` to `path` on the VM (`tee`: a sysfs or /proc file takes one write).

        Raises:
            OSError: it could not be written.
        """
        done = self._ssh(["tee", "--", path], timeout=20, input=text.encode())
        if done.returncode != 0:
            raise OSError(f"{self.where}: writing {path} failed: {done.stderr.strip()}")

    def kernel_log(self) -> list[str]:
        """The VM's kernel log, read as root (deploy may not: kernel.dmesg_restrict=1).

        Raises:
            KernelLogUnavailable: dmesg failed even as root.
        """
        done = self.as_user("root")._ssh(["dmesg"], timeout=30)
        if done.returncode != 0:
            raise KernelLogUnavailable(f"{self.where}: dmesg failed: {done.stderr.strip()}")
        return done.stdout.splitlines()

    def ensure_image(self) -> bool:
        """`docker import` the lab rootfs tar baked into the VM, unless the image is there."""
        if self._ssh(["docker", "image", "inspect", LAB_IMAGE], timeout=60).returncode == 0:
            return False
        done = self._ssh(
            ["docker", "import", "--message", "incident-console lab rootfs", self.lab_tar,
             LAB_IMAGE],
            timeout=120,
        )  # fmt: skip
        if done.returncode != 0:
            raise LabError(f"{self.where}: docker import failed: {done.stderr.strip()}")
        return True

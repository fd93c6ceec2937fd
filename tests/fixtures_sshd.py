"""sshd fixture: a real OpenSSH sshd on a random loopback port with throwaway keys.

Never touches ~/.ssh or the system sshd: host key, client key, authorized_keys, known_hosts,
config and pid file all live in a session temp dir. `stop()` kills the daemon and its session
processes (a crashed server, for fault tests); `start()` brings it back on the same port with
the same keys.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conftest import IN_CI

if TYPE_CHECKING:
    from incident_console.transport.ssh import SshHost

SSHD = "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )


def descendants(pid: int) -> list[int]:
    """All processes below `pid` (the per-connection sshd children and their commands)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class SshdServer:
    """A running test sshd and everything a client needs to reach it."""

    root: Path
    port: int
    host: str = "127.0.0.1"
    user: str = field(default_factory=getpass.getuser)
    proc: subprocess.Popen[bytes] | None = None
    #: Whether sshd offers the SFTP subsystem (hardened configs drop it).
    sftp: bool = True

    @property
    def client_key(self) -> Path:
        return self.root / "client_ed25519"

    @property
    def host_key(self) -> Path:
        return self.root / "host_ed25519"

    @property
    def known_hosts(self) -> Path:
        """A known_hosts file that holds this server's host key."""
        return self.root / "known_hosts"

    @property
    def log(self) -> Path:
        return self.root / "sshd.log"

    @property
    def fingerprint(self) -> str:
        """The host key's 'SHA256:...' fingerprint, as ssh-keygen -l prints it."""
        out = subprocess.run(
            ["ssh-keygen", "-l", "-E", "sha256", "-f", str(self.host_key) + ".pub"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return out.split()[1]

    @property
    def host_public_key(self) -> str:
        """'ssh-ed25519 AAAA...' without the comment."""
        return " ".join((self.host_key.with_suffix(".pub")).read_text().split()[:2])

    @property
    def target(self) -> str:
        return f"ssh://{self.user}@{self.host}:{self.port}"

    def setup(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _keygen(self.host_key, "ict-test-host")
        _keygen(self.client_key, "ict-test-client")
        (self.root / "authorized_keys").write_text(self.client_key.with_suffix(".pub").read_text())
        self.known_hosts.write_text(f"[{self.host}]:{self.port} {self.host_public_key}\n")
        (self.root / "sshd_config").write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    f"ListenAddress {self.host}",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.root / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.root / 'authorized_keys'}",
                    "StrictModes no",
                    "UsePAM no",
                    "PermitRootLogin prohibit-password",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "AllowTcpForwarding yes",
                    "AllowStreamLocalForwarding yes",
                    "X11Forwarding no",
                    "PrintMotd no",
                    "MaxSessions 64",
                    "MaxStartups 64",
                    "Subsystem sftp internal-sftp" if self.sftp else "",
                    "LogLevel INFO",
                    "",
                ]
            )
        )
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        """Start sshd (again) on the same port with the same keys; wait until it listens."""
        assert self.proc is None, "already running"
        log = open(self.log, "ab")  # noqa: SIM115 - kept open for the daemon's lifetime
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.root / "sshd_config")],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 1):
                return
            time.sleep(0.05)
        raise RuntimeError(f"sshd did not listen on {self.port}: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        """Kill the daemon AND its session processes, as a crashed or rebooted server would."""
        if self.proc is None:
            return
        victims = [self.proc.pid, *descendants(self.proc.pid)]
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def host_options(self) -> dict[str, object]:
        """Keyword arguments for SshHost / open_host reaching this server."""
        return {
            "identity": (str(self.client_key),),
            "known_hosts": str(self.known_hosts),
        }

    async def connect_host(self, **overrides: object) -> SshHost:
        """A connected SshHost for this server (the caller closes it)."""
        from incident_console.transport.targets import open_host

        options = {**self.host_options(), **overrides}
        host = open_host(self.target, **options)  # type: ignore[arg-type]
        await host.connect()
        return host  # type: ignore[return-value]


def ssh_target(sshd: SshdServer) -> list[str]:
    """CLI arguments reaching the test sshd: target, then its connection options."""
    return [
        sshd.target,
        "-i",
        str(sshd.client_key),
        "--known-hosts",
        str(sshd.known_hosts),
    ]


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"sshd is required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdServer]:
    """A real OpenSSH sshd for the whole test session (see SshdServer)."""
    yield from _serve(tmp_path_factory, "sshd", sftp=True)


@pytest.fixture(scope="session")
def sshd_no_sftp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdServer]:
    """A real OpenSSH sshd with no SFTP subsystem, as hardened configs have it."""
    yield from _serve(tmp_path_factory, "sshd-no-sftp", sftp=False)


def _serve(
    tmp_path_factory: pytest.TempPathFactory, name: str, *, sftp: bool
) -> Iterator[SshdServer]:
    if not os.access(SSHD, os.X_OK):
        _unavailable(f"{SSHD} is not installed (apt-get install openssh-server)")
    if shutil.which("ssh-keygen") is None:
        _unavailable("ssh-keygen is not installed (apt-get install openssh-client)")
    server = SshdServer(root=tmp_path_factory.mktemp(name), port=_free_port(), sftp=sftp)
    server.setup()
    try:
        server.start()
    except (RuntimeError, OSError) as exc:
        _unavailable(f"sshd would not start: {exc}")
    try:
        yield server
    finally:
        server.stop()

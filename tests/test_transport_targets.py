"""Targets: parsing, and one-line errors for hosts that cannot be reached (real sockets, sshd)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures_sshd import SshdServer, _free_port, ssh_target
from incident_console.transport.base import AuthError, TransportError
from incident_console.transport.local import LocalHost
from incident_console.transport.ssh import SshHost
from incident_console.transport.targets import Target, describe_error, open_host, parse_target


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("local", Target("local", text="local")),
        ("prod", Target("ssh", host="prod", text="prod")),
        ("deploy@203.0.113.10", Target("ssh", "203.0.113.10", "deploy", None, "deploy@203.0.113.10")),
        ("ssh://deploy@db-1.example.com:2222", Target("ssh", "db-1.example.com", "deploy", 2222, "ssh://deploy@db-1.example.com:2222")),
        ("ssh://example.com", Target("ssh", "example.com", None, None, "ssh://example.com")),
        ("ssh://root@[::1]:22", Target("ssh", "::1", "root", 22, "ssh://root@[::1]:22")),
    ],
)  # fmt: skip
def test_parse_target(text: str, expected: Target) -> None:
    assert parse_target(text) == expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "invalid target"),
        ("  ", "invalid target"),
        ("a b", "invalid target"),
        ("ftp://x", "unsupported scheme 'ftp'"),
        ("a@b@c", "invalid target"),
        ("user@host:2222", "ssh://USER@HOST:PORT"),
        ("ssh://u@h:99999", "out of range"),
        ("ssh://u@", "ssh://USER@HOST"),
    ],
)
def test_parse_target_rejects(text: str, needle: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_target(text)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)
    assert repr(text) in str(info.value)


def test_open_host_kinds() -> None:
    assert isinstance(open_host("local"), LocalHost)
    ssh = open_host("ssh://deploy@db:2200", identity=["k"], known_hosts="/x/kh")
    assert isinstance(ssh, SshHost)
    assert (ssh.host, ssh.port, ssh.username, ssh.identity) == ("db", 2200, "deploy", ("k",))
    assert ssh.name == "ssh://deploy@db:2200"
    assert ssh.policy.path == "/x/kh"


def test_ssh_target_args(sshd: SshdServer) -> None:
    args = ssh_target(sshd)
    assert parse_target(args[0]).port == sshd.port
    assert args[1:] == ["-i", str(sshd.client_key), "--known-hosts", str(sshd.known_hosts)]


def test_describe_dns_failure() -> None:
    exc = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert describe_error(exc, "nohost.invalid:22") == (
        "nohost.invalid:22: host name does not resolve (Name or service not known)"
    )


async def test_connection_refused_is_one_line() -> None:
    port = _free_port()  # nothing listens there
    host = open_host(f"ssh://root@127.0.0.1:{port}", known_hosts="/nonexistent/kh")
    with pytest.raises(TransportError) as info:
        await host.connect()
    message = str(info.value)
    assert message == f"root@127.0.0.1:{port}: connection refused (is sshd running on that port?)"
    await host.close()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (a wedged sshd)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


async def test_silent_server_fails_in_bounded_time(silent_server: int) -> None:
    host = open_host(
        f"ssh://root@127.0.0.1:{silent_server}", known_hosts="/nonexistent/kh", connect_timeout=2
    )
    t0 = time.monotonic()
    with pytest.raises(TransportError) as info:
        await host.connect()
    assert time.monotonic() - t0 < 10
    assert f"127.0.0.1:{silent_server}" in str(info.value)
    assert "\n" not in str(info.value)
    await host.close()


def _new_key(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


@pytest.mark.sshd
async def test_auth_refused(sshd: SshdServer, tmp_path: Path) -> None:
    stranger = _new_key(tmp_path / "stranger")
    host = open_host(sshd.target, identity=[str(stranger)], known_hosts=str(sshd.known_hosts))
    with pytest.raises(AuthError) as info:
        await host.connect()
    assert str(info.value).startswith(f"{sshd.user}@{sshd.host}:{sshd.port}: ")
    assert "refused every key" in str(info.value)
    await host.close()


@pytest.mark.sshd
async def test_ssh_config_alias(sshd: SshdServer, tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host labbox\n  HostName {sshd.host}\n  Port {sshd.port}\n  User {sshd.user}\n"
        f"  IdentityFile {sshd.client_key}\n"
    )
    host = SshHost("labbox", "labbox", known_hosts=str(sshd.known_hosts), config=[str(config)])
    try:
        await host.connect()
        res = await asyncio.wait_for(host.run(["id", "-un"]), 30)
        assert res.stdout.strip() == sshd.user
    finally:
        await host.close()

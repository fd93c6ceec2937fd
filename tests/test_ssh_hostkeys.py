"""Host key verification against a real sshd: changed keys refused, unknown keys need consent."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fixtures_sshd import SshdServer
from incident_console.transport.base import HostKeyError, LinkState
from incident_console.transport.targets import open_host


def _other_key_line(sshd: SshdServer, tmp_path: Path) -> tuple[str, str]:
    """A known_hosts line giving the server another key, and that key's fingerprint."""
    key = tmp_path / "impostor"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
        check=True,
        capture_output=True,
    )
    public = " ".join(key.with_suffix(".pub").read_text().split()[:2])
    fp = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(key) + ".pub"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[1]
    return f"[{sshd.host}]:{sshd.port} {public}\n", fp


def _ssh_keygen_find(name: str, known: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh-keygen", "-F", name, "-f", str(known)], capture_output=True, text=True
    )


@pytest.mark.sshd
@pytest.mark.parametrize("accept_new", [False, True])
async def test_changed_host_key_is_refused(
    sshd: SshdServer, tmp_path: Path, accept_new: bool
) -> None:
    line, old_fp = _other_key_line(sshd, tmp_path)
    known = tmp_path / "known_hosts"
    known.write_text(line)
    host = open_host(
        sshd.target,
        identity=[str(sshd.client_key)],
        known_hosts=str(known),
        accept_new_host_key=accept_new,
    )
    try:
        with pytest.raises(HostKeyError) as info:
            await host.connect()
        message = str(info.value)
        assert "CHANGED" in message
        assert f"{sshd.host}:{sshd.port}" in message
        assert sshd.fingerprint in message
        assert old_fp in message
        assert "\n" not in message
        assert host.state.state is LinkState.FAILED
        # Never "fixed" by recording the new key.
        assert known.read_text() == line
    finally:
        await host.close()


@pytest.mark.sshd
async def test_unknown_host_refused_without_consent(sshd: SshdServer, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    host = open_host(sshd.target, identity=[str(sshd.client_key)], known_hosts=str(known))
    try:
        with pytest.raises(HostKeyError) as info:
            await host.connect()
        message = str(info.value)
        assert "--accept-new-host-key" in message
        assert f"{sshd.host}:{sshd.port}" in message
        assert sshd.fingerprint in message
        assert known.read_text() == ""
    finally:
        await host.close()


@pytest.mark.sshd
async def test_accept_new_host_key_records_it(sshd: SshdServer, tmp_path: Path) -> None:
    known = tmp_path / "dot-ssh" / "known_hosts"  # folder does not exist yet
    host = open_host(
        sshd.target,
        identity=[str(sshd.client_key)],
        known_hosts=str(known),
        accept_new_host_key=True,
    )
    try:
        await host.connect()
        assert host.state.state is LinkState.CONNECTED
        assert (await host.run(["echo", "in"])).stdout == "in\n"
    finally:
        await host.close()
    text = known.read_text()
    assert text.startswith("|1|"), "recorded hashed, as Debian's OpenSSH does"
    # OpenSSH itself finds the recorded key for [host]:port.
    found = _ssh_keygen_find(f"[{sshd.host}]:{sshd.port}", known)
    assert found.returncode == 0, found.stderr
    assert sshd.host_public_key.split()[1] in found.stdout
    # Next time the key is known: no consent needed.
    again = open_host(sshd.target, identity=[str(sshd.client_key)], known_hosts=str(known))
    try:
        await again.connect()
        assert again.state.state is LinkState.CONNECTED
    finally:
        await again.close()
    assert known.read_text() == text, "a known key is not recorded twice"


@pytest.mark.sshd
async def test_revoked_host_key_is_refused_even_with_accept_new(
    sshd: SshdServer, tmp_path: Path
) -> None:
    known = tmp_path / "known_hosts"
    # (asyncssh does not match "@revoked [host]:port" lines; a wildcard it does.)
    known.write_text(f"@revoked * {sshd.host_public_key}\n")
    before = known.read_text()
    host = open_host(
        sshd.target,
        identity=[str(sshd.client_key)],
        known_hosts=str(known),
        accept_new_host_key=True,
    )
    try:
        with pytest.raises(HostKeyError) as info:
            await host.connect()
        assert "revoked" in str(info.value).lower(), str(info.value)
        assert host.state.state is LinkState.FAILED
        assert known.read_text() == before  # never recorded as trusted
    finally:
        await host.close()

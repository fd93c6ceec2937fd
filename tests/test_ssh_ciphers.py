"""The cipher our SSH client asks for first, against a real sshd, and a user's choice kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures_sshd import SshdServer
from incident_console.transport.ssh import SshHost, config_names_ciphers


async def _negotiated(sshd: SshdServer, config: list[str]) -> str:
    host = SshHost(
        "t",
        sshd.host,
        port=sshd.port,
        identity=[str(sshd.client_key)],
        known_hosts=str(sshd.known_hosts),
        config=config,
    )
    await host.connect()
    try:
        assert host._conn is not None
        return str(host._conn.get_extra_info("recv_cipher"))
    finally:
        await host.close()


@pytest.mark.sshd
async def test_aes_gcm_first_unless_the_config_names_ciphers(
    sshd: SshdServer, tmp_path: Path
) -> None:
    # AES-GCM costs asyncssh a fifth of chacha20-poly1305 per packet (a followed log line is
    # a packet); OpenSSH offers both by default.
    plain = tmp_path / "plain_config"
    plain.write_text("Host *\n  ServerAliveInterval 10\n")
    assert await _negotiated(sshd, [str(plain)]) == "aes128-gcm@openssh.com"
    chosen = tmp_path / "ciphers_config"
    chosen.write_text("Host *\n  Ciphers chacha20-poly1305@openssh.com\n")
    assert await _negotiated(sshd, [str(chosen)]) == "chacha20-poly1305@openssh.com"


def test_an_include_or_a_ciphers_line_leaves_the_choice_to_the_config(tmp_path: Path) -> None:
    include = tmp_path / "a"
    include.write_text("# Ciphers in a comment does not count\nInclude ~/.ssh/more\n")
    comment = tmp_path / "b"
    comment.write_text("# Ciphers aes128-ctr\nHost x\n  HostName y\n")
    assert config_names_ciphers([str(include)])
    assert not config_names_ciphers([str(comment)])
    assert not config_names_ciphers([str(tmp_path / "missing")])

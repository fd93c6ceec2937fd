"""Bad input on the way to a server, through the installed `incident-console` and a real sshd.

`-i` with a key file that is not there names the file (asyncssh said a bare "No such file
or directory"), exit 2 as every target problem; and `diagnose` over SSH finds the sshd it came
in through, as `local` finds it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures_sshd import SshdServer, ssh_target
from incident_console.commands.diagnose import listener_scores

SCRIPT = str(Path(sys.executable).with_name("incident-console"))


def run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCRIPT, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.parametrize(
    "command",
    [
        ["diagnose"],
        ["console"],
        ["watch", "-q"],
        ["runbook", "run", "oom-after-deploy"],
        ["runbook", "run", "oom-after-deploy", "--dry-run"],
    ],
)
def test_missing_identity_file_is_named(
    sshd: SshdServer, tmp_path: Path, command: list[str]
) -> None:
    missing = tmp_path / "no_such_key"
    done = run(
        [*command, sshd.target, "-i", str(missing), "--known-hosts", str(sshd.known_hosts)],
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [f"incident-console: -i {missing}: no such key file"]


def test_the_second_of_two_identity_files_is_named(sshd: SshdServer, tmp_path: Path) -> None:
    missing = tmp_path / "typo_ed25519"
    done = run(
        [
            "diagnose",
            sshd.target,
            "-i",
            str(sshd.client_key),
            "-i",
            str(missing),
            "--known-hosts",
            str(sshd.known_hosts),
        ],
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"incident-console: -i {missing}: no such key file"]


def test_missing_identity_file_of_ssh_config_is_named(sshd: SshdServer, tmp_path: Path) -> None:
    """An IdentityFile in ~/.ssh/config that is not there: the same bare "No such file or
    directory" came back; the file is named (asyncssh refuses it, where OpenSSH skips it)."""
    ssh = tmp_path / ".ssh"
    ssh.mkdir()
    missing = ssh / "id_gone"
    (ssh / "config").write_text(
        f"Host fixture\n  HostName {sshd.host}\n  Port {sshd.port}\n  User {sshd.user}\n"
        f"  IdentityFile {missing}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env["HOME"] = str(tmp_path)
    done = subprocess.run(
        [SCRIPT, "diagnose", "fixture", "--known-hosts", str(sshd.known_hosts)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"incident-console: fixture: {missing}: No such file or directory"
    ]


SSHD_FINDING = re.compile(
    r"sshd is (?:not )?protected from the OOM killer \(oom_score_adj (-?\d+)\)"
)


def _sshd_adjs() -> set[int]:
    """oom_score_adj of every sshd and sshd-session on this machine, read here from /proc."""
    values = set()
    for entry in Path("/proc").iterdir():
        try:
            if (entry / "comm").read_text().strip() in ("sshd", "sshd-session"):
                values.add(int((entry / "oom_score_adj").read_text()))
        except (OSError, ValueError):
            continue
    return values


def _sshd_finding(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert done.returncode in (0, 1), done.stderr
    found = [f for f in json.loads(done.stdout)["findings"] if "sshd" in f["summary"]]
    assert len(found) == 1, found
    return found[0]


def test_diagnose_over_ssh_checks_the_sshd_it_came_through(sshd: SshdServer) -> None:
    """Over SSH it once said "no sshd process found to check" (the SFTP read of the 0-byte
    /proc file came back empty) where `local` found it. Connected through an sshd, there is
    one: the finding gives an oom_score_adj that an sshd here has."""
    assert sshd.proc is not None
    before = _sshd_adjs()
    done = run(["diagnose", *ssh_target(sshd), "--json", "--sample", "2"])
    finding = _sshd_finding(done)
    match = SSHD_FINDING.fullmatch(finding["summary"].split(":")[0])
    assert match is not None, finding
    assert int(match.group(1)) in before | _sshd_adjs()
    assert int(Path(f"/proc/{sshd.proc.pid}/oom_score_adj").read_text()) in before


def test_local_diagnose_agrees_with_ssh_about_sshd(sshd: SshdServer) -> None:
    """`local` and the SSH target are the same machine here: the same sshd verdict."""
    over_ssh = _sshd_finding(run(["diagnose", *ssh_target(sshd), "--json", "--sample", "2"]))
    local = _sshd_finding(run(["diagnose", "local", "--json", "--sample", "2"]))
    assert over_ssh == local


def test_the_listener_is_judged_not_the_sessions_it_started() -> None:
    """As on Debian: the unit gives the listener -1000 and sshd puts each session back to the
    score it started with (0). Judged with the sessions, diagnose over SSH once called such a
    server's sshd unprotected, the session it came in through being one of them. (Lowering a
    score needs CAP_SYS_RESOURCE, which this machine's root lacks: the choice is tested here,
    the /proc reads by the tests above.)"""
    scores = {"900": -1000, "1200": 0, "1201": 0}
    parents = {"900": "1", "1200": "900", "1201": "1200"}
    assert listener_scores(scores, parents) == [-1000]
    # Two listeners (a second sshd on another port): both count, the worse one decides.
    assert sorted(listener_scores({**scores, "50": 0}, {**parents, "50": "1"})) == [-1000, 0]
    # No parent read (a container's sshd started by a shell, /proc/PID/stat unreadable).
    assert sorted(listener_scores({"7": 0, "8": -1000}, {})) == [-1000, 0]

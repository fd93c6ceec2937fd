"""The lab server (issue 14, part 1): a real second server in a VM, reached over SSH as deploy.

One VM for the session (fixtures_labserver.py). What a compose server of today is, checked
from inside as the non-root user the console logs in as, then `status` and `down` through the
command line.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from fixtures_labserver import LabServerRun
from incident_console.cli import main
from incident_console.lab.model import LabError
from incident_console.lab.remote import ServerLabHost
from incident_console.lab.vm import VmImage

pytestmark = [pytest.mark.labserver, pytest.mark.slow, pytest.mark.timeout(1200)]


def _out(run: LabServerRun, argv: list[str], user: str = "deploy") -> str:
    done = run.host(user).run(argv, timeout=120)
    assert done.returncode == 0, (argv, done.stderr)
    return done.stdout.strip()


def test_inside_is_todays_compose_server_as_a_non_root_deploy(lab_server: LabServerRun) -> None:
    run = lab_server
    assert _out(run, ["id", "-un"]) == "deploy"
    assert _out(run, ["id", "-u"]) != "0"
    assert "docker" in _out(run, ["id", "-Gn"]).split()
    info = _out(run, ["docker", "info", "--format", "{{.CgroupVersion}} {{.CgroupDriver}}"])
    assert info == "2 systemd"
    assert (
        int(_out(run, ["docker", "version", "--format", "{{.Server.Version}}"]).split(".")[0]) >= 24
    )
    assert _out(run, ["docker", "compose", "version", "--short"]).startswith("2.")
    denied = run.host().run(["dmesg"], timeout=60)
    assert denied.returncode != 0
    assert "Operation not permitted" in denied.stderr
    assert _out(run, ["cat", "/proc/sys/kernel/dmesg_restrict"]) == "1"


def test_the_stack_runs_in_the_vm_and_answers_here(lab_server: LabServerRun) -> None:
    rows = {c.service: c for c in lab_server.lab().status()}
    assert set(rows) == {"backend", "db", "frontend", "redis"}
    backend = rows["backend"]
    assert (backend.state, backend.health) == ("running", "healthy")
    assert backend.name == "icl-backend-1"  # compose v2's naming
    assert backend.memory_limit == 256 * 1024 * 1024
    with urllib.request.urlopen(lab_server.report.frontend_url + "api/v1/health", timeout=30) as r:
        assert r.status == 200
    # The compose labels name the folder in the VM, where the runbook will patch the file.
    labels = _out(
        lab_server,
        ["docker", "inspect", "--format",
         '{{index .Config.Labels "com.docker.compose.project.working_dir"}}', backend.id],
    )  # fmt: skip
    assert labels == "/home/deploy/lab/icl"


def test_the_host_key_comes_from_the_image_and_a_wrong_one_is_refused(
    lab_server: LabServerRun, tmp_path: Path
) -> None:
    state = lab_server.state
    image = VmImage(Path(state.image))
    line = lab_server.server.known_hosts.read_text()
    assert line == image.known_hosts_line(state.ssh_port)
    assert oct(image.key.stat().st_mode & 0o777) == "0o600"
    # Another key for the same address: ssh must refuse, not learn the new one.
    other = Path("/etc/ssh/ssh_host_ed25519_key.pub")
    if not other.is_file():
        pytest.skip("no other ed25519 host key on this machine to pose as the wrong one")
    wrong = tmp_path / "known_hosts"
    key_type, key = other.read_text().split()[:2]
    wrong.write_text(f"[127.0.0.1]:{state.ssh_port} {key_type} {key}\n")
    # A user with no shared connection open (the master is per user): ssh checks the key.
    host = ServerLabHost(state.ssh_port, image.key, wrong, "nobody")
    with pytest.raises(LabError, match="Host key verification failed"):
        host.run(["true"], timeout=60)


def _running(pid: int) -> bool:
    # qemu daemonized itself, so it is init's child: gone, or a zombie until init reaps it.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.labserver_down
def test_status_then_down_leaves_no_qemu(lab_server: LabServerRun) -> None:
    cli = CliRunner()
    folder = str(lab_server.server.directory)
    status = cli.invoke(main, ["lab", "server", "status", "--dir", folder])
    assert status.exit_code == 0, status.output
    assert f"qemu pid {lab_server.state.pid}" in status.output
    assert "cgroup v2 systemd" in status.output
    assert lab_server.report.target in status.output
    assert "backend" in status.output and "healthy" in status.output

    down = cli.invoke(main, ["lab", "server", "down", "--dir", folder])
    assert down.exit_code == 0, down.output
    assert "stack 'icl' stopped" in down.output
    assert not _running(lab_server.state.pid)
    overlay = str(lab_server.server.overlay)
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            assert overlay.encode() not in cmdline, f"qemu still running: pid {proc.name}"
    assert VmImage(Path(lab_server.state.image)).complete()  # the cached image stays
    again = cli.invoke(main, ["lab", "server", "status", "--dir", folder])
    assert "not started" in again.output

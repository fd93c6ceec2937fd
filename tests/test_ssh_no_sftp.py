"""An sshd without the SFTP subsystem (hardened configs drop it): files go over exec.

Every test reaches a real OpenSSH sshd whose config has no `Subsystem sftp`. Reads are `cat`
to EOF, writes a fixed script renaming a temp file over the target; the errors are those of
the SFTP path, and the console says once that files go over exec.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncssh
import pytest

import test_transport_contract as contract
from conftest import IN_CI
from fixtures_sshd import SSHD, SshdServer, _free_port, ssh_target
from incident_console.transport.base import Host
from incident_console.transport.ssh import SshHost
from incident_console.transport.ssh_files import FILES_OVER_EXEC

THEMES = Path(__file__).resolve().parents[1] / "themes"


@pytest.fixture
async def nosftp(sshd_no_sftp: SshdServer) -> AsyncIterator[SshHost]:
    host = await sshd_no_sftp.connect_host()
    try:
        yield host
    finally:
        await host.close()


@pytest.fixture
async def host(nosftp: SshHost) -> Host:
    """The transport contract's host, here an SshHost on the server with no SFTP."""
    return nosftp


# The transport contract's file tests, run again on this server.
test_contract_read_write_text_keeps_mode = contract.test_read_write_text_keeps_mode
test_contract_read_text_of_proc_files = (
    contract.test_read_text_of_proc_files_that_say_they_are_empty
)
test_contract_read_text_errors = contract.test_read_text_errors


def _need(condition: bool, reason: str) -> None:
    if not condition:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)


async def test_the_server_really_refuses_sftp(sshd_no_sftp: SshdServer) -> None:
    # Without this the other tests could pass over SFTP and prove nothing about exec.
    async with asyncssh.connect(
        sshd_no_sftp.host,
        port=sshd_no_sftp.port,
        username=sshd_no_sftp.user,
        known_hosts=str(sshd_no_sftp.known_hosts),
        client_keys=[str(sshd_no_sftp.client_key)],
    ) as conn:
        with pytest.raises(asyncssh.ChannelOpenError):
            await conn.start_sftp_client()
        assert (await conn.run("echo exec works")).stdout == "exec works\n"


async def test_read_a_file_over_exec_said_once(nosftp: SshHost, tmp_path: Path) -> None:
    said: list[str] = []
    nosftp.on_files_over_exec(said.append)
    path = tmp_path / "compose.yml"
    path.write_text("services:\n  api: {}\nnon-ascii: é\n")
    assert await nosftp.read_text(str(path)) == "services:\n  api: {}\nnon-ascii: é\n"
    assert nosftp.files_over_exec
    assert await nosftp.read_text(str(path)) == path.read_text()
    assert said == [FILES_OVER_EXEC]
    late: list[str] = []
    nosftp.on_files_over_exec(late.append)  # a listener registered after the fact hears it too
    assert late == [FILES_OVER_EXEC]


async def test_read_proc_files_to_eof(nosftp: SshHost) -> None:
    text = await nosftp.read_text("/proc/stat")
    assert any(line.startswith("btime ") for line in text.splitlines()), text[:200]
    own = await nosftp.read_text("/proc/self/status")  # cat's own: a process started for it
    assert own.startswith("Name:\tcat\n"), own[:100]


async def test_missing_file_is_file_not_found_naming_host_and_path(
    nosftp: SshHost, tmp_path: Path
) -> None:
    missing = str(tmp_path / "no-such.yml")
    with pytest.raises(FileNotFoundError) as caught:
        await nosftp.read_text(missing)
    message = str(caught.value)
    assert nosftp.name in message and missing in message, message
    assert len(message.splitlines()) == 1
    with pytest.raises(FileNotFoundError):
        await nosftp.read_text(str(tmp_path / "no" / "folder.yml"))
    with pytest.raises(IsADirectoryError):  # an OSError, as callers catch it
        await nosftp.read_text(str(tmp_path))


async def test_write_is_atomic_and_keeps_the_mode(nosftp: SshHost, tmp_path: Path) -> None:
    path = tmp_path / "docker-compose.yml"
    path.write_text("old\n")
    path.chmod(0o640)
    before = path.stat().st_ino
    await nosftp.write_text(str(path), "services:\n  backend:\n    mem_limit: 512m\n")
    assert path.read_text() == "services:\n  backend:\n    mem_limit: 512m\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.stat().st_ino != before, "written in place, not renamed over"
    assert sorted(os.listdir(tmp_path)) == ["docker-compose.yml"]
    # A new file gets 0666 less the umask, as an SFTP create (the sshd has this process's umask).
    umask = os.umask(0)
    os.umask(umask)
    await nosftp.write_text(str(tmp_path / "new.env"), "A=1\n")
    assert (tmp_path / "new.env").read_text() == "A=1\n"
    assert stat.S_IMODE((tmp_path / "new.env").stat().st_mode) == 0o666 & ~umask


async def test_a_reader_sees_the_old_file_or_the_new_never_half(
    nosftp: SshHost, tmp_path: Path
) -> None:
    path = tmp_path / "big.yml"
    versions = [f"# version {n}\n" + f"line {n}\n" * 150_000 for n in range(4)]
    path.write_text(versions[0])
    seen: list[str] = []
    stop = threading.Event()

    def read_on() -> None:
        while not stop.is_set():
            text = path.read_text()
            if text not in versions:
                seen.append(f"{len(text)} bytes: {text[:20]!r}...{text[-20:]!r}")

    reader = threading.Thread(target=read_on)
    reader.start()
    try:
        for text in versions[1:]:
            await nosftp.write_text(str(path), text)
    finally:
        stop.set()
        await asyncio.to_thread(reader.join)
    assert seen == []
    assert path.read_text() == versions[-1]


async def test_names_are_arguments_never_shell_text(nosftp: SshHost, tmp_path: Path) -> None:
    # Relative: created in the remote's working folder (this user's home) or in tmp_path.
    marker = "INJECTED-" + uuid.uuid4().hex[:8]
    name = f"a b; touch {marker} $(touch {marker}) `touch {marker}` 'q\" -x.yml"
    path = tmp_path / name
    await nosftp.write_text(str(path), "x: 1\n")
    assert path.read_text() == "x: 1\n"
    assert await nosftp.read_text(str(path)) == "x: 1\n"
    assert not (Path.home() / marker).exists() and not (tmp_path / marker).exists()
    dashed = tmp_path / "-n"  # cat -- and mv -- : a name that looks like an option is a name
    await nosftp.write_text(str(dashed), "dash\n")
    assert await nosftp.read_text(str(dashed)) == "dash\n"
    assert sorted(os.listdir(tmp_path)) == sorted([name, "-n"])


async def test_a_refused_write_is_its_error_not_a_lost_link(
    nosftp: SshHost, tmp_path: Path
) -> None:
    # The script stops before it reads the text: it must still read it to the end, or the
    # text written into the channel it closed says "link lost" instead of the reason.
    for text in ["x: 1\n"] * 10 + ["x" * (1024 * 1024)]:
        with pytest.raises(FileNotFoundError):
            await nosftp.write_text(str(tmp_path / "no" / "such.yml"), text)
    with pytest.raises(IsADirectoryError):
        await nosftp.write_text(str(tmp_path), "x: 1\n")
    assert os.listdir(tmp_path) == []


async def test_sftp_server_keeps_sftp(sshd: SshdServer, tmp_path: Path) -> None:
    host = await sshd.connect_host()
    try:
        path = tmp_path / "f.txt"
        path.write_text("over sftp\n")
        assert await host.read_text(str(path)) == "over sftp\n"
        assert isinstance(host, SshHost) and not host.files_over_exec
    finally:
        await host.close()


# -- a login that is not root: permission denied ------------------------------------------


@pytest.fixture(scope="module")
def user_no_sftp() -> Iterator[SshdServer]:
    """A throwaway user and a private sshd with no SFTP letting that user in."""
    _need(os.geteuid() == 0 and shutil.which("useradd") is not None, "needs root and useradd")
    _need(os.access(SSHD, os.X_OK), f"{SSHD} is not installed")
    user = f"icn{uuid.uuid4().hex[:8]}"
    # '*' instead of useradd's '!': a locked account may not log in even with a key.
    for attempt in range(5):  # other tests add users too: /etc/passwd may be locked a moment
        done = subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", "-p", "*", user],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode == 0:
            break
        time.sleep(0.5 * (attempt + 1))
    else:
        pytest.fail(f"useradd {user}: {done.stderr.strip()}")
    # The user's sshd reads authorized_keys as that user: pytest's tmp dirs are 0700 root.
    root = Path(tempfile.mkdtemp(prefix="icn-sshd-"))
    root.chmod(0o755)
    try:
        server = SshdServer(root=root / "sshd", port=_free_port(), user=user, sftp=False)
        server.setup()
        server.root.chmod(0o755)
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        subprocess.run(["userdel", user], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def root_only_dir() -> Iterator[Path]:
    """A folder the throwaway user may enter and read but not write (root's, 0755)."""
    folder = Path(tempfile.mkdtemp(prefix="icn-ro-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def test_permission_denied_naming_host_and_path(
    user_no_sftp: SshdServer, root_only_dir: Path
) -> None:
    secret = root_only_dir / "secret.env"
    secret.write_text("TOKEN=x\n")
    secret.chmod(0o600)
    compose = root_only_dir / "docker-compose.yml"
    compose.write_text("services: {}\n")
    compose.chmod(0o644)
    host = await user_no_sftp.connect_host()
    try:
        with pytest.raises(PermissionError) as caught:
            await host.read_text(str(secret))
        assert host.name in str(caught.value) and str(secret) in str(caught.value)
        assert isinstance(host, SshHost) and host.files_over_exec
        assert await host.read_text(str(compose)) == "services: {}\n"
        with pytest.raises(PermissionError) as caught:
            await host.write_text(str(compose), "services: {backend: {}}\n")
        assert host.name in str(caught.value) and str(compose) in str(caught.value)
        assert len(str(caught.value).splitlines()) == 1
    finally:
        await host.close()
    assert compose.read_text() == "services: {}\n"
    assert sorted(os.listdir(root_only_dir)) == ["docker-compose.yml", "secret.env"]


# -- the whole product ----------------------------------------------------------------------

COMPOSE = """\
# comments survive
services:
  app:
    image: busybox
    environment:
      - WORKERS=4  # seed default
    mem_limit: 64m
"""

RUNBOOK = """
name: t
title: a patch over exec
steps:
  - id: workers
    title: Fewer workers
    kind: remediate
    compose_set:
      environment: {WORKERS: '2'}
"""


async def test_compose_patch_and_undo_over_exec(sshd_no_sftp: SshdServer, tmp_path: Path) -> None:
    # The runbook's compose_set reads, backs up and writes the file through the door; undo
    # writes the original back: all of it over exec here, said once in the monitor's sources.
    from incident_console.monitor.host_monitor import HostMonitor
    from incident_console.monitor.journal import Journal, read_journal
    from incident_console.runbook.actions import HostExecutor
    from incident_console.runbook.engine import Engine, StepState
    from incident_console.runbook.loader import parse_runbook
    from incident_console.runbook.runner import Runner
    from incident_console.runbook.session import file_changes, undo_changes
    from incident_console.transport.targets import open_host

    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    compose.chmod(0o640)
    journal = Journal(tmp_path / "journal.jsonl")
    host = open_host(sshd_no_sftp.target, **sshd_no_sftp.host_options())  # type: ignore[arg-type]
    monitor = HostMonitor(host, journal=journal, sources=[])
    await monitor.start()
    try:
        engine = Engine(parse_runbook(RUNBOOK), {"service": "app", "compose_file": str(compose)})
        runner = Runner(engine, HostExecutor(monitor), poll_s=0.1)
        assert await runner.run(0) is StepState.PASSED, engine.records[0].verdict
        assert "- WORKERS=2" in compose.read_text()
        assert stat.S_IMODE(compose.stat().st_mode) == 0o640
        done = await undo_changes(monitor, file_changes(tmp_path / "journal.jsonl"))
        assert len(done) == 1
        assert compose.read_text() == COMPOSE
        files = monitor.state.sources["files"]
        assert (files.method, files.ok, files.detail) == ("exec", True, FILES_OVER_EXEC)
    finally:
        await monitor.stop()
        journal.close()
    said = [
        r for r in read_journal(tmp_path / "journal.jsonl") if r.get("source") == "files"
    ]  # many reads and writes, one record
    assert [(r["kind"], r["method"], r["detail"]) for r in said] == [
        ("source", "exec", FILES_OVER_EXEC)
    ]


def test_diagnose_runs_and_says_files_go_over_exec(sshd_no_sftp: SshdServer) -> None:
    # A project no container has: nothing of the shared engine's other labs in the verdict.
    project = f"ins-nosftp-{uuid.uuid4().hex[:6]}"
    argv = [sys.executable, "-m", "incident_console", "diagnose", *ssh_target(sshd_no_sftp),
            "--json", "--project", project, "--since", "2s", "--sample", "2"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, (proc.returncode, proc.stderr, proc.stdout[-2000:])
    doc = json.loads(proc.stdout)
    assert doc["sources"]["files"] == {"method": "exec", "ok": True, "detail": FILES_OVER_EXEC}
    said = [f["summary"] for f in doc["findings"] if "files" in f["summary"]]
    assert said == [f"files: {FILES_OVER_EXEC}"]
    # It read the sshd's OOM protection through /proc over exec (the check exited 2 before).
    assert any("sshd is" in f["summary"] for f in doc["findings"]), doc["findings"]


async def test_the_console_header_says_files_go_over_exec() -> None:
    # The TUI's own tier: a fake monitor, as the Pilot tests have it.
    from incident_console.config import Settings
    from incident_console.domain.events import SourceStatus
    from incident_console.ui.app import make_app
    from incident_console.ui.demo import DEMO_NOW, demo_monitor

    plain, exec_files = demo_monitor(), demo_monitor()
    exec_files.post(SourceStatus(DEMO_NOW, "files", "exec", detail=FILES_OVER_EXEC))
    for monitor, shown in ((plain, False), (exec_files, True)):
        app = make_app(Settings(), [monitor], clock=lambda: DEMO_NOW, theme_dirs=[THEMES])
        async with app.run_test(size=(200, 45)) as pilot:
            await pilot.pause()
            header = str(app.query_one(".host-header").render())
            assert ("files: over exec" in header) is shown, header

"""One contract, two hosts: LocalHost and SshHost (against a real sshd) must behave alike."""

from __future__ import annotations

import asyncio
import os
import pathlib
import stat
import subprocess
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from conftest import IN_CI
from incident_console.transport.base import (
    CommandFailed,
    CommandTimeout,
    Host,
    LinkState,
)
from incident_console.transport.local import LocalHost


@pytest.fixture(params=["local", "ssh"])
async def host(request: pytest.FixtureRequest) -> AsyncIterator[Host]:
    if request.param == "local":
        h: Host = LocalHost()
        await h.connect()
    else:
        sshd = request.getfixturevalue("sshd")
        h = await sshd.connect_host()
    try:
        yield h
    finally:
        await h.close()


def _unique_sleep() -> tuple[str, str]:
    """A sleep argument no other process on this machine uses, to find it with ps."""
    secs = f"{4000 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**6:06d}"
    return secs, f"sleep {secs}"


async def _running(host: Host, needle: str) -> bool:
    ps = await host.run(["ps", "-eo", "pid,args"])
    assert ps.ok, ps.stderr
    return any(line.split(None, 1)[-1].strip() == needle for line in ps.stdout.splitlines())


async def _running_within(host: Host, needle: str, seconds: float) -> bool:
    """The shell printed its line before it forked the sleep: under load, ps may run first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await _running(host, needle):
            return True
        await asyncio.sleep(0.1)
    return False


async def _gone_within(host: Host, needle: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not await _running(host, needle):
            return True
        await asyncio.sleep(0.2)
    return False


async def test_connect_state(host: Host) -> None:
    assert host.state.state is LinkState.CONNECTED


async def test_run_status_stdout_stderr(host: Host) -> None:
    res = await host.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert res.exit_status == 3
    assert not res.ok
    assert res.stdout == "out\n"
    assert res.stderr == "err\n"
    assert res.argv == ("sh", "-c", "echo out; echo err >&2; exit 3")


async def test_run_argv_is_not_shell_text(host: Host) -> None:
    # A hostile-looking argument must arrive as one literal argument.
    arg = "a b; echo INJECTED $(id) 'q'"
    res = await host.run(["printf", "%s\n", arg])
    assert res.ok
    assert res.stdout == arg + "\n"


async def test_run_input(host: Host) -> None:
    res = await host.run(["tr", "a-z", "A-Z"], input="hello\nworld\n")
    assert res.ok
    assert res.stdout == "HELLO\nWORLD\n"


async def test_run_timeout_ends_process(host: Host) -> None:
    secs, needle = _unique_sleep()
    with pytest.raises(CommandTimeout):
        await host.run(["sleep", secs], timeout=1.0)
    assert await _gone_within(host, needle, 10.0), f"{needle!r} still runs after the timeout"


async def test_stream_yields_lines(host: Host) -> None:
    lines = [line async for line in host.stream(["printf", "one\ntwo\nthree\n"])]
    assert lines == ["one", "two", "three"]


async def test_stream_nonzero_exit_raises(host: Host) -> None:
    got: list[str] = []
    with pytest.raises(CommandFailed) as info:
        async for line in host.stream(["sh", "-c", "echo partial; echo nope >&2; exit 4"]):
            got.append(line)
    assert got == ["partial"]
    assert info.value.exit_status == 4
    assert "nope" in str(info.value)


async def test_stream_stop_leaves_no_process(host: Host) -> None:
    secs, needle = _unique_sleep()
    # The shell prints a line, then waits on a child: the child must die too.
    stream = host.stream(["sh", "-c", f"echo ready; sleep {secs}; echo never"])
    assert await anext(stream) == "ready"
    assert await _running_within(host, needle, 10.0), f"{needle!r} never started"
    await stream.aclose()  # type: ignore[attr-defined]
    assert await _gone_within(host, needle, 10.0), f"{needle!r} still runs after aclose"


async def test_stream_cancel_leaves_no_process(host: Host) -> None:
    secs, needle = _unique_sleep()
    first = asyncio.Event()

    async def consume() -> None:
        async for _line in host.stream(["sh", "-c", f"echo ready; exec sleep {secs}"]):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 10)
    assert await _running_within(host, needle, 10.0), f"{needle!r} never started"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _gone_within(host, needle, 10.0), f"{needle!r} still runs after cancel"


async def test_process_round_trip(host: Host) -> None:
    proc = await host.start(["cat"])
    try:
        await proc.write("ping 1\n")
        assert await proc.readline() == "ping 1"
        await proc.write("ping 2\n")
        assert await proc.readline() == "ping 2"
        assert proc.exit_status is None
    finally:
        await proc.close()
    assert proc.exit_status is not None


async def test_process_close_leaves_no_process(host: Host) -> None:
    secs, needle = _unique_sleep()
    proc = await host.start(["sh", "-c", f"echo up; sleep {secs}"])
    assert await proc.readline() == "up"
    assert await _running_within(host, needle, 10.0), f"{needle!r} never started"
    await proc.close()
    assert await _gone_within(host, needle, 10.0)


def _write_file(path: str, text: str, mode: int) -> None:
    pathlib.Path(path).write_text(text)
    os.chmod(path, mode)


async def test_read_write_text_keeps_mode(host: Host, tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(str(tmp_path), "compose.yml")
    _write_file(path, "old\n", 0o640)
    assert await host.read_text(path) == "old\n"
    await host.write_text(path, "services:\n  api: {}\nnon-ascii: é\n")
    assert await host.read_text(path) == "services:\n  api: {}\nnon-ascii: é\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    # Nothing left behind by the atomic write.
    assert sorted(os.listdir(str(tmp_path))) == ["compose.yml"]


async def test_read_text_of_proc_files_that_say_they_are_empty(host: Host) -> None:
    # /proc files stat as 0 bytes: a read of the stat size over SFTP came back empty, and the
    # kernel log lost its boot time and diagnose the sshd's OOM protection on remote hosts.
    text = await host.read_text("/proc/stat")
    assert any(line.startswith("btime ") for line in text.splitlines()), text[:200]
    assert "MemTotal:" in await host.read_text("/proc/meminfo")
    big = await host.read_text("/proc/self/maps")  # more than one SFTP read on most hosts
    assert big.count("\n") > 10


async def test_read_text_errors(host: Host, tmp_path: os.PathLike[str]) -> None:
    with pytest.raises(FileNotFoundError):
        await host.read_text(os.path.join(str(tmp_path), "missing.txt"))
    with pytest.raises(FileNotFoundError):
        await host.write_text(os.path.join(str(tmp_path), "no", "such", "dir.txt"), "x")


def _docker_ps_count() -> int | None:
    try:
        out = subprocess.run(["docker", "ps", "-q"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return len(out.stdout.split()) if out.returncode == 0 else None


async def test_docker_client_lists_containers(host: Host) -> None:
    expected = _docker_ps_count()
    if expected is None:
        if IN_CI:
            pytest.fail("docker engine not available in CI")
        pytest.skip("docker engine not available")
    client = await host.docker()
    assert await host.docker() is client  # cached
    ids = await asyncio.to_thread(lambda: [c.id for c in client.containers.list()])
    # Other helpers run containers too: compare with a fresh count, allowing churn.
    after = _docker_ps_count()
    assert after is not None
    assert min(expected, after) - 2 <= len(ids) <= max(expected, after) + 2
    assert await asyncio.to_thread(client.ping)

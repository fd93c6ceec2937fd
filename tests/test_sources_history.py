"""OOM kills from docker's event history: the kills before the console connected.

Unit tests on docker's real event documents (captured on this machine: docker 20.10, cgroup v1,
a python3 under --memory 32m allocating 100 MiB), and the real thing: a container OOM-killed
before the monitor starts, then listed by it as history.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incident_console.domain.events import OomConstraint, OomKill, SourceStatus
from incident_console.domain.oom_history import history_kills, new_history
from incident_console.monitor.host_monitor import HostMonitor
from incident_console.monitor.state import HostState
from incident_console.sources.docker_events import DockerEventsSource
from incident_console.sources.kernel_log import KernelLogSource
from incident_console.transport.local import LocalHost
from sources_support import docker_or_skip, remove, run_container, wait_for

CID = "86ca66ab56689650920382086b45fa1236365a0782055fff67bddf6f04518803"
T0 = 1796162257


def _event(action: str, nano: int, **attributes: str) -> dict[str, Any]:
    """A docker event document as the engine sent it (the captured one's shape)."""
    attrs = {"image": "icts-base:latest", "name": "isr-oomprobe", **attributes}
    return {
        "status": action,
        "id": CID,
        "from": "icts-base:latest",
        "Type": "container",
        "Action": action,
        "Actor": {"ID": CID, "Attributes": attrs},
        "scope": "local",
        "time": nano // 10**9,
        "timeNano": nano,
    }


CAPTURED = [
    _event("create", 1796162257036917424),
    _event("start", 1796162257540015054),
    _event("oom", 1796162257591719005),
    _event("die", 1796162257666036491, exitCode="137"),
]


def test_an_oom_and_its_die_are_one_limit_kill_with_no_pid() -> None:
    [kill] = history_kills(CAPTURED, "1")
    assert kill.container_id == CID and kill.container == "isr-oomprobe"
    assert kill.time == pytest.approx(1796162257.591719)
    assert kill.pid == 0 and kill.process == ""
    assert kill.detail == "process and pid unknown: from docker's event history"
    assert kill.source == "docker-events" and kill.replayed
    assert kill.constraint is OomConstraint.LIMIT  # v1: the cgroup's own limit notification
    [v2] = history_kills(CAPTURED, "2")
    assert v2.constraint is OomConstraint.UNKNOWN  # v2: any kill in the cgroup


def test_a_burst_of_v1_oom_events_is_one_kill_and_bursts_apart_are_two() -> None:
    burst = [_event("oom", (T0 * 10**9) + i * 300_000_000) for i in range(6)]
    later = [_event("oom", (T0 + 30) * 10**9), _event("die", (T0 + 30) * 10**9 + 1, exitCode="137")]
    kills = history_kills([*later, *burst], "1")  # any order in, time order out
    assert [k.time for k in kills] == [T0, T0 + 30]


def test_a_sigkill_exit_is_a_kill_only_without_docker_kill_or_stop() -> None:
    alone = [_event("die", T0 * 10**9, exitCode="137")]
    [kill] = history_kills(alone, "1")
    assert kill.constraint is OomConstraint.UNKNOWN
    assert "exit 137, no docker kill or stop" in kill.detail
    stopped = [
        _event("kill", T0 * 10**9, signal="15"),
        _event("die", (T0 + 10) * 10**9, exitCode="137"),
    ]
    assert history_kills(stopped, "1") == []
    assert history_kills([_event("die", T0 * 10**9, exitCode="0")], "1") == []


def test_compose_labels_name_the_service() -> None:
    events = [_event("oom", T0 * 10**9, **{"com.docker.compose.service": "backend",
                                           "com.docker.compose.project": "isr"})]  # fmt: skip
    [kill] = history_kills(events, "1")
    assert kill.service == "backend"


_ODD = st.one_of(st.none(), st.text(max_size=6), st.integers(-5, 2 * 10**18), st.booleans())
_EVENTS = st.lists(
    st.fixed_dictionaries(
        {
            "Action": st.one_of(st.sampled_from(["oom", "die", "kill", "start"]), _ODD),
            "Actor": st.one_of(
                st.fixed_dictionaries(
                    {"ID": _ODD, "Attributes": st.one_of(
                        st.dictionaries(st.sampled_from(["exitCode", "name"]), _ODD), _ODD)}
                ),
                _ODD,
            ),
            "timeNano": _ODD,
            "time": _ODD,
        }
    ),
    max_size=12,
)  # fmt: skip


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(_EVENTS)
def test_history_never_raises(events: list[dict[str, Any]]) -> None:
    for kill in history_kills(events, "1"):
        assert kill.replayed and kill.pid == 0


def _kernel(time_: float, pid: int = 4242) -> OomKill:
    return OomKill(time=time_, pid=pid, process="python3", container_id=CID, source="dmesg",
                   constraint=OomConstraint.LIMIT, replayed=True)  # fmt: skip


def test_one_record_per_kill_whichever_source_comes_first() -> None:
    [history] = history_kills(CAPTURED, "1")
    kernel = _kernel(history.time + 1.2)  # the kernel's stamp, placed from the boot time
    for order in ([history, kernel], [kernel, history]):
        state = HostState("h")
        for kill in order:
            state.apply(kill)
        assert list(state.oom_kills) == [kernel]
    # The source itself drops what the kernel log or the counters already said.
    counted = dataclasses.replace(kernel, pid=0, process="", source="memory.oom_control")
    assert new_history([history], [counted]) == []
    assert new_history([history], [_kernel(history.time + 60)]) == [history]
    # A second kernel kill of the container close by is a kill of its own.
    state = HostState("h")
    for kill in (history, kernel, _kernel(history.time + 2, pid=4243)):
        state.apply(kill)
    assert [k.pid for k in state.oom_kills] == [4242, 4243]


def _oom_kill_now() -> tuple[str, str, float]:
    """A container whose python3 outgrows --memory 32m and is killed by the kernel: (id, name,
    when it was started)."""
    started = time.time()
    cid, name = run_container("b = bytearray(200 * 1024 * 1024)", "--memory", "32m",
                              "--memory-swap", "32m")  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        out = subprocess.run(["docker", "inspect", "-f", "{{.State.Status}} {{.State.OOMKilled}}",
                              cid], capture_output=True, text=True, timeout=30).stdout.split()  # fmt: skip
        if out and out[0] == "exited":
            assert out == ["exited", "true"], out
            return cid, name, started
        time.sleep(0.2)
    pytest.fail("the container was not OOM-killed within 60 s")


def _denial_or_skip() -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv missing")
    if Path("/proc/sys/kernel/dmesg_restrict").read_text().strip() != "1":
        pytest.skip("kernel.dmesg_restrict is 0 here: an unprivileged dmesg is not denied")


def _denied(kernel: KernelLogSource) -> None:
    unprivileged = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    kernel.dmesg_argv = (*unprivileged, *kernel.dmesg_argv)
    kernel.journal_probe_argv = (*unprivileged, *kernel.journal_probe_argv)
    kernel.journal_argv = (*unprivileged, *kernel.journal_argv)


@pytest.mark.slow
@pytest.mark.parametrize("kernel_log", ["denied", "open"])
async def test_a_kill_before_the_monitor_started_is_listed_as_history(kernel_log: str) -> None:
    """The real thing: the kill happens, then a monitor starts and lists it, not as news."""
    docker_or_skip()
    if kernel_log == "denied":
        _denial_or_skip()
    cid, name, started = await asyncio.to_thread(_oom_kill_now)
    kernel = KernelLogSource(since=started - 5, retry_s=3600)
    if kernel_log == "denied":
        _denied(kernel)
    events = DockerEventsSource(since=started - 5)
    monitor = HostMonitor(LocalHost(), sources=[events, kernel], read_only=True)
    seen: list[OomKill] = []
    monitor.subscribe(lambda e: seen.append(e) if isinstance(e, OomKill) else None)
    await monitor.start()
    try:
        state = monitor.state

        def ours() -> list[OomKill]:
            return [k for k in state.oom_kills if k.container_id == cid]

        await wait_for(ours, 40, "our container's kill from before the monitor started")
        # Give the other source its chance to report it twice.
        await asyncio.sleep(4)
        [kill] = ours()
        assert kill.container == name
        if kernel_log == "denied":
            assert kill.replayed, "a kill before the console connected popped up as news"
            assert all(k.replayed for k in seen if k.container_id == cid)
            status: SourceStatus = state.sources["kernel_log"]
            assert not status.ok and status.detail.startswith("dmesg denied")
            assert kill.source == "docker-events" and kill.pid == 0 and kill.process == ""
            assert kill.constraint is OomConstraint.LIMIT
            assert kill.detail == "process and pid unknown: from docker's event history"
        else:
            # One record, the kernel's (whether it calls the kill live is the kernel log's
            # judgment: on a loaded host its replay can pause and end early).
            assert kill.source == "dmesg" and kill.pid > 0 and kill.process == "python3"
        assert state.containers[cid].oom_kills == 1
    finally:
        await monitor.stop()
        remove(name)


def test_the_sources_backoff_doubles_to_its_most_and_resets() -> None:
    from incident_console.sources.base import Backoff

    backoff = Backoff(first=1.0, most=15.0, jitter=0.0)
    assert [backoff.next() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 15.0, 15.0]
    backoff.reset()
    assert backoff.next() == 1.0
    jittered = Backoff(first=10.0, most=30.0, jitter=0.2)
    assert all(8.0 <= jittered.next() <= 30.0 for _ in range(20))

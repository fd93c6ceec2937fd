"""The cgroups' OOM kill counters: the sampler's O/V lines, and the rises made kill records.

The file texts are real: v2 ``memory.events`` as read as `deploy` on the lab server VM (Debian
13, cgroup v2, docker 26) while the backend was being killed; v1 ``memory.oom_control`` as read
on this machine (docker 20.10, cgroup v1).
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from incident_console.domain.events import ContainerInfo, OomConstraint, OomKill, SourceStatus
from incident_console.domain.oom_counters import OomCounters
from incident_console.domain.sampler import parse_frame
from incident_console.monitor.host_monitor import HostMonitor
from incident_console.report.kills import deduplicate
from incident_console.sources.docker_events import DockerEventsSource
from incident_console.sources.kernel_log import KernelLogSource
from incident_console.sources.stats import StatsSource, sampler_argv
from incident_console.transport.local import LocalHost
from sources_support import docker_or_skip, remove, run_container, wait_for

V2_EVENTS = "low 0\nhigh 0\nmax 386\noom 12\noom_kill 1\noom_group_kill 0\n"
V1_OOM_CONTROL = "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"
VMSTAT = "nr_free_pages 5837890\npgfault 1234\noom_kill 1\nunevictable_pgs_culled 0\n"
CID = "11ecfdfcc6707b2f0bdfd4df9d7fb142c681409e12faebf1b03535010e2c7825"
INFOS = {CID: ContainerInfo(time=0.0, id=CID, name="/lab-backend-1", service="backend")}


def _sampler_frame(tmp_path: Path, program: str, mode: str, files: dict[str, str]) -> list[str]:
    """One frame of the real sampler over a container folder holding `files`."""
    folder = tmp_path / "cg"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    argv = sampler_argv(program, mode, mawk=False)
    stdin = f"set k1 {folder} {folder}\ntick\nquit\n"
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=30)
    return done.stdout.splitlines()


@pytest.mark.parametrize("program", ["awk-sampler", "sh-sampler"])
def test_samplers_print_v2_memory_events(tmp_path: Path, program: str) -> None:
    if shutil.which("awk") is None:
        pytest.skip("no awk")
    # The host's own total, from this machine's /proc/vmstat: read first, as other kills on
    # this kernel only raise it.
    host_total = next(int(x.split()[1]) for x in Path("/proc/vmstat").read_text().splitlines()
                      if x.startswith("oom_kill "))  # fmt: skip
    lines = _sampler_frame(
        tmp_path, program, "v2", {"memory.current": "1000\n", "memory.events": V2_EVENTS}
    )
    assert "O k1 1 12" in lines
    frame = parse_frame(lines)
    assert frame.ooms == {"k1": (1, 12)}
    assert frame.vmstat_oom_kill is not None and frame.vmstat_oom_kill >= host_total


@pytest.mark.parametrize("program", ["awk-sampler", "sh-sampler"])
def test_samplers_print_v1_oom_control(tmp_path: Path, program: str) -> None:
    files = {"memory.usage_in_bytes": "1000\n", "memory.oom_control": V1_OOM_CONTROL}
    lines = _sampler_frame(tmp_path, program, "v1", files)
    assert parse_frame(lines).ooms == {"k1": (0, 0)}


def test_a_container_without_the_counter_prints_no_o_line(tmp_path: Path) -> None:
    # v1 kernels before 4.13 print no oom_kill line: no O line, not a zero.
    files = {"memory.usage_in_bytes": "1000\n", "memory.oom_control": "oom_kill_disable 0\n"}
    lines = _sampler_frame(tmp_path, "awk-sampler", "v1", files)
    assert not [x for x in lines if x.startswith("O ")]
    assert parse_frame(lines).ooms == {}


def test_parse_frame_skips_bad_o_and_v_lines() -> None:
    frame = parse_frame(["T 5 1.0 v2", "O k1 x 3", "O k2 4 -", "V nope", "E"])
    assert frame.ooms == {"k2": (4, None)}
    assert frame.vmstat_oom_kill is None


def _kernel(t: float, pid: int = 4242, cid: str = CID) -> OomKill:
    return OomKill(
        time=t, pid=pid, process="gunicorn", constraint=OomConstraint.LIMIT,
        container_id=cid, source="dmesg",
    )  # fmt: skip


def test_first_reading_is_history_then_a_rise_is_one_record_per_kill() -> None:
    counters = OomCounters("v2", grace=3.0)
    counters.observe(100.0, {CID: (1, 12)}, 1)  # 1 kill before we looked: history
    assert counters.settle(200.0, [], INFOS, kernel_open=False) == []
    counters.observe(105.0, {CID: (3, 14)}, 3)  # two more, its own limit hit each time
    kills = counters.settle(105.0, [], INFOS, kernel_open=False)
    assert len(kills) == 2
    kill = kills[0]
    assert (kill.container_id, kill.container, kill.service) == (CID, "lab-backend-1", "backend")
    assert kill.constraint is OomConstraint.LIMIT and kill.source == "memory.events"
    assert (kill.pid, kill.process, kill.detail) == (0, "", "pid unknown: kernel log closed")
    assert counters.counts() == {CID: 3}
    # No new rise: nothing more.
    counters.observe(110.0, {CID: (3, 14)}, 3)
    assert counters.settle(120.0, [], INFOS, kernel_open=False) == []


def test_a_kill_without_its_own_limit_hit_is_the_host_running_out() -> None:
    counters = OomCounters("v2")
    counters.observe(100.0, {CID: (1, 12)}, 1)
    counters.observe(105.0, {CID: (2, 12)}, 2)
    [kill] = counters.settle(105.0, [], INFOS, kernel_open=False)
    assert kill.constraint is OomConstraint.GLOBAL


def test_the_kernel_line_wins_and_the_counter_fills_only_what_it_missed() -> None:
    counters = OomCounters("v2", grace=3.0)
    counters.observe(100.0, {CID: (1, 12)}, 1)
    counters.observe(105.0, {CID: (3, 14)}, 3)  # two kills counted ...
    # ... within the grace, nothing yet: the kernel log may still report them.
    assert counters.settle(106.0, [], INFOS, kernel_open=True) == []
    kernel = [_kernel(104.2)]  # the kernel log saw one of them
    [kill] = counters.settle(108.5, kernel, INFOS, kernel_open=True)
    assert kill.detail == "pid unknown: not in the kernel log within 3 s"
    # A replayed kernel line (history) never explains a new rise; a counter record neither.
    counters.observe(110.0, {CID: (4, 15)}, 4)
    history = [*kernel, dataclasses.replace(_kernel(111.0, pid=1), replayed=True), kill]
    assert len(counters.settle(113.0, history, INFOS, kernel_open=True)) == 1


def test_a_kernel_kill_seen_in_time_leaves_no_counter_record() -> None:
    counters = OomCounters("v1", grace=3.0)
    counters.observe(100.0, {CID: (0, 0)}, 230)
    counters.observe(105.0, {CID: (1, 0)}, 231)
    assert counters.settle(110.0, [_kernel(103.0)], INFOS, kernel_open=True) == []


def test_v1_under_oom_at_the_read_says_limit_else_unknown() -> None:
    counters = OomCounters("v1")
    counters.observe(100.0, {CID: (0, 0)}, 230)
    counters.observe(105.0, {CID: (1, 0)}, 231)
    counters.observe(110.0, {CID: (2, 1)}, 232)
    kills = counters.settle(110.0, [], INFOS, kernel_open=False)
    assert [k.constraint for k in kills] == [OomConstraint.UNKNOWN, OomConstraint.LIMIT]
    assert {k.source for k in kills} == {"memory.oom_control"}


def test_host_wide_remainder_is_a_host_record() -> None:
    counters = OomCounters("v2", grace=3.0)
    counters.observe(100.0, {CID: (1, 12)}, 5)
    # vmstat rose by 3, the container by 1: two kills outside any container.
    counters.observe(105.0, {CID: (2, 13)}, 8)
    kills = counters.settle(105.0, [], INFOS, kernel_open=False)
    host = [k for k in kills if not k.container_id]
    assert len(host) == 2 and len(kills) == 3
    assert host[0].constraint is OomConstraint.GLOBAL and host[0].source == "/proc/vmstat"
    assert "host-wide" in host[0].detail
    # The kernel log's own host kill explains one of the next two.
    counters.observe(110.0, {CID: (2, 13)}, 10)
    host_kernel = _kernel(109.0, pid=77, cid="")
    assert len(counters.settle(110.0, [host_kernel], INFOS, kernel_open=True)) == 0
    assert len(counters.settle(114.0, [host_kernel], INFOS, kernel_open=True)) == 1


def test_a_reset_or_vanished_counter_is_a_new_baseline() -> None:
    counters = OomCounters("v2")
    counters.observe(100.0, {CID: (5, 20)}, 10)
    counters.observe(105.0, {CID: (0, 0)}, 11)  # cgroup recreated: counter back to 0
    counters.observe(110.0, {}, 12)  # container gone: its kills went with it, host not judged
    assert counters.settle(120.0, [], INFOS, kernel_open=False) == []


def test_the_report_joins_a_counter_record_to_the_kernel_kill() -> None:
    kernel = {"kind": "oom_kill", "time": 100.0, "pid": 4242, "process": "gunicorn",
              "container_id": CID, "constraint": "limit", "source": "dmesg"}  # fmt: skip
    for source in ("memory.events", "memory.oom_control"):
        counted = {"kind": "oom_kill", "time": 102.0, "pid": 0, "process": "",
                   "container_id": CID, "constraint": "limit", "source": source}  # fmt: skip
        [kill] = deduplicate([kernel, counted], {})
        assert kill.pid == 4242 and kill.process == "gunicorn"
        assert kill.sources == ("kernel", "memory.events")
        # Alone, it is a kill of its own, with no pid.
        [alone] = deduplicate([counted], {})
        assert alone.pid == 0 and alone.sources == ("memory.events",)


def _v1_and_denied_or_skip() -> None:
    docker_or_skip()
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():
        pytest.skip("this test reads cgroup v1's memory.oom_control; the host is v2")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv missing")
    if Path("/proc/sys/kernel/dmesg_restrict").read_text().strip() != "1":
        pytest.skip("kernel.dmesg_restrict is 0 here: an unprivileged dmesg is not denied")


@pytest.mark.slow
async def test_a_real_kill_is_counted_when_the_kernel_log_is_denied() -> None:
    """cgroup v1, docker 20.10: dmesg denied, a worker really OOM-killed under --memory 48m."""
    _v1_and_denied_or_skip()
    kernel = KernelLogSource(retry_s=3600)
    unprivileged = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    kernel.dmesg_argv = (*unprivileged, *kernel.dmesg_argv)
    kernel.journal_probe_argv = (*unprivileged, *kernel.journal_probe_argv)
    kernel.journal_argv = (*unprivileged, *kernel.journal_argv)
    stats = StatsSource()
    monitor = HostMonitor(LocalHost(), sources=[DockerEventsSource(), stats, kernel])
    # PID 1 waits until the console has its baseline, then starts a worker that outgrows the
    # limit: the worker is killed, the container (and its counter) stays.
    worker = "b = []\nwhile True: b.append(bytearray(8 << 20)); b[-1][::4096] = b'x' * 2048\n"
    code = (
        "import subprocess, sys, time\n"
        "while not __import__('os').path.exists('/tmp/go'): time.sleep(0.2)\n"
        f"subprocess.run([sys.executable, '-c', {worker!r}])\n"
        "time.sleep(600)\n"
    )
    name = ""
    await monitor.start()
    try:
        cid, name = run_container(code, "--memory", "48m", "--memory-swap", "48m")
        state = monitor.state
        await wait_for(lambda: cid in stats.oom_counters.counts(), 30, "the counter's baseline")
        await wait_for(lambda: "oom_counters" in state.sources, 5, "the counters' status")
        assert state.sources["oom_counters"].method == "memory.oom_control"
        status = state.sources["kernel_log"]
        assert not status.ok and status.detail.startswith("dmesg denied")
        went = time.monotonic()
        go = ["docker", "exec", name, "/usr/bin/python3", "-c", "open('/tmp/go', 'w').close()"]
        await asyncio.to_thread(subprocess.run, go, check=True, timeout=60)

        def ours() -> list[OomKill]:
            return [k for k in state.oom_kills if k.container_id == cid]

        await wait_for(ours, 30, "a counted kill of our container")
        took = time.monotonic() - went
        kill = ours()[0]
        assert kill.source == "memory.oom_control"
        assert kill.container == name and kill.pid == 0 and kill.process == ""
        assert kill.detail == "pid unknown: kernel log closed"
        # The kernel counts the kill in the container's own cgroup: the two agree.
        path = Path(f"/sys/fs/cgroup/memory/docker/{cid}/memory.oom_control")
        oom_control = await asyncio.to_thread(path.read_text)
        counted = int(oom_control.split("oom_kill ")[1].split()[0])
        assert len(ours()) == counted >= 1
        assert stats.oom_counters.counts()[cid] == counted
        assert took < 15, f"counted {took:.1f} s after the worker started"
        latest = state.containers[cid].latest
        assert latest is not None and latest.oom_kill_count == counted
    finally:
        await monitor.stop()
        if name:
            remove(name)


def test_the_oom_feed_says_a_counted_kill_has_no_pid() -> None:
    from incident_console.monitor.state import HostState
    from incident_console.ui.widgets.panes import OomFeed

    state = HostState(name="lab-server")
    denied = "dmesg denied (kernel.dmesg_restrict=1); journalctl: No journal files: no kernel log"
    state.apply(SourceStatus(time=1.0, source="kernel_log", method="docker-events", ok=False,
                             detail=denied))  # fmt: skip
    counters = OomCounters("v2")
    counters.observe(2.0, {CID: (1, 12)}, 1)
    counters.observe(7.0, {CID: (2, 13)}, 2)
    state.apply(SourceStatus(time=2.0, source="oom_counters", method=counters.source,
                             detail="OOM counts from memory.events (1 containers) and /proc/vmstat"))  # fmt: skip
    for kill in counters.settle(7.0, [], INFOS, kernel_open=False):
        state.apply(kill)
    lines = [c.plain for c in OomFeed().lines(state, 10.0)]
    assert lines[1].startswith("OOM counts from memory.events")
    assert (
        "lab-backend-1 (backend) pid unknown: kernel log closed, memory.events (limit)" in lines[2]
    )


def test_diagnose_names_the_counters_and_the_kills_before_it_looked() -> None:
    from incident_console.domain.events import ContainerSample
    from incident_console.monitor.diagnosis import diagnose_state, diagnosis_json
    from incident_console.monitor.state import HostState

    state = HostState(name="lab-server")
    denied = "dmesg denied (kernel.dmesg_restrict=1); journalctl: no kernel messages: no kernel log"
    state.apply(SourceStatus(time=1.0, source="kernel_log", method="docker-events", ok=False,
                             detail=denied))  # fmt: skip
    state.apply(SourceStatus(time=1.0, source="oom_counters", method="memory.events",
                             detail="OOM counts from memory.events (1 containers) and /proc/vmstat"))  # fmt: skip
    state.apply(dataclasses.replace(INFOS[CID], name="icl-backend-1", state="running"))
    state.apply(ContainerSample(time=2.0, id=CID, memory_used_bytes=1 << 27,
                                memory_limit_bytes=1 << 28, cpu_percent=1.0, oom_kill_count=6))  # fmt: skip
    diagnosis = diagnose_state(state, now=3.0)
    summaries = [f.summary for f in diagnosis.findings]
    assert any(s.startswith("kernel log: dmesg denied") and "OOM counts from memory.events" in s
               for s in summaries)  # fmt: skip
    assert "icl-backend-1: 6 OOM kill(s) counted by its cgroup since it started" in "\n".join(
        summaries
    )
    [container] = diagnosis_json(diagnosis, state)["containers"]
    assert container["oom_kill_count"] == 6

"""Per-container cgroup folders found from the container's init pid (/proc/<pid>/cgroup).

The v1 lines were read on this machine (docker 20.10, cgroupfs, hybrid tree: a `0::` line
too), one container plain and one with `--cgroup-parent` (whose memory folder docker made
under dockerd's own memory cgroup, where no guess from the driver looks). The v2 lines are
those of Debian 13's docker 26 (systemd driver: `/system.slice/docker-<id>.scope`, the path
the lab server's kernel names in `oom_memcg=`) and of a cgroupfs-driver engine (`/docker/<id>`).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import uuid
from pathlib import Path

import pytest

from fixtures_sshd import SshdServer
from incident_console.domain.events import ContainerSample
from incident_console.domain.sampler import cgroup_dirs, cgroup_dirs_from_proc
from incident_console.sources.stats import StatsSource
from incident_console.transport.local import LocalHost
from incident_console.transport.targets import open_host
from sources_support import ALLOCATE, remove, run_container, wait_for
from test_sources_stats import watched

ID = "4ea960fa7d6f7657ef8bc8eebb6ca7afd89b1fc9f88d11248b1fb1097ffa23a7"

V1_PLAIN = f"""\
9:name=systemd:/docker/{ID}
8:pids:/docker/{ID}
7:blkio:/docker/{ID}
6:freezer:/docker/{ID}
5:devices:/docker/{ID}
4:memory:/docker/{ID}
3:cpuset:/docker/{ID}
2:cpuacct:/docker/{ID}
1:cpu:/docker/{ID}
0::/docker/{ID}
"""
V1_PARENT = f"""\
9:name=systemd:/isr-parent.slice/{ID}
8:pids:/isr-parent.slice/{ID}
7:blkio:/isr-parent.slice/{ID}
6:freezer:/isr-parent.slice/{ID}
5:devices:/isr-parent.slice/{ID}
4:memory:/process_api/2382b2a1cfe18e380857040425a27e5e/isr-parent.slice/{ID}
3:cpuset:/isr-parent.slice/{ID}
2:cpuacct:/isr-parent.slice/{ID}
1:cpu:/isr-parent.slice/{ID}
0::/isr-parent.slice/{ID}
"""
# Debian 11/Ubuntu 20.04 style: cpu and cpuacct mounted together, systemd driver.
V1_SYSTEMD = f"""\
12:memory:/system.slice/docker-{ID}.scope
4:cpu,cpuacct:/system.slice/docker-{ID}.scope
1:name=systemd:/system.slice/docker-{ID}.scope
0::/system.slice/docker-{ID}.scope
"""
V2_SYSTEMD = f"0::/system.slice/docker-{ID}.scope\n"
V2_CGROUPFS = f"0::/docker/{ID}\n"
V2_PARENT = f"0::/isr.slice/docker-{ID}.scope\n"


def test_v1_reads_the_memory_and_cpuacct_lines_not_the_hybrid_unified_one() -> None:
    assert cgroup_dirs_from_proc(V1_PLAIN, "1", ID) == (
        f"/sys/fs/cgroup/memory/docker/{ID}",
        f"/sys/fs/cgroup/cpuacct/docker/{ID}",
    )
    # The same folder the driver's guess names, when no cgroup_parent moved it.
    assert cgroup_dirs_from_proc(V1_PLAIN, "1", ID) == cgroup_dirs(ID, "1", "cgroupfs")
    assert cgroup_dirs_from_proc(V1_SYSTEMD, "1", ID) == cgroup_dirs(ID, "1", "systemd")


def test_a_cgroup_parent_is_where_the_pid_says_not_where_the_driver_guesses() -> None:
    found = cgroup_dirs_from_proc(V1_PARENT, "1", ID)
    assert found == (
        f"/sys/fs/cgroup/memory/process_api/2382b2a1cfe18e380857040425a27e5e/isr-parent.slice/{ID}",
        f"/sys/fs/cgroup/cpuacct/isr-parent.slice/{ID}",
    )
    assert found != cgroup_dirs(ID, "1", "cgroupfs")
    assert (
        cgroup_dirs_from_proc(V2_PARENT, "2", ID)
        == (f"/sys/fs/cgroup/isr.slice/docker-{ID}.scope",) * 2
    )


def test_v2_reads_the_unified_line() -> None:
    assert cgroup_dirs_from_proc(V2_SYSTEMD, "2", ID) == cgroup_dirs(ID, "2", "systemd")
    assert cgroup_dirs_from_proc(V2_CGROUPFS, "2", ID) == cgroup_dirs(ID, "2", "cgroupfs")
    # A v2 host read as v1 has no memory line: no folder rather than a wrong one.
    assert cgroup_dirs_from_proc(V2_SYSTEMD, "1", ID) is None


@pytest.mark.parametrize(
    "text",
    [
        "",  # unreadable, or the pid already gone
        "0::/\n",  # the root: not a container's folder
        "0::/system.slice/ssh.service\n",  # the pid was reused by another process
        f"0::/../docker/{ID}\n",  # read from inside another cgroup namespace
        f"0::/docker/{ID} (deleted)\n",
        "garbage without colons\n",
    ],
)
def test_what_is_not_the_container_gives_no_folder(text: str) -> None:
    assert cgroup_dirs_from_proc(text, "2", ID) is None


def _rmdir_parent(parent: str) -> None:
    """The empty cgroup folders docker made for our parent (cgroupfs leaves them behind)."""
    for path in glob.glob(f"/sys/fs/cgroup/*/{parent}") + glob.glob(
        f"/sys/fs/cgroup/*/*/*/{parent}"
    ):
        if os.path.basename(path) == parent:
            with contextlib.suppress(OSError):
                os.rmdir(path)


@pytest.mark.docker
@pytest.mark.parametrize("over", ["local", "ssh"])
async def test_a_container_with_a_cgroup_parent_is_sampled_from_its_real_folder(
    over: str, request: pytest.FixtureRequest
) -> None:
    """The real engine: a container under --cgroup-parent, sampled where its pid's cgroup is
    (over SSH the /proc/<pid>/cgroup read goes through the transport's file read)."""
    host = LocalHost()
    if over == "ssh":
        sshd: SshdServer = request.getfixturevalue("sshd")
        host = open_host(sshd.target, **sshd.host_options())  # type: ignore[arg-type,assignment]
    parent = f"isr-parent-{uuid.uuid4().hex[:8]}"
    name = ""
    try:
        cid, name = run_container(ALLOCATE.format(mib=40), "--cgroup-parent", parent)
        stats = StatsSource()
        async with watched(stats, host) as w:

            def samples() -> list[ContainerSample]:
                return [s for s in w.samples(cid) if s.memory_used_bytes > 40 * 1024**2]

            await wait_for(samples, 30, f"samples of {name} with its 40 MiB")
            pid = w.state.containers[cid].info.pid
            mem, cpu = stats.cgroups.found[(cid, pid)]
            text = await asyncio.to_thread(Path(f"/proc/{pid}/cgroup").read_text)
            assert (mem, cpu) == cgroup_dirs_from_proc(text, stats.version, cid)
            assert parent in mem and mem.endswith(cid)
            assert await asyncio.to_thread(Path(mem).is_dir)
            assert (mem, cpu) != cgroup_dirs(cid, stats.version, stats.driver)
            # The memory the sampler read is the folder's own counter (less its inactive cache).
            usage_file = "memory.usage_in_bytes" if stats.version == "1" else "memory.current"
            usage = int(await asyncio.to_thread(Path(mem, usage_file).read_text))
            assert samples()[-1].memory_used_bytes <= usage * 1.1
    finally:
        if name:
            remove(name)
        await asyncio.to_thread(_rmdir_parent, parent)

"""The kernel's word on OOM kills in the lab, read from `dmesg` (the ground truth).

Docker's State.OOMKilled misses a worker killed inside a living container; the kernel log
names the memory cgroup, hence the container, of every task it killed.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

# The container's cgroup is the last part of task_memcg: /docker/<id>, docker-<id>.scope, or
# /<cgroup parent>/<id> for the lab's --host-memory containers.
_TASK_MEMCG = re.compile(r"task_memcg=\S*?(?:/|docker-)([0-9a-f]{64})(?:\.scope)?(?:[,\s]|$)")
_KILLED = re.compile(r"Killed process (\d+) \(([^)]*)\)")


class KernelLogUnavailable(Exception):
    """`dmesg` cannot be read here (not root, dmesg_restrict); the message says why."""


@dataclass(frozen=True, slots=True)
class KernelOomKill:
    """One OOM kill as the kernel logged it.

    Attributes:
        container_id: the container whose memory cgroup held the task.
        pid: the host pid killed (0 if the 'Killed process' line was not found).
        task: the killed task's command name (e.g. 'gunicorn').
        lines: the kernel lines, from '... invoked oom-killer' to 'Killed process', as printed.
        service: the container's compose service, when the caller knew it ('' otherwise).
    """

    container_id: str
    pid: int
    task: str
    lines: tuple[str, ...]
    service: str = ""

    @property
    def summary(self) -> tuple[str, ...]:
        """The two lines that matter: 'oom-kill:...' and '... Killed process ...'."""
        return tuple(ln for ln in self.lines if "oom-kill:" in ln or "Killed process" in ln)


def read_kernel_log() -> list[str]:
    """All lines of the kernel ring buffer (`dmesg`).

    Raises:
        KernelLogUnavailable: dmesg failed (one line why).
    """
    try:
        done = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=20, check=False)
    except OSError as exc:
        raise KernelLogUnavailable(f"dmesg cannot run: {exc.strerror or exc}") from None
    if done.returncode != 0:
        err = done.stderr.strip().splitlines()
        raise KernelLogUnavailable(f"dmesg failed: {err[-1] if err else done.returncode}")
    return done.stdout.splitlines()


def oom_kills(
    container_id: str | Mapping[str, str], lines: list[str] | None = None
) -> list[KernelOomKill]:
    """The kernel OOM kills of tasks in container `container_id`, oldest first.

    Args:
        container_id: full 64-hex container id, or {id: service} for several containers.
        lines: kernel log lines; default: read `dmesg` now.
    """
    lines = read_kernel_log() if lines is None else lines
    wanted = {container_id: ""} if isinstance(container_id, str) else dict(container_id)
    kills: list[KernelOomKill] = []
    for i, line in enumerate(lines):
        m = _TASK_MEMCG.search(line)
        if "oom-kill:" not in line or not m or m.group(1) not in wanted:
            continue
        start = i
        # The block starts at the 'invoked oom-killer' line a few dozen lines above.
        for j in range(i, max(-1, i - 200), -1):
            if "invoked oom-killer" in lines[j]:
                start = j
                break
        end, pid, task = i, 0, ""
        for j in range(i + 1, min(len(lines), i + 10)):
            k = _KILLED.search(lines[j])
            if k:
                end, pid, task = j, int(k.group(1)), k.group(2)
                break
        cid = m.group(1)
        kills.append(KernelOomKill(cid, pid, task, tuple(lines[start : end + 1]), wanted[cid]))
    return kills

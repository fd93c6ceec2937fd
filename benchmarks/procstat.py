"""CPU time and memory of processes, read from /proc (Linux only)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of `pid` (itself, not its children), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def pids_named(pattern: str) -> list[int]:
    """pids whose comm matches `pattern` (a regular expression, anchored at the start)."""
    rx = re.compile(pattern)
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and rx.match(comm(int(e)))]


def engine_pids() -> list[int]:
    """dockerd, containerd and every containerd-shim: what serves docker's API and stats."""
    return pids_named(r"^(dockerd|containerd|containerd-shim.*)$")


class CpuMeter:
    """Accumulates CPU seconds of a changing set of processes over a window.

    `poll()` re-reads every tracked pid and adds newly found ones (with the CPU they used
    before being found counted from 0 only if they started inside the window: we credit
    a new pid its whole CPU time, which is what it cost since it started).
    """

    def __init__(self, find: callable, *, count_new_from_zero: bool = True) -> None:  # type: ignore[valid-type]
        self._find = find
        self._count_new_from_zero = count_new_from_zero
        self.start: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self._begun = False

    def poll(self) -> None:
        for pid in self._find():
            cpu = cpu_seconds(pid)
            if cpu is None:
                continue
            if pid not in self.start:
                self.start[pid] = 0.0 if (self._begun and self._count_new_from_zero) else cpu
                self.names[pid] = comm(pid)
            self.last[pid] = cpu
        self._begun = True

    def total(self) -> float:
        return sum(self.last[p] - self.start[p] for p in self.last)

    def by_name(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid in self.last:
            name = self.names.get(pid, "?")
            out[name] = out.get(name, 0.0) + self.last[pid] - self.start[pid]
        return out


def ns_last_pid(leader: int) -> int:
    """The last pid handed out in the pid namespace whose init is `leader`'s only child.

    Reading it starts one process (the `cat`) in that namespace: callers subtract it.
    """
    with open(f"/proc/{leader}/task/{leader}/children") as f:
        init = f.read().split()[0]
    out = subprocess.run(
        ["nsenter", "-t", init, "--pid", "--", "cat", "/proc/sys/kernel/ns_last_pid"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return int(out)


def union(*groups: Iterable[int]) -> list[int]:
    seen: set[int] = set()
    for group in groups:
        seen.update(group)
    return sorted(seen)

"""The stats sampler's frames, parsed; the cgroup/meminfo/PSI math that turns them into events.

The sampler (``sources/sampler.awk`` or ``sampler.sh``) prints, per tick, lines between a
``T`` header and an ``E`` end marker (the protocol is described in sampler.awk). This module is
pure: :func:`parse_frame` never raises, whatever text it is given; :class:`FrameInterpreter`
keeps the previous CPU counters to turn them into percentages, as ``docker stats`` does.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from incident_console.domain.events import (
    ContainerProcesses,
    ContainerSample,
    Event,
    HostMemory,
    ProcessRss,
)
from incident_console.domain.memory import limit_or_zero, parse_limit


@dataclass(frozen=True, slots=True)
class RawContainer:
    """One ``C`` line: the counters as read, None where the file did not read."""

    usage: int
    inactive_file: int | None
    limit: int | None  # None: no limit ("max" on v2, ~2^63 on v1)
    cpu: int | None  # ns on v1 (cpuacct.usage), µs on v2 (cpu.stat usage_usec)
    swap_raw: int | None  # v1: memsw usage (memory + swap); v2: memory.swap.current


@dataclass(slots=True)
class Frame:
    """One parsed sampler frame."""

    tick: int = 0
    uptime: float | None = None
    mode: str = "v1"
    meminfo_kb: tuple[int, int, int, int] | None = None  # total, available, swap total, free
    psi: tuple[float | None, float | None] | None = None  # some avg10, full avg10
    containers: dict[str, RawContainer] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    processes: dict[str, list[ProcessRss]] | None = None  # None: not a process tick
    #: ``O`` lines: key -> (oom_kill, oom) as read; oom is v2's limit-hit counter or v1's
    #: under_oom (0/1), None where absent. Empty on ticks that do not read them.
    ooms: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    vmstat_oom_kill: int | None = None  # ``V``: /proc/vmstat oom_kill, the host's total
    #: ``Q`` lines (v2): key -> (memory.peak bytes, memory.pressure some avg10 %), None where
    #: the file is absent. Empty on ticks that do not read them, and on v1.
    v2facts: dict[str, tuple[int | None, float | None]] = field(default_factory=dict)


def _int(text: str) -> int | None:
    if not text.isdigit() or len(text) > 30:
        return None
    return int(text)


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def parse_frame(lines: Iterable[str]) -> Frame:
    """Parse the lines of one frame (with or without its T/E markers). Never raises.

    Lines that do not parse are skipped: a half-written frame gives what it holds.
    """
    frame = Frame()
    for line in lines:
        parts = line.split(" ", 5) if line.startswith("P ") else line.split()
        if not parts:
            continue
        tag = parts[0]
        if tag == "T" and len(parts) >= 4:
            frame.tick = _int(parts[1]) or 0
            frame.uptime = _float(parts[2])
            frame.mode = "v2" if parts[3] == "v2" else "v1"
        elif tag == "M" and len(parts) >= 5:
            values = [_int(p) for p in parts[1:5]]
            if values[0] is not None and values[1] is not None:
                frame.meminfo_kb = (values[0], values[1], values[2] or 0, values[3] or 0)
        elif tag == "S" and len(parts) >= 3:
            frame.psi = (_float(parts[1]), _float(parts[2]))
        elif tag == "C" and len(parts) >= 7:
            usage = _int(parts[2])
            if usage is None:
                frame.missing.add(parts[1])
                continue
            # "max" (v2) and the page-rounded ~2^63 (v1) are no limit: domain/memory.py.
            limit = parse_limit(parts[4])
            frame.containers[parts[1]] = RawContainer(
                usage=usage,
                inactive_file=_int(parts[3]),
                limit=limit,
                cpu=_int(parts[5]),
                swap_raw=_int(parts[6]),
            )
        elif tag == "O" and len(parts) >= 4:
            kills = _int(parts[2])
            if kills is not None:
                frame.ooms[parts[1]] = (kills, _int(parts[3]))
        elif tag == "Q" and len(parts) >= 4:
            frame.v2facts[parts[1]] = (_int(parts[2]), _float(parts[3]))
        elif tag == "V" and len(parts) >= 2:
            frame.vmstat_oom_kill = _int(parts[1])
        elif tag == "N" and len(parts) >= 4:
            pid, ns_pid = _int(parts[2]), _int(parts[3])
            anon_kb = _int(parts[4]) if len(parts) > 4 else None
            if pid is not None and ns_pid is not None and frame.processes:
                procs = frame.processes.get(parts[1], [])
                for i, proc in enumerate(procs):
                    if proc.pid == pid:
                        procs[i] = dataclasses.replace(
                            proc,
                            ns_pid=ns_pid if ns_pid != pid else 0,
                            anon_bytes=anon_kb * 1024 if anon_kb is not None else 0,
                        )
        elif tag == "X" and len(parts) >= 2:
            frame.missing.add(parts[1])
        elif tag == "P" and len(parts) >= 4:
            pid, rss_kb = _int(parts[2]), _int(parts[3])
            if pid is None or rss_kb is None:
                continue
            name = parts[4].strip() if len(parts) > 4 else ""
            if frame.processes is None:
                frame.processes = {}
            frame.processes.setdefault(parts[1], []).append(
                ProcessRss(pid=pid, name=name, rss_bytes=rss_kb * 1024)
            )
    return frame


def memory_used(usage: int, inactive_file: int | None) -> int:
    """Memory used as ``docker stats`` shows it: usage less the inactive page cache."""
    if inactive_file is not None and inactive_file < usage:
        return usage - inactive_file
    return usage


class FrameInterpreter:
    """Turns frames into events, remembering each container's last CPU counter.

    `keys` maps the short keys the sampler was given to full container ids.
    """

    def __init__(self) -> None:
        self._cpu: dict[str, tuple[float, int]] = {}  # id -> (uptime, counter in ns)

    def events(self, frame: Frame, now: float, keys: Mapping[str, str]) -> list[Event]:
        """The HostMemory, ContainerSample and ContainerProcesses events of one frame."""
        out: list[Event] = []
        if frame.meminfo_kb is not None:
            total, available, swap_total, swap_free = frame.meminfo_kb
            some, full = frame.psi if frame.psi is not None else (None, None)
            out.append(
                HostMemory(
                    time=now,
                    total_bytes=total * 1024,
                    available_bytes=available * 1024,
                    swap_total_bytes=swap_total * 1024,
                    swap_free_bytes=swap_free * 1024,
                    psi_some_avg10=some,
                    psi_full_avg10=full,
                )
            )
        for key, raw in frame.containers.items():
            cid = keys.get(key)
            if cid is None:
                continue
            out.append(
                ContainerSample(
                    time=now,
                    id=cid,
                    memory_used_bytes=memory_used(raw.usage, raw.inactive_file),
                    memory_limit_bytes=raw.limit or 0,
                    cpu_percent=self._cpu_percent(cid, frame, raw),
                    swap_used_bytes=_swap(frame.mode, raw),
                )
            )
        if frame.processes is not None:
            for key, procs in frame.processes.items():
                cid = keys.get(key)
                if cid is not None:
                    out.append(ContainerProcesses(time=now, id=cid, processes=tuple(procs)))
        return out

    def _cpu_percent(self, cid: str, frame: Frame, raw: RawContainer) -> float:
        if raw.cpu is None or frame.uptime is None:
            return 0.0
        counter_ns = raw.cpu * 1000 if frame.mode == "v2" else raw.cpu
        previous = self._cpu.get(cid)
        self._cpu[cid] = (frame.uptime, counter_ns)
        if previous is None:
            return 0.0
        return cpu_percent(previous[1], counter_ns, frame.uptime - previous[0])

    def forget(self, ids: Iterable[str]) -> None:
        """Drop the counters of containers that are gone (a restarted one starts again)."""
        for cid in ids:
            self._cpu.pop(cid, None)


def cpu_percent(previous_ns: int, current_ns: int, wall_s: float) -> float:
    """CPU use over an interval, 100.0 = one core busy (``docker stats``' convention)."""
    if wall_s <= 0 or current_ns < previous_ns:
        return 0.0
    return round((current_ns - previous_ns) / (wall_s * 1e9) * 100.0, 2)


def _swap(mode: str, raw: RawContainer) -> int | None:
    if raw.swap_raw is None:
        return None
    if mode == "v2":
        return raw.swap_raw
    # v1's memsw counts memory + swap.
    return max(0, raw.swap_raw - raw.usage)


def cgroup_dirs(
    container_id: str,
    version: str,
    driver: str,
    root: str = "/sys/fs/cgroup",
    parent: str = "",
) -> tuple[str, str]:
    """The (memory folder, cpu folder) of a container for a cgroup version and driver.

    Args:
        container_id: the full 64-hex id.
        version: "1" or "2" (docker info CgroupVersion).
        driver: "cgroupfs" or "systemd" (docker info CgroupDriver).
        root: where the cgroup filesystem is mounted.
        parent: the container's HostConfig.CgroupParent ('' = docker's default), as the
            cgroupfs driver places it (`lab up --host-memory` starts containers under one).
    """
    tail = parent.strip("/")
    if tail and driver != "systemd" and ".." not in tail.split("/"):
        if version == "2":
            return f"{root}/{tail}/{container_id}", f"{root}/{tail}/{container_id}"
        return f"{root}/memory/{tail}/{container_id}", f"{root}/cpuacct/{tail}/{container_id}"
    if version == "2":
        if driver == "systemd":
            folder = f"{root}/system.slice/docker-{container_id}.scope"
        else:
            folder = f"{root}/docker/{container_id}"
        return folder, folder
    leaf = (
        f"system.slice/docker-{container_id}.scope"
        if driver == "systemd"
        else (f"docker/{container_id}")
    )
    return f"{root}/memory/{leaf}", f"{root}/cpuacct/{leaf}"


def cgroup_dirs_from_proc(
    text: str, version: str, container_id: str = "", root: str = "/sys/fs/cgroup"
) -> tuple[str, str] | None:
    """The (memory folder, cpu folder) of a process from its ``/proc/<pid>/cgroup``.

    Where the container really is, whatever its ``cgroup_parent`` or the driver: v2 reads the
    unified ``0::`` line; v1 the memory controller's line and the cpuacct one (a v1 host has a
    ``0::`` line too, for systemd's hybrid tree: the version decides, not the line).

    Args:
        text: the file's text.
        version: "1" or "2" (the host's cgroup version).
        container_id: when given, the path must name it: a pid the container no longer has
            (reused by another process) gives None, not another process's folder.
        root: where the cgroup filesystem is mounted.

    Returns:
        The folders, or None where the text does not say (the caller guesses from the driver).
    """
    paths: dict[str, str] = {}
    for line in text.splitlines():
        number, sep, rest = line.partition(":")
        controllers, sep2, path = rest.partition(":")
        if not sep or not sep2 or not number.isdigit():
            continue
        if version == "2":
            if number == "0" and controllers == "":
                paths["unified"] = path
        else:
            for name in controllers.split(","):
                if name in ("memory", "cpuacct"):
                    paths[name] = path
    if version == "2":
        found = [paths.get("unified", "")]
    else:
        # No cpuacct line (a kernel without it): the CPU counter is then simply not read.
        found = [paths.get("memory", ""), paths.get("cpuacct") or paths.get("memory", "")]
    for path in found:
        if (
            not path.startswith("/")
            or path == "/"
            or ".." in path.split("/")
            or any(c.isspace() for c in path)
            or (container_id and container_id not in path)
        ):
            return None
    if version == "2":
        return f"{root}{found[0]}", f"{root}{found[0]}"
    return f"{root}/memory{found[0]}", f"{root}/cpuacct{found[1]}"


def set_line(dirs: Mapping[str, tuple[str, str]]) -> str:
    """The ``set`` command for the sampler: key, memory folder, cpu folder per container.

    Keys and folders never hold spaces (hex ids, fixed cgroup paths); any that would are left
    out rather than corrupt the list.
    """
    parts = ["set"]
    for key, (mem, cpu) in dirs.items():
        if any(not p or any(c.isspace() for c in p) for p in (key, mem, cpu)):
            continue
        parts += [key, mem, cpu]
    return " ".join(parts) + "\n"


def sample_from_docker_stats(
    container_id: str,
    stats: Mapping[str, Any],
    now: float,
    previous: tuple[float, int] | None,
) -> tuple[ContainerSample | None, tuple[float, int] | None]:
    """A ContainerSample from the API's one-shot stats, and the CPU counter to keep.

    One-shot stats carry no precpu; the CPU% comes from the previous call's counter
    (`previous`: (wall time, total_usage ns)). Never raises on odd documents.
    """
    try:
        mem = stats.get("memory_stats") or {}
        usage = int(mem.get("usage") or 0)
        inner = mem.get("stats") or {}
        inactive = inner.get("total_inactive_file", inner.get("inactive_file"))
        inactive = int(inactive) if inactive is not None else None
        limit = int(mem.get("limit") or 0)
        cpu_total = int(
            ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage") or 0
        )
    except (TypeError, ValueError, AttributeError):
        return None, previous
    if not mem:
        return None, previous
    percent = 0.0
    if previous is not None and cpu_total:
        percent = cpu_percent(previous[1], cpu_total, now - previous[0])
    sample = ContainerSample(
        time=now,
        id=container_id,
        memory_used_bytes=memory_used(usage, inactive),
        memory_limit_bytes=limit_or_zero(limit),
        cpu_percent=percent,
    )
    return sample, ((now, cpu_total) if cpu_total else previous)


def split_frames(buffer: Sequence[str]) -> tuple[list[list[str]], list[str]]:
    """Split lines into complete frames (T..E) and the unfinished rest."""
    frames: list[list[str]] = []
    current: list[str] = []
    for line in buffer:
        if line.startswith("T "):
            current = [line]
        elif line == "E":
            if current:
                frames.append(current)
            current = []
        elif current:
            current.append(line)
    return frames, current

"""Container and host memory/CPU, once a second, from ONE long-lived sampler per host.

The sampler (sampler.awk, or sampler.sh where there is no awk) reads the containers' cgroup
files and /proc/meminfo with no process per tick; we pace it with a "tick" line on its stdin and
tell it the containers' cgroup folders with a "set" line whenever the running set changes.
Where the cgroup files cannot be read, the docker API's one-shot stats stand in (method
"docker-api"), per container or for all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

from incident_console.domain.events import (
    ContainerSample,
    Event,
    HostMemory,
    OomConstraint,
    OomKill,
    SourceStatus,
)
from incident_console.domain.oom_counters import OomCounters
from incident_console.domain.sampler import (
    FrameInterpreter,
    cgroup_dirs,
    parse_frame,
    sample_from_docker_stats,
    set_line,
)
from incident_console.sources.base import Backoff, Emit, Source, one_line
from incident_console.sources.cgroup_folders import CgroupFolders
from incident_console.sources.inventory import ContainerDirectory, ContainerRef
from incident_console.transport.base import Host, Process, TransportError

if TYPE_CHECKING:
    from incident_console.monitor.state import HostState

#: One run at start: the cgroup version and which awk this is (mawk needs -W interactive).
DETECT_SCRIPT = """\
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo "cgroup 2"; else echo "cgroup 1"; fi
if command -v awk >/dev/null 2>&1; then echo "awk $(awk -W version 2>&1 </dev/null | head -n 1)"; fi
"""

#: While no container is known yet, how often to look whether the inventory arrived.
STARTUP_POLL_S = 0.05
#: A sampler that does not answer a tick within this long is taken for dead.
FRAME_TIMEOUT_S = 5.0


def sampler_program(name: str) -> str:
    """The text of sampler.awk or sampler.sh, shipped in this package."""
    return resources.files("incident_console.sources").joinpath(name).read_text()


def sampler_argv(method: str, mode: str, mawk: bool) -> list[str]:
    """The argv that starts the sampler: the program is one argv element, never shell text."""
    if method == "awk-sampler":
        interactive = ["-W", "interactive"] if mawk else []
        return ["awk", *interactive, "-v", f"mode={mode}", sampler_program("sampler.awk")]
    return ["sh", "-c", sampler_program("sampler.sh"), "sampler", mode]


class SamplerStalled(Exception):
    """The sampler ended or stopped answering ticks."""


class StatsSource(Source):
    """Samples every running container and the host each `interval` seconds."""

    name = "stats"

    def __init__(self, interval: float = 1.0, methods: tuple[str, ...] | None = None) -> None:
        """Args:
        interval: seconds between frames.
        methods: the methods to try, in order (default: awk-sampler, sh-sampler, docker-api).
        """
        self.interval = interval
        self.methods = methods or ("awk-sampler", "sh-sampler", "docker-api")
        self.version = "1"
        self.driver = "cgroupfs"
        self.mawk = False
        self.has_awk = True
        self._interp = FrameInterpreter()
        self._api_cpu: dict[str, tuple[float, int]] = {}
        #: The container ids the running sampler was last told about (for tests and the UI).
        self.sampled_ids: frozenset[str] = frozenset()
        #: The running sampler and how many were started (a restart shows in the count).
        self.process: Process | None = None
        self.starts = 0
        #: The OOM kill counters of the running sampler (memory.events / oom_control, vmstat).
        self.oom_counters = OomCounters("v2" if self.version == "2" else "v1")
        #: Each container's folders, from its init pid's /proc/<pid>/cgroup.
        self.cgroups = CgroupFolders()
        #: Full id -> (memory.peak, memory.pressure some avg10) as last read (v2 only).
        self.v2facts: dict[str, tuple[int | None, float | None]] = {}

    async def run(self, host: Host, state: HostState, emit: Emit) -> None:
        """Detect the layout, then keep a sampler running (restarting it when it dies)."""
        await self._detect(host)
        failures = 0
        method_index = 0
        backoff = Backoff(first=1.0, most=10.0)
        while True:
            method = self.methods[min(method_index, len(self.methods) - 1)]
            if method == "awk-sampler" and not self.has_awk:
                method_index += 1
                continue
            if method == "docker-api":
                await self._run_api(host, state, emit, "no sampler could run on the host")
                return
            started = time.monotonic()
            try:
                await self._run_sampler(host, state, emit, method)
            except (SamplerStalled, TransportError, OSError) as exc:
                answered = time.monotonic() - started > 2 * FRAME_TIMEOUT_S
                failures = 0 if answered else failures + 1
                if answered:
                    backoff.reset()  # it ran a while: a new trouble, not the same one again
                emit(
                    SourceStatus(
                        time=time.time(),
                        source=self.name,
                        method=method,
                        ok=False,
                        detail=f"{method} stopped ({one_line(exc)}); restarting",
                    )
                )
                if failures >= 2:
                    method_index += 1
                    failures = 0
                await asyncio.sleep(backoff.next())

    async def _detect(self, host: Host) -> None:
        with contextlib.suppress(TransportError, OSError):
            result = await host.run(["sh", "-c", DETECT_SCRIPT], timeout=10.0)
            self.has_awk = "awk " in result.stdout
            self.mawk = "mawk" in result.stdout
            if "cgroup 2" in result.stdout:
                self.version = "2"
        try:
            client = await host.docker()
            info: dict[str, Any] = await asyncio.to_thread(client.info)
            self.version = str(info.get("CgroupVersion") or self.version)
            self.driver = str(info.get("CgroupDriver") or self.driver)
        except Exception:  # noqa: BLE001 - no docker: the sampler still gives host memory
            pass

    def _running(self, refs: Mapping[str, ContainerRef]) -> dict[str, tuple[str, str]]:
        """key -> (memory folder, cpu folder) for the containers to sample."""
        dirs: dict[str, tuple[str, str]] = {}
        for cid, ref in refs.items():
            if ref.gone or ref.state not in ("running", "restarting", ""):
                continue
            found = self.cgroups.found.get((cid, ref.pid))
            guess = cgroup_dirs(cid, self.version, self.driver, parent=ref.cgroup_parent)
            dirs[cid[:12]] = found or guess
        return dirs

    async def _run_sampler(self, host: Host, state: HostState, emit: Emit, method: str) -> None:
        mode = "v2" if self.version == "2" else "v1"
        proc = await host.start(sampler_argv(method, mode, self.mawk))
        self.process = proc
        self.starts += 1
        announced = False
        # A restarted sampler starts new baselines: its first reading is history again.
        self.oom_counters = OomCounters(mode)
        counted = False
        containers = ContainerDirectory(state)
        try:
            dirs: dict[str, tuple[str, str]] | None = None
            keys: dict[str, str] = {}
            next_at = time.monotonic()
            while True:
                await self.cgroups.find(host, containers.refs(), self.version)
                current = self._running(containers.refs())
                if current != dirs:
                    dirs = current
                    keys = {cid[:12]: cid for cid in containers.refs() if cid[:12] in dirs}
                    self._interp.forget(set(self.sampled_ids) - set(keys.values()))
                    for cid in set(self.v2facts) - set(keys.values()):
                        del self.v2facts[cid]
                    self.sampled_ids = frozenset(keys.values())
                    await proc.write(set_line(dirs))
                await proc.write("tick\n")
                lines = await _read_frame(proc)
                now = time.time()
                frame = parse_frame(lines)
                events = self._interp.events(frame, now, keys)
                missing = [keys[k] for k in frame.missing if k in keys]
                if frame.ooms or frame.vmstat_oom_kill is not None:
                    ooms = {keys[k]: v for k, v in frame.ooms.items() if k in keys}
                    self.oom_counters.observe(now, ooms, frame.vmstat_oom_kill)
                    if not counted and ooms:
                        counted = True
                        emit(_counter_status(self.oom_counters, len(ooms), now))
                for key, facts in frame.v2facts.items():
                    if key in keys:
                        self.v2facts[keys[key]] = facts
                events = _with_counts(events, self.oom_counters.counts(), self.v2facts)
                events += _counter_kills(self.oom_counters, state, containers, now)
                if missing:
                    events += await self._api_samples(host, missing, now)
                if not announced:
                    announced = True
                    detail = (
                        f"{method} ({'mawk' if self.mawk else 'awk'} "
                        if method == ("awk-sampler")
                        else f"{method} ("
                    )
                    detail += f"cgroup v{self.version}, {self.driver}, one process)"
                    found = {cid for cid, _ in self.cgroups.found}
                    guessed = sum(1 for cid in keys.values() if cid not in found)
                    if guessed:
                        detail += f"; {guessed} cgroup folders guessed (no /proc/<pid>/cgroup)"
                    if missing:
                        detail += f"; docker-api for {len(missing)} without readable cgroup"
                    emit(SourceStatus(time=now, source=self.name, method=method, detail=detail))
                for event in events:
                    emit(event)
                next_at = max(next_at + self.interval, time.monotonic())
                if dirs:
                    await asyncio.sleep(next_at - time.monotonic())
                elif await _containers_appear(self, containers, next_at):
                    next_at = time.monotonic()
        finally:
            with contextlib.suppress(Exception):
                await proc.close()

    async def _api_samples(self, host: Host, ids: list[str], now: float) -> list[Event]:
        try:
            client = await host.docker()
        except TransportError:
            return []

        def fetch() -> list[Event]:
            out: list[Event] = []
            for cid in ids:
                try:
                    stats = client.api.stats(cid, stream=False, one_shot=True)
                except Exception:  # noqa: BLE001 - a container vanished mid-call: skip it
                    continue
                sample, counter = sample_from_docker_stats(
                    cid, stats, time.time(), self._api_cpu.get(cid)
                )
                if counter is not None:
                    self._api_cpu[cid] = counter
                if sample is not None:
                    out.append(sample)
            return out

        return await asyncio.to_thread(fetch)

    async def _run_api(self, host: Host, state: HostState, emit: Emit, why: str) -> None:
        """The last resort: the docker API's one-shot stats, one call per container."""
        emit(
            SourceStatus(
                time=time.time(),
                source=self.name,
                method="docker-api",
                ok=True,
                detail=f"docker-api one-shot stats ({why})",
            )
        )
        next_at = time.monotonic()
        containers = ContainerDirectory(state)
        while True:
            now = time.time()
            ids = [cid for cid, ref in containers.refs().items() if ref.state == "running"]
            self.sampled_ids = frozenset(ids)
            for event in await self._api_samples(host, ids, now):
                emit(event)
            if host.is_local:
                with contextlib.suppress(OSError):
                    emit(_meminfo_event(await host.read_text("/proc/meminfo"), now))
            next_at = max(next_at + self.interval, time.monotonic())
            await asyncio.sleep(next_at - time.monotonic())


def _counter_status(counters: OomCounters, containers: int, now: float) -> SourceStatus:
    """Says the OOM kill counters are read (diagnose and the header name them)."""
    return SourceStatus(
        time=now,
        source="oom_counters",
        method=counters.source,
        detail=f"OOM counts from {counters.source} ({containers} containers) and /proc/vmstat",
    )


def _with_counts(
    events: list[Event],
    counts: dict[str, int],
    v2facts: dict[str, tuple[int | None, float | None]],
) -> list[Event]:
    """The samples carrying their container's last-read kill counter, and on v2 its peak and
    pressure (read every 5th tick, carried on every sample in between)."""
    if not counts and not v2facts:
        return events
    out: list[Event] = []
    for e in events:
        if isinstance(e, ContainerSample) and (e.id in counts or e.id in v2facts):
            peak, some = v2facts.get(e.id, (None, None))
            e = dataclasses.replace(
                e,
                oom_kill_count=counts.get(e.id, e.oom_kill_count),
                memory_peak_bytes=peak,
                memory_pressure_some=some,
            )
        out.append(e)
    return out


def _counter_kills(
    counters: OomCounters, state: HostState, containers: ContainerDirectory, now: float
) -> list[Event]:
    """The counted kills the kernel log did not report, named from the inventory."""
    kernel = state.sources.get("kernel_log")
    kernel_open = kernel is None or kernel.ok
    refs = containers.refs()
    kills = counters.settle(now, list(state.oom_kills), refs, kernel_open=kernel_open)
    out: list[Event] = []
    for kill in kills:
        if kill.constraint is OomConstraint.UNKNOWN and _docker_oom_near(state, kill):
            # v1: docker's oom event is the cgroup's own limit notification.
            kill = dataclasses.replace(kill, constraint=OomConstraint.LIMIT)
        out.append(kill)
    return out


def _docker_oom_near(state: HostState, kill: OomKill) -> bool:
    return any(
        e.action == "oom" and e.id == kill.container_id and kill.time - 10.0 <= e.time <= kill.time
        for e in list(state.events)
    )


async def _containers_appear(
    source: StatsSource, containers: ContainerDirectory, until: float
) -> bool:
    """Wait until `until`, or less if running containers appear (True then).

    At start the sampler's first frames run before the inventory lands; without this the first
    container sample waited up to a whole interval after the containers were known (measured
    over SSH with 54 containers: inventory at 1.2 s, first sample at 2.2 s). Checked only while
    the sampler knows no container, and only when the state moved.
    """
    seen = containers.version
    while (left := until - time.monotonic()) > 0:
        await asyncio.sleep(min(left, STARTUP_POLL_S))
        if containers.version != seen:
            seen = containers.version
            if source._running(containers.refs()):
                return True
    return False


async def _read_frame(proc: Process) -> list[str]:
    """The lines of the next frame (T..E); SamplerStalled if it ends or goes quiet.

    One `asyncio.timeout` over the whole frame, not `wait_for` per line: on Python 3.11
    `wait_for` can swallow a cancellation that arrives as the line does, and the source then
    keeps sampling after the monitor stopped it.
    """
    lines: list[str] = []
    try:
        async with asyncio.timeout(FRAME_TIMEOUT_S):
            while True:
                line = await proc.readline()
                if line == "":
                    # The sampler never prints an empty line: this is the end of its output.
                    raise SamplerStalled(f"sampler ended (status {proc.exit_status})")
                if line.startswith("T "):
                    lines = [line]
                elif line == "E":
                    if lines:
                        return lines
                elif lines:
                    lines.append(line)
    except TimeoutError:
        raise SamplerStalled(f"no frame within {FRAME_TIMEOUT_S:g} s") from None


def _meminfo_event(text: str, now: float) -> HostMemory:
    values: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            values[parts[0].rstrip(":")] = int(parts[1]) * 1024
    return HostMemory(
        time=now,
        total_bytes=values.get("MemTotal", 0),
        available_bytes=values.get("MemAvailable", 0),
        swap_total_bytes=values.get("SwapTotal", 0),
        swap_free_bytes=values.get("SwapFree", 0),
    )


__all__ = ["ContainerSample", "StatsSource", "sampler_argv", "sampler_program"]

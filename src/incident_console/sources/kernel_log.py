"""Kernel OOM kills, from the kernel log: the ground truth docker's OOMKilled misses.

Methods, in order: `dmesg --follow --time-format iso` (it replays the ring buffer first: the
kills since boot, marked `replayed`), `journalctl -k -f -n all` (where dmesg is restricted and
a journal exists), else none: docker's `oom` events (the docker_events source) are all there
is, and the status says why. Every line goes through domain.oom's OomAssembler; each kill is
attributed to a container and compose service from the inventory.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from incident_console.domain.events import ContainerInfo, OomKill, SourceStatus
from incident_console.domain.kernel_time import KernelClock
from incident_console.domain.oom import OomAssembler, attribute, split_dmesg_line
from incident_console.domain.oom_scope import (
    CULPRIT_WINDOW_S,
    HOST,
    SHARED_LIMIT,
    enrich_kill,
    kill_scope,
    memory_cgroup_from_proc,
)
from incident_console.sources.base import Emit, Source, one_line
from incident_console.sources.inventory import container_info
from incident_console.transport.base import CommandFailed, Host, TransportError

if TYPE_CHECKING:
    from incident_console.monitor.state import HostState

#: How long an unfinished "Kill process" burst waits for its "Killed process" line.
EXPIRE_EVERY_S = 5.0


class StreamEnded(Exception):
    """The kernel log command ended (exit 0): restart it."""


class KernelLogSource(Source):
    """Follows the kernel log and emits one attributed OomKill per kill."""

    name = "kernel_log"
    #: The commands, overridable (tests run them as an unprivileged user to see a denial).
    dmesg_argv: Sequence[str] = ("dmesg", "--follow", "--time-format", "iso")
    journal_probe_argv: Sequence[str] = ("journalctl", "-k", "-n", "1", "-q", "--no-pager")
    journal_argv: Sequence[str] = (
        "journalctl", "-k", "-f", "-n", "all", "-q", "--no-pager", "-o", "short-iso-precise",
    )  # fmt: skip

    def __init__(self, since: float | None = None, retry_s: float = 60.0) -> None:
        """Args:
        since: emit only kills at or after this epoch time (None: every kill since boot).
        retry_s: with no method working, how long to wait before trying again.
        """
        self.since = since
        self.retry_s = retry_s
        self._seen: deque[tuple[int, str]] = deque(maxlen=2000)
        self._seen_set: set[tuple[int, str]] = set()
        self.method = "none"
        self._cgroup_cache: dict[tuple[str, int], str] = {}
        #: True once the stream's history is replayed and lines arrive as the kernel prints them.
        self.live = False

    async def run(self, host: Host, state: HostState, emit: Emit) -> None:
        """Follow the best available kernel log; restart it when it ends; never raise."""
        boot_time = await _boot_time(host)
        while True:
            why_not: list[str] = []
            for method, argv in (("dmesg", self.dmesg_argv), ("journalctl", self.journal_argv)):
                if method == "journalctl":
                    usable = await self._journal_usable(host)
                    if usable is not None:
                        why_not.append(usable)
                        continue
                detail = f"{' '.join(argv[:2])} (replays kills since boot)"
                if why_not:
                    detail = f"{'; '.join(why_not)}; using {' '.join(argv[:2])}"
                try:
                    await self._follow(host, state, emit, method, argv, detail, boot_time)
                except CommandFailed as exc:
                    why_not.append(_why(method, exc))
                    continue
                except StreamEnded:
                    break  # ended cleanly: start over with the same preference
                except (TransportError, OSError) as exc:
                    why_not.append(f"{method}: {one_line(exc)}")
                    break
            else:
                self.method = "none"
                emit(
                    SourceStatus(
                        time=time.time(),
                        source=self.name,
                        method="docker-events",
                        ok=False,
                        detail=(
                            f"{'; '.join(why_not)}: no kernel log; kills from the"
                            " cgroups' OOM counters where readable (no pid) and docker oom"
                            " events (they miss worker kills and host-wide kills)"
                        ),
                    )
                )
                await asyncio.sleep(self.retry_s)
                continue
            await asyncio.sleep(1.0)

    async def _journal_usable(self, host: Host) -> str | None:
        """None when journalctl has kernel messages; else why not, in a few words."""
        try:
            result = await host.run(list(self.journal_probe_argv), timeout=15.0)
        except (TransportError, OSError) as exc:
            return f"journalctl: {one_line(exc)}"
        text = (result.stdout + result.stderr).strip()
        if not result.ok or "No journal files" in text or not result.stdout.strip():
            return f"journalctl: {text.splitlines()[-1] if text else 'no kernel messages'}"
        return None

    async def _follow(
        self,
        host: Host,
        state: HostState,
        emit: Emit,
        method: str,
        argv: Sequence[str],
        detail: str,
        boot_time: float | None,
    ) -> None:
        assembler = OomAssembler()
        queue: asyncio.Queue[str | BaseException | None] = asyncio.Queue()
        clock = KernelClock(started=time.time())

        async def read() -> None:
            try:
                async for line in host.stream(list(argv)):
                    await queue.put(line)
                await queue.put(None)
            except Exception as exc:  # noqa: BLE001 - handed to the loop below
                await queue.put(exc)

        reader = asyncio.create_task(read())
        announced = False
        try:
            while True:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the cancel
                # that stops this source when it races with a line arriving.
                try:
                    async with asyncio.timeout(EXPIRE_EVERY_S):
                        item = await queue.get()
                except TimeoutError:
                    item = ""
                if isinstance(item, BaseException):
                    raise item
                if item is None:
                    raise StreamEnded
                if not announced:
                    # The first line proves the command runs (a denial exits before any).
                    announced = True
                    self.method = method
                    emit(
                        SourceStatus(
                            time=time.time(), source=self.name, method=method, detail=detail
                        )
                    )
                now = time.time()
                if item:
                    stamp, text = split_dmesg_line(item, boot_time)
                    kills = assembler.feed(clock.observe(stamp, now), text, method)
                else:
                    clock.tick(now)
                    kills = assembler.expire(now, method)
                self.live = clock.live
                for kill in kills:
                    await self._emit_kill(host, kill, state, emit, live=clock.is_live(kill.time))
        finally:
            self.live = False
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    async def _emit_kill(
        self, host: Host, kill: OomKill, state: HostState, emit: Emit, *, live: bool
    ) -> None:
        # Not the time: a replay after a restart stamps without the drift a live line had.
        key = (kill.pid, kill.container_id or kill.process)
        if key in self._seen_set:
            return  # the same kill again, after the stream restarted and replayed
        if len(self._seen) == self._seen.maxlen:
            self._seen_set.discard(self._seen[0])
        self._seen.append(key)
        self._seen_set.add(key)
        # `since` applies to the history the stream replays; a kill seen live is news, whatever
        # its stamp says (the kernel's clock drifts from the wall clock).
        if not live and self.since is not None and kill.time < self.since:
            return
        infos = {cid: view.info for cid, view in state.containers.items()}
        if kill.container_id and kill.container_id not in infos:
            # Killed right after it started: the inventory may not have it yet. Ask docker.
            info = await _inspect(host, kill.container_id)
            if info is not None:
                infos[info.id] = info
        kill = attribute(kill, infos)
        if kill_scope(kill) in (SHARED_LIMIT, HOST):
            kill = await self._enrich(host, kill, state)
        if not live:
            kill = dataclasses.replace(kill, replayed=True)
        emit(kill)

    async def _enrich(self, host: Host, kill: OomKill, state: HostState) -> OomKill:
        """Culprit, sharing and limits of a kill the container's own limit did not cause."""
        since = kill.time - CULPRIT_WINDOW_S
        histories: dict[str, list[tuple[float, int]]] = {}
        names: dict[str, str] = {}
        limited: list[str] = []
        for cid, view in state.containers.items():
            names[cid] = view.info.service or view.info.name.lstrip("/") or cid[:12]
            histories[cid] = [
                (sample.time, sample.memory_used_bytes)
                for sample in view.samples
                if sample.time >= since
            ]
            # Its own limit is what docker set (HostConfig.Memory): a sample's "limit" may be
            # the host's RAM or an ancestor's (the API reports the effective one).
            if view.info.memory_limit_bytes > 0:
                limited.append(cid)
        cgroups = await self._cgroups(host, state) if kill_scope(kill) == SHARED_LIMIT else {}
        return enrich_kill(kill, histories=histories, cgroups=cgroups, names=names, limited=limited)

    async def _cgroups(self, host: Host, state: HostState) -> dict[str, str]:
        """Each running container's memory cgroup, read from its init pid's /proc/<pid>/cgroup.

        Not guessed from the cgroup driver: a ``cgroup_parent`` (a compose file's, a slice)
        puts it elsewhere. Cached per (container, pid); a container that ended is skipped.
        """
        found: dict[str, str] = {}
        for cid, view in state.containers.items():
            pid = view.info.pid
            if view.gone or pid <= 0:
                continue
            key = (cid, pid)
            if key not in self._cgroup_cache:
                try:
                    text = await host.read_text(f"/proc/{pid}/cgroup")
                except (TransportError, OSError):
                    continue
                self._cgroup_cache[key] = memory_cgroup_from_proc(text)
            if self._cgroup_cache[key]:
                found[cid] = self._cgroup_cache[key]
        return found


async def _inspect(host: Host, cid: str) -> ContainerInfo | None:
    """One container's facts straight from docker (None if docker or the container is gone)."""
    try:
        client = await host.docker()
        doc = await asyncio.to_thread(client.api.inspect_container, cid)
    except Exception:  # noqa: BLE001 - no docker, NotFound: attribute by id only
        return None
    return container_info(doc)


def _why(method: str, exc: CommandFailed) -> str:
    text = exc.stderr.lower()
    if method == "dmesg" and ("not permitted" in text or "permission" in text):
        return "dmesg denied (kernel.dmesg_restrict=1)"
    if exc.exit_status == 127 or "not found" in text:
        return f"{method} not installed"
    return f"{method}: {one_line(exc)}"


async def _boot_time(host: Host) -> float | None:
    """btime from /proc/stat, to place dmesg's seconds-since-boot stamps (if any)."""
    try:
        text = await host.read_text("/proc/stat")
    except (TransportError, OSError):
        return None
    for line in text.splitlines():
        if line.startswith("btime "):
            with contextlib.suppress(ValueError):
                return float(line.split()[1])
    return None

"""OOM kills counted by the cgroups, for when the kernel log is closed (dmesg_restrict=1).

A non-root user can read each container's kill counter (cgroup v2 ``memory.events``
``oom_kill``, v1 ``memory.oom_control`` ``oom_kill``) and the host's total (``/proc/vmstat``
``oom_kill``), where dmesg is denied. The stats sampler reads them every 5th tick; this module
turns their rises into :class:`OomKill` records, one per counted kill, that the kernel log did
not already report (the kernel's line wins: it has the pid, process and rss).

Rules:
    - The first reading of a counter is its baseline: kills before it are history, never news.
    - A counter that falls was reset (the container's cgroup was recreated): a new baseline.
    - A rise waits `grace` seconds for the kernel log's own record of those kills; only the
      kills it still does not explain become records.
    - Host: the vmstat total's rise less the containers' rises in the same interval are kills
      outside any container (a host-wide kill). An interval in which a container's counter
      vanished (its cgroup went with its kills) is not judged: the remainder would be its kills.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from incident_console.domain.events import OomConstraint, OomKill

#: The sources of counter-made records (the report and the tracker tell them from the kernel's).
COUNTER_SOURCES = ("memory.events", "memory.oom_control", "/proc/vmstat")
#: The key of the host's own counter.
HOST = ""
#: A kernel record this long before a counter's baseline still counts against its rises (the
#: kernel's stamps and the wall clock drift apart by a second or so).
CLOCK_SLACK_S = 2.0


class Named(Protocol):
    """What a kill record needs of its container: a ContainerInfo, or a source's ref."""

    @property
    def name(self) -> str: ...

    @property
    def service(self) -> str: ...


def is_counter_kill(kill: OomKill) -> bool:
    """True for a record made from a counter (not the kernel's own line)."""
    return kill.source in COUNTER_SOURCES


@dataclass(slots=True)
class _Rise:
    seen: float
    count: int
    constraint: OomConstraint


@dataclass(slots=True)
class _Counter:
    since: float  # when the baseline was read
    value: int
    limit_hits: int | None  # v2 `oom`; v1: None (under_oom is a state, not a counter)
    pending: list[_Rise] = field(default_factory=list)
    settled: int = 0  # kills of settled rises since the baseline
    emitted: int = 0  # records made for them


class OomCounters:
    """Per-container and host OOM kill counters, turned into kill records.

    Args:
        mode: "v2" (memory.events) or "v1" (memory.oom_control).
        grace: seconds a rise waits for the kernel log to report its kills. Generous: it costs
            nothing where the kernel log is closed (no wait then), and where it is open a kill's
            record can take the kernel log's 5 s burst expiry on a loaded host.
    """

    def __init__(self, mode: str, grace: float = 10.0) -> None:
        self.mode = mode
        self.grace = grace
        self._counters: dict[str, _Counter] = {}

    @property
    def source(self) -> str:
        """The file the containers' counters come from."""
        return "memory.events" if self.mode == "v2" else "memory.oom_control"

    def counts(self) -> dict[str, int]:
        """Each container's counter as last read (kills in its cgroup since it was created)."""
        return {k: c.value for k, c in self._counters.items() if k != HOST}

    def observe(
        self, now: float, ooms: Mapping[str, tuple[int, int | None]], vmstat: int | None
    ) -> None:
        """Take one reading: `ooms` maps full container ids to (oom_kill, oom or under_oom)."""
        risen = 0
        vanished = False
        for cid in [k for k in self._counters if k != HOST and k not in ooms]:
            vanished = True
            del self._counters[cid]
        for cid, (value, second) in ooms.items():
            risen += self._observe_container(now, cid, value, second)
        if vmstat is None:
            return
        host = self._counters.get(HOST)
        if host is None or vmstat < host.value or vanished:
            self._counters[HOST] = _Counter(since=now, value=vmstat, limit_hits=None)
            return
        outside = vmstat - host.value - risen
        host.value = vmstat
        if outside > 0:
            host.pending.append(_Rise(now, outside, OomConstraint.GLOBAL))

    def _observe_container(self, now: float, cid: str, value: int, second: int | None) -> int:
        hits = second if self.mode == "v2" else None
        counter = self._counters.get(cid)
        if counter is None or value < counter.value:
            self._counters[cid] = _Counter(since=now, value=value, limit_hits=hits)
            return 0
        rise = value - counter.value
        if rise <= 0:
            counter.limit_hits = hits if hits is not None else counter.limit_hits
            return 0
        if self.mode == "v2":
            # `oom` counts its own limit being hit; a kill without it was the host running out.
            own = hits is not None and counter.limit_hits is not None and hits > counter.limit_hits
            constraint = OomConstraint.LIMIT if own else OomConstraint.GLOBAL
        else:
            # v1's under_oom says only whether it is at its limit right now.
            constraint = OomConstraint.LIMIT if second == 1 else OomConstraint.UNKNOWN
        counter.value, counter.limit_hits = value, hits
        counter.pending.append(_Rise(now, rise, constraint))
        return rise

    def settle(
        self,
        now: float,
        kernel: Iterable[OomKill],
        infos: Mapping[str, Named],
        *,
        kernel_open: bool,
    ) -> list[OomKill]:
        """The kill records of the rises whose grace is over, less the kernel's own records.

        Args:
            now: the current time.
            kernel: the kill records seen so far (the kernel log's; counter records are skipped).
            infos: the containers by full id, to name them.
            kernel_open: whether the kernel log is being read (else no grace: nobody else will
                report these kills).
        """
        grace = self.grace if kernel_open else 0.0
        seen: dict[str, list[float]] = {}
        for kill in kernel:
            if not is_counter_kill(kill) and not kill.replayed:
                seen.setdefault(kill.container_id, []).append(kill.time)
        out: list[OomKill] = []
        for key, counter in self._counters.items():
            ready = [r for r in counter.pending if r.seen + grace <= now]
            if not ready:
                continue
            counter.pending = [r for r in counter.pending if r.seen + grace > now]
            counter.settled += sum(r.count for r in ready)
            reported = sum(1 for t in seen.get(key, ()) if t >= counter.since - CLOCK_SLACK_S)
            missing = counter.settled - reported - counter.emitted
            why = (
                "pid unknown: kernel log closed"
                if not kernel_open
                else f"pid unknown: not in the kernel log within {self.grace:g} s"
            )
            for rise in ready:
                n = min(rise.count, missing)
                missing -= n
                counter.emitted += max(n, 0)
                for _ in range(n):
                    out.append(self._record(key, rise, why, infos))
        return out

    def _record(self, key: str, rise: _Rise, why: str, infos: Mapping[str, Named]) -> OomKill:
        if key == HOST:
            return OomKill(
                time=rise.seen,
                pid=0,
                process="",
                constraint=OomConstraint.GLOBAL,
                source="/proc/vmstat",
                detail=f"a host-wide kill outside any container's counter; {why}",
            )
        info = infos.get(key)
        return OomKill(
            time=rise.seen,
            pid=0,
            process="",
            constraint=rise.constraint,
            container_id=key,
            container=info.name.lstrip("/") if info else "",
            service=info.service if info else "",
            source=self.source,
            detail=why,
        )

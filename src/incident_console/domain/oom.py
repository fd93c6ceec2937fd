"""Kernel OOM-killer lines: group the lines of one kill, attribute it.

The kernel prints one kill as a burst of lines (kernels 2.6.32 .. 6.x, fields vary):

    python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0
    python3 cpuset=<id> mems_allowed=0                                        (<= 4.18)
    Task in /docker/<id> killed as a result of limit of /docker/<id>          (<= 4.18)
    oom-kill:constraint=CONSTRAINT_MEMCG,...,oom_memcg=/docker/<id>,task_memcg=...   (>= 4.19)
    Memory cgroup out of memory: Kill process 24572 (java) score 0 or sacrifice child (<= 4.19)
    Memory cgroup out of memory: Killed process 7076 (python3) total-vm:76668kB, anon-rss:...
    Tasks in /x are going to be killed due to memory.oom.group set      (then more Killed lines)
    oom_reaper: reaped process 7076 (python3), now anon-rss:0kB, ...

`OomAssembler` folds such a burst into `OomKill` records, each with its scope (the container's
own limit, a limit shared with others, or the whole host: see `oom_scope`). Lines are parsed by
`oom_parse`; the timestamp prefix is split off by `kernel_time`. Everything here is pure and
total: any text goes in, nothing but lists come out (these lines come from a hostile,
truncated, interleaved world, and from `grep`, which keeps only some of them).
"""

from __future__ import annotations

import dataclasses
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from incident_console.domain.events import ContainerInfo, OomConstraint, OomKill
from incident_console.domain.kernel_time import split_dmesg_line
from incident_console.domain.oom_parse import (
    OomLine,
    clean_cgroup_path,
    container_id_from_memcg,
    parse_kernel_line,
)
from incident_console.domain.oom_scope import classify_scope

__all__ = [
    "OomAssembler",
    "OomLine",
    "attribute",
    "container_id_from_memcg",
    "parse_kernel_line",
    "split_dmesg_line",
]

_MEMCG_PREFIX = "Memory cgroup out of memory"
_HEX64 = re.compile(r"[0-9a-f]{64}", re.ASCII)
#: Kills remembered to tell a repeat (an oom.group's own victim, a reaper) from a new kill.
_RECENT_KEPT = 256
#: The reaper may come seconds after its kill (measured in a public log: 5.3 s): it still
#: confirms that kill, it is not a kill of its own.
_REAPER_WINDOW_S = 120.0
_STARTS_BURST = ("invoked", "task_in", "oom_kill_summary", "kill_old")


def _kb_to_bytes(kb: int | None) -> int | None:
    return None if kb is None else kb * 1024


@dataclass
class _Group:
    """What the current burst has told us before its Killed-process line."""

    start: float
    lines: list[str] = dataclasses.field(default_factory=list)
    task_in: OomLine | None = None
    summary: OomLine | None = None
    summary_time: float = 0.0
    kill_old: OomLine | None = None
    kill_old_time: float = 0.0
    cpuset: str = ""  # of the "<comm> cpuset=<x> mems_allowed=" line (<= 4.18)
    stats_path: str = ""  # the first "Memory cgroup stats for X:" (the limit's cgroup)

    def pending(self) -> bool:
        """A kill line may still come: the burst named a victim but printed no Killed line."""
        return self.kill_old is not None or (
            self.summary is not None and self.summary.pid is not None
        )


@dataclass(frozen=True)
class _Where:
    """Which memory ran out and whose: what every kill of a burst (or an oom.group) shares."""

    constraint: OomConstraint
    task_memcg: str
    oom_memcg: str
    container_id: str
    global_oom: bool = False


@dataclass
class _OomGroup:
    """After "Tasks in X are going to be killed due to memory.oom.group set"."""

    start: float
    where: _Where
    lines: tuple[str, ...]


def _cpuset_id(cpuset: str) -> str:
    if _HEX64.fullmatch(cpuset):
        return cpuset  # cgroup v1 docker names the cpuset cgroup after the container
    return container_id_from_memcg("/" + cpuset)


def _where(group: _Group, victim: OomLine) -> _Where:
    summary = group.summary
    related = {victim.pid}
    if group.kill_old is not None:
        related.add(group.kill_old.pid)  # a sacrificed child: the summary names the parent
    if summary is not None and summary.pid is not None and summary.pid not in related:
        summary = None
    task_in = group.task_in
    prefixes = [victim.prefix, group.kill_old.prefix if group.kill_old else ""]
    constraint = OomConstraint.UNKNOWN
    if summary is not None and (summary.constraint == "CONSTRAINT_MEMCG" or summary.oom_memcg):
        constraint = OomConstraint.LIMIT
    elif summary is not None and (summary.global_oom or summary.constraint == "CONSTRAINT_NONE"):
        constraint = OomConstraint.GLOBAL
    elif _MEMCG_PREFIX in prefixes or task_in is not None:
        constraint = OomConstraint.LIMIT
    elif any(p.startswith("Out of memory") for p in prefixes):
        constraint = OomConstraint.GLOBAL
    task_memcg = (summary.task_memcg if summary else "") or (task_in.task_memcg if task_in else "")
    oom_memcg = (summary.oom_memcg if summary else "") or (task_in.oom_memcg if task_in else "")
    if constraint is OomConstraint.LIMIT and not oom_memcg:
        oom_memcg = group.stats_path  # 3.10 prints the limit's cgroup in its stats header
    container_id = container_id_from_memcg(task_memcg) or container_id_from_memcg(oom_memcg)
    if not container_id and not task_memcg:
        # The allocating task's cpuset: on docker v1 its container's id. Only where the
        # victim's own cgroup is not printed (a wrapped Task-in line, kernels that print
        # none): the allocator need not be the victim, so a printed task_memcg wins.
        container_id = _cpuset_id(summary.cpuset if summary else "") or _cpuset_id(group.cpuset)
    return _Where(
        constraint, task_memcg, oom_memcg, container_id, bool(summary and summary.global_oom)
    )


class OomAssembler:
    """Groups the kernel lines of one OOM kill into one `OomKill`.

    Feed it every kernel line in order. A kill is emitted when its "Killed process" line arrives
    (merged with the preceding summary, Task-in and "Kill process" lines of the same burst). A
    burst that names its victim ("Kill process ... or sacrifice child" on kernels <= 4.19, or
    the ``oom-kill:`` summary) but prints no "Killed process" line (grep output often holds only
    those lines) is emitted alone when the next burst starts, when its victim's ``oom_reaper``
    line comes, when `stale_after` seconds pass, or on `flush()`. A reaper line confirms a
    kill; it is a kill of its own only when no other line told of it. After a
    ``memory.oom.group`` line, every "Killed process" of the group is a kill of that group's
    limit, and a pid already killed is not killed twice.
    """

    def __init__(self, stale_after: float = 5.0) -> None:
        """Create an assembler.

        Args:
            stale_after: Seconds after which an unfinished burst is no longer merged into a
                later line (its pending kill, if any, is emitted alone).
        """
        self._stale_after = stale_after
        self._group: _Group | None = None
        self._oom_group: _OomGroup | None = None
        self._last: tuple[float, _Where, tuple[str, ...]] | None = None
        self._recent: OrderedDict[int, float] = OrderedDict()

    def feed(self, time: float, text: str, source: str = "") -> list[OomKill]:
        """Take one kernel message (timestamp already split off); return finished kills."""
        line = parse_kernel_line(text)
        out: list[OomKill] = []
        group = self._group
        if group is not None and self._is_stale(group.start, time):
            out.extend(self._close(source))
            group = None
        if self._oom_group is not None and self._is_stale(self._oom_group.start, time):
            self._oom_group = None
        if line is None:
            return out
        if line.kind == "reaper":
            out.extend(self._reaped(line, time, source))
            return out
        if line.kind in _STARTS_BURST:
            self._oom_group = None
            if group is not None and not self._same_burst(group, line):
                out.extend(self._close(source))
                group = None
        if line.kind == "oom_group":
            self._start_oom_group(line, time)
            return out
        if line.kind == "killed" and group is None and self._oom_group is not None:
            out.extend(self._group_kill(line, time, source))
            return out
        if line.kind in ("limit_of", "path_tail") and group is None:
            return out  # a tail or a stats header of nothing we are assembling
        if group is None or line.kind == "invoked":
            group = _Group(start=time)
            self._group = group
        self._note(group, line, time)
        if line.kind == "killed":
            self._group = None
            where = _where(group, line)
            out.extend(self._emit(where, line, time, source, tuple(group.lines)))
        return out

    def flush(self, source: str = "") -> list[OomKill]:
        """Emit a pending kill, if any, and forget the unfinished burst."""
        self._oom_group = None
        return self._close(source)

    def expire(self, now: float, source: str = "") -> list[OomKill]:
        """Like `flush`, but only when the pending burst is older than `stale_after`."""
        group = self._group
        if group is not None and self._is_stale(group.start, now):
            return self._close(source)
        return []

    @staticmethod
    def _same_burst(group: _Group, line: OomLine) -> bool:
        """Whether a burst-starting line still belongs to the burst under way."""
        if line.kind == "invoked":
            return False
        if line.kind == "kill_old":
            return group.kill_old is None  # after the summary or the Task-in line
        if line.kind == "oom_kill_summary":
            return group.summary is None and group.kill_old is None
        return group.task_in is None and group.summary is None and group.kill_old is None

    @staticmethod
    def _note(group: _Group, line: OomLine, time: float) -> None:
        if line.kind == "limit_of":
            if group.task_in is not None and not group.task_in.oom_memcg:
                # A wrapped Task-in line: its tail came as a line of its own.
                group.task_in = dataclasses.replace(group.task_in, oom_memcg=line.oom_memcg)
                group.lines.append(line.text)
            return
        if line.kind == "path_tail":
            task_in = group.task_in
            if task_in is not None and group.lines[-1] == task_in.text:
                # The Task-in line's limit on a line of its own (pr_cont), or a terminal that
                # wrapped it inside the limit's path.
                head = task_in.oom_memcg if task_in.oom_memcg else ""
                if not head and not line.group.startswith("/"):
                    return
                whole = clean_cgroup_path(head + line.group)
                group.task_in = dataclasses.replace(task_in, oom_memcg=whole)
                group.lines[-1] = task_in.text + line.text
            return
        if line.kind == "memcg_stats":
            group.stats_path = group.stats_path or line.group
            return
        group.lines.append(line.text)
        if line.kind == "cpuset":
            group.cpuset = line.cpuset
        elif line.kind == "task_in":
            group.task_in = line
        elif line.kind == "oom_kill_summary":
            group.summary, group.summary_time = line, time
        elif line.kind == "kill_old":
            group.kill_old, group.kill_old_time = line, time

    def _is_stale(self, start: float, time: float) -> bool:
        # NaN/inf times compare False: such a burst is simply never considered stale here.
        try:
            return bool(time - start > self._stale_after)
        except TypeError:
            return False

    def _seen(self, pid: int | None, time: float, window: float | None = None) -> bool:
        if pid is None or pid not in self._recent:
            return False
        try:
            return bool(abs(time - self._recent[pid]) <= (window or self._stale_after))
        except TypeError:
            return True

    def _emit(
        self, where: _Where, victim: OomLine, time: float, source: str, lines: tuple[str, ...]
    ) -> list[OomKill]:
        self._last = (time, where, lines)
        if self._seen(victim.pid, time):
            return []  # the same kill printed again (an oom.group lists its first victim too)
        if victim.pid is not None:
            self._recent[victim.pid] = time
            self._recent.move_to_end(victim.pid)
            while len(self._recent) > _RECENT_KEPT:
                self._recent.popitem(last=False)
        return [_build(where, victim, time, source, lines)]

    def _close(self, source: str) -> list[OomKill]:
        group, self._group = self._group, None
        if group is None:
            return []
        if group.kill_old is not None:
            victim, time = group.kill_old, group.kill_old_time
        elif group.summary is not None and group.summary.pid is not None:
            # `grep oom-kill` keeps the summary alone: it names the victim, so it is a kill.
            victim, time = group.summary, group.summary_time
        else:
            return []
        return self._emit(_where(group, victim), victim, time, source, tuple(group.lines))

    def _reaped(self, line: OomLine, time: float, source: str) -> list[OomKill]:
        group = self._group
        if (
            group is not None
            and group.pending()
            and line.pid
            in (
                group.kill_old.pid if group.kill_old else None,
                group.summary.pid if group.summary else None,
            )
        ):
            return self._close(source)  # the reaper confirms the pending kill: it is done
        if self._seen(line.pid, time, _REAPER_WINDOW_S) or line.pid is None:
            return []
        where = self._oom_group.where if self._oom_group else None
        where = where or _Where(OomConstraint.UNKNOWN, "", "", "")
        return self._emit(where, line, time, source, (line.text,))

    def _start_oom_group(self, line: OomLine, time: float) -> None:
        last = self._last
        if last is not None and not self._is_stale(last[0], time):
            where, lines = last[1], last[2]
        else:
            where, lines = _Where(OomConstraint.LIMIT, "", "", ""), ()
        self._oom_group = _OomGroup(
            start=time,
            where=dataclasses.replace(
                where,
                constraint=where.constraint
                if where.constraint is not OomConstraint.UNKNOWN
                else OomConstraint.LIMIT,
                task_memcg=line.group,
                container_id=container_id_from_memcg(line.group) or "",
            ),
            lines=(*lines, line.text),
        )

    def _group_kill(self, line: OomLine, time: float, source: str) -> list[OomKill]:
        group = self._oom_group
        assert group is not None
        return self._emit(group.where, line, time, source, (*group.lines, line.text))


def _build(
    where: _Where, victim: OomLine, time: float, source: str, lines: tuple[str, ...]
) -> OomKill:
    memcg = (
        where.oom_memcg
        if where.constraint is OomConstraint.LIMIT and where.oom_memcg
        else where.task_memcg
    )
    return OomKill(
        time=time,
        pid=victim.pid if victim.pid is not None else -1,
        process=victim.process,
        constraint=where.constraint,
        anon_rss_bytes=_kb_to_bytes(victim.anon_rss_kb) if victim.kind != "reaper" else None,
        total_vm_bytes=_kb_to_bytes(victim.total_vm_kb) if victim.kind != "reaper" else None,
        container_id=where.container_id,
        memcg=memcg,
        task_memcg=where.task_memcg,
        oom_memcg=where.oom_memcg,
        scope=classify_scope(where.constraint, where.oom_memcg, where.task_memcg),
        source=source,
        raw=lines,
        detail="only its oom_reaper line was read" if victim.kind == "reaper" else "",
    )


def attribute(kill: OomKill, containers: Mapping[str, ContainerInfo]) -> OomKill:
    """Fill the container name, compose service and project of a kill from the containers.

    Args:
        kill: A kill whose `container_id` may be set.
        containers: Known containers by full id (values' `id` may also be short ids).

    Returns:
        A copy with `container`, `service` and `project` set, or `kill` itself when the id is
        unknown.
    """
    cid = kill.container_id
    if not cid:
        return kill
    info = containers.get(cid)
    if info is None:
        for candidate in containers.values():
            if candidate.id and (cid.startswith(candidate.id) or candidate.id.startswith(cid)):
                info = candidate
                break
    if info is None:
        return kill
    return dataclasses.replace(
        kill,
        container=info.name.lstrip("/") or kill.container,
        service=info.service or kill.service,
        project=info.project or kill.project,
    )

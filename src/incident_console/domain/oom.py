"""Kernel OOM-killer lines: classify them, group the lines of one kill, attribute it.

The kernel prints one kill as a burst of lines (kernels 3.10 .. 6.x, fields vary):

    python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0
    Task in /docker/<id> killed as a result of limit of /docker/<id>          (<= 4.18)
    oom-kill:constraint=CONSTRAINT_MEMCG,...,oom_memcg=/docker/<id>,task_memcg=...   (>= 4.19)
    Memory cgroup out of memory: Kill process 24572 (java) score 0 or sacrifice child (<= 4.19)
    Memory cgroup out of memory: Killed process 7076 (python3) total-vm:76668kB, anon-rss:...
    oom_reaper: reaped process 7076 (python3), now anon-rss:0kB, ...

`OomAssembler` folds such a burst into one `OomKill`. Everything here is pure and total: any
text goes in, nothing but `None`/lists come out (these lines come from a hostile, truncated,
interleaved world). The dmesg/journalctl timestamp prefix is split off by `kernel_time`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypedDict

from incident_console.domain.events import ContainerInfo, OomConstraint, OomKill
from incident_console.domain.kernel_time import split_dmesg_line

__all__ = [
    "OomAssembler",
    "OomLine",
    "attribute",
    "container_id_from_memcg",
    "parse_kernel_line",
    "split_dmesg_line",
]

# A kernel line is at most ~1 KiB (LOG_LINE_MAX); anything longer is not one, and bounding the
# input bounds the regex work.
_MAX_LINE = 4096
# Beyond 18 digits a number is garbage (and int() refuses > 4300 digits).
_MAX_DIGITS = 18

_MEMCG_PREFIX = "Memory cgroup out of memory"
_F = re.ASCII

_CONTAINER_ID = re.compile(r"(?:/docker/|docker-)([0-9a-f]{64})", _F)
_HEX64 = re.compile(r"[0-9a-f]{64}", _F)
# "Out of memory", "Out of memory (oom_kill_allocating_task)", "Memory cgroup out of memory".
_PREFIX = r"(?:(?P<prefix>Memory cgroup out of memory|Out of memory(?: \([^)]{0,64}\))?): )?"
# Process names (comm) may hold parentheses: greedy up to the last ')' before a field boundary.
_COMM = r"\((?P<comm>.{0,64})\)(?=[\s,]|$)"
_KILLED = re.compile(
    _PREFIX + r"Killed process (?P<pid>\d+)(?:, UID (?P<uid_old>\d+),)? " + _COMM + r"(?P<rest>.*)",
    _F,
)
_KILL_OLD = re.compile(
    _PREFIX + r"Kill process (?P<pid>\d+) " + _COMM + r"(?: score (?P<score>-?\d+))?", _F
)
_TASK_IN = re.compile(r"Task in (?P<task>\S+) killed as a result of limit of (?P<limit>\S+)", _F)
_INVOKED = re.compile(r"(?P<comm>.{0,64}?) invoked oom-killer:(?P<rest>.*)", _F)
_REAPER = re.compile(r"oom_reaper: reaped process (?P<pid>\d+) " + _COMM + r"(?P<rest>.*)", _F)
_SUMMARY = re.compile(r"oom-kill:(?P<rest>.*)", _F)
# task= holds a comm that may contain commas: take it lazily up to ",pid=<digits>".
_SUMMARY_TASK = re.compile(
    r"(?:^|,)task=(?P<task>.{0,64}?),pid=(?P<pid>\d+)(?:,uid=(?P<uid>\d+))?", _F
)
_KB_FIELD = re.compile(r"(?P<name>total-vm|anon-rss|file-rss|shmem-rss):(?P<kb>\d+)kB", _F)
_UID_FIELD = re.compile(r"\bUID:(?P<uid>\d+)", _F)
_ADJ_FIELD = re.compile(r"oom_score_adj[:=](?P<adj>-?\d+)", _F)
_GFP_FIELD = re.compile(r"gfp_mask=(?P<gfp>[0-9a-fx]+)", _F)
_ORDER_FIELD = re.compile(r"\border=(?P<order>-?\d+)", _F)


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    digits = text.lstrip("-")
    if not digits or len(digits) > _MAX_DIGITS or not digits.isdigit():
        return None
    return int(text)


@dataclass(frozen=True, slots=True)
class OomLine:
    """One classified kernel OOM line; fields the line does not carry stay empty/None.

    Attributes:
        kind: oom_kill_summary, killed, kill_old, task_in, invoked or reaper.
        pid: The victim's pid (for invoked: None; the invoking task is `process`).
        process: The victim's (or, for invoked, the allocating task's) comm.
        prefix: "Memory cgroup out of memory", "Out of memory", ... before Kill(ed) process.
        constraint: CONSTRAINT_MEMCG, CONSTRAINT_NONE, ... from the oom-kill: summary.
        task_memcg: The victim's memory cgroup (summary) or the Task-in task path.
        oom_memcg: The cgroup whose limit was hit (summary) or the Task-in limit path.
        global_oom: The summary says global_oom (host-wide exhaustion).
        cpuset: The summary's cpuset (on cgroup v1 docker, the container id).
    """

    kind: str
    text: str
    pid: int | None = None
    process: str = ""
    prefix: str = ""
    anon_rss_kb: int | None = None
    total_vm_kb: int | None = None
    file_rss_kb: int | None = None
    shmem_rss_kb: int | None = None
    uid: int | None = None
    oom_score_adj: int | None = None
    score: int | None = None
    constraint: str = ""
    task_memcg: str = ""
    oom_memcg: str = ""
    global_oom: bool = False
    cpuset: str = ""
    gfp_mask: str = ""
    order: int | None = None

    @property
    def memcg_limit(self) -> bool:
        """True when the line itself says a cgroup limit (not the host) ran out."""
        return self.prefix == _MEMCG_PREFIX or self.kind == "task_in"


class _KbFields(TypedDict):
    total_vm_kb: int | None
    anon_rss_kb: int | None
    file_rss_kb: int | None
    shmem_rss_kb: int | None


def _kb_fields(rest: str) -> _KbFields:
    found = {m["name"]: _int(m["kb"]) for m in _KB_FIELD.finditer(rest)}
    return _KbFields(
        total_vm_kb=found.get("total-vm"),
        anon_rss_kb=found.get("anon-rss"),
        file_rss_kb=found.get("file-rss"),
        shmem_rss_kb=found.get("shmem-rss"),
    )


def _parse_summary(text: str, rest: str) -> OomLine:
    fields: dict[str, str] = {}
    flags: set[str] = set()
    task_match = _SUMMARY_TASK.search(rest)
    head = rest[: task_match.start()] if task_match else rest
    for part in head.split(","):
        key, sep, value = part.partition("=")
        if sep:
            fields.setdefault(key.strip(), value.strip())
        elif part.strip():
            flags.add(part.strip())
    return OomLine(
        kind="oom_kill_summary",
        text=text,
        pid=_int(task_match["pid"]) if task_match else None,
        process=task_match["task"] if task_match else "",
        uid=_int(task_match["uid"]) if task_match else None,
        constraint=fields.get("constraint", ""),
        task_memcg=fields.get("task_memcg", ""),
        oom_memcg=fields.get("oom_memcg", ""),
        cpuset=fields.get("cpuset", ""),
        global_oom="global_oom" in flags,
    )


def parse_kernel_line(text: str) -> OomLine | None:
    """Classify one kernel message (without its timestamp prefix).

    Args:
        text: The message, e.g. "Out of memory: Killed process 3920277 (gunicorn) ...".

    Returns:
        An `OomLine`, or None when the line is not one of the OOM-killer lines we use.
    """
    if not isinstance(text, str):
        return None
    text = text[:_MAX_LINE].strip()
    if "oom" not in text.lower() and "process" not in text and "Task in" not in text:
        return None
    if m := _SUMMARY.search(text):
        return _parse_summary(text, m["rest"])
    if m := _KILLED.search(text):
        rest = m["rest"]
        uid = _UID_FIELD.search(rest)
        adj = _ADJ_FIELD.search(rest)
        return OomLine(
            kind="killed",
            text=text,
            pid=_int(m["pid"]),
            process=m["comm"],
            prefix=m["prefix"] or "",
            uid=_int(uid["uid"] if uid else m["uid_old"]),
            oom_score_adj=_int(adj["adj"]) if adj else None,
            **_kb_fields(rest),
        )
    if m := _KILL_OLD.search(text):
        return OomLine(
            kind="kill_old",
            text=text,
            pid=_int(m["pid"]),
            process=m["comm"],
            prefix=m["prefix"] or "",
            score=_int(m["score"]),
        )
    if m := _TASK_IN.search(text):
        return OomLine(kind="task_in", text=text, task_memcg=m["task"], oom_memcg=m["limit"])
    if m := _REAPER.search(text):
        return OomLine(
            kind="reaper", text=text, pid=_int(m["pid"]), process=m["comm"], **_kb_fields(m["rest"])
        )
    if m := _INVOKED.match(text):
        rest = m["rest"]
        gfp = _GFP_FIELD.search(rest)
        order = _ORDER_FIELD.search(rest)
        adj = _ADJ_FIELD.search(rest)
        return OomLine(
            kind="invoked",
            text=text,
            process=m["comm"].strip(),
            gfp_mask=gfp["gfp"] if gfp else "",
            order=_int(order["order"]) if order else None,
            oom_score_adj=_int(adj["adj"]) if adj else None,
        )
    return None


def container_id_from_memcg(path: str) -> str:
    """The docker container id in a memory cgroup path, or "".

    Handles cgroup v1 (`/docker/<id>`) and v2 / systemd (`/system.slice/docker-<id>.scope`);
    the LAST match wins, so docker-in-docker paths name the innermost container.
    """
    if not isinstance(path, str):
        return ""
    matches = _CONTAINER_ID.findall(path[:_MAX_LINE])
    return matches[-1] if matches else ""


def _kb_to_bytes(kb: int | None) -> int | None:
    return None if kb is None else kb * 1024


@dataclass
class _Group:
    """What the current burst has told us before its Killed-process line."""

    start: float
    lines: list[str] = dataclasses.field(default_factory=list)
    task_in: OomLine | None = None
    summary: OomLine | None = None
    kill_old: OomLine | None = None
    kill_old_time: float = 0.0


class OomAssembler:
    """Groups the kernel lines of one OOM kill into one `OomKill`.

    Feed it every kernel line in order. A kill is emitted when its "Killed process" line arrives
    (merged with the preceding summary, Task-in and "Kill process" lines of the same burst). On
    kernels <= 4.19 "Kill process ... or sacrifice child" is followed by "Killed process" (whose
    pid differs when a child was sacrificed), so a "Kill process" line waits for it and is only
    emitted alone when the next burst starts, when `stale_after` seconds pass, or on `flush()`
    (grep output often holds only those lines).
    """

    def __init__(self, stale_after: float = 5.0) -> None:
        """Create an assembler.

        Args:
            stale_after: Seconds after which an unfinished burst is no longer merged into a
                later line (its "Kill process" line, if any, is emitted alone).
        """
        self._stale_after = stale_after
        self._group: _Group | None = None

    def feed(self, time: float, text: str, source: str = "") -> list[OomKill]:
        """Take one kernel message (timestamp already split off); return finished kills."""
        line = parse_kernel_line(text)
        out: list[OomKill] = []
        group = self._group
        if group is not None and self._is_stale(group, time):
            out.extend(self._close(source))
            group = None
        if line is None or line.kind == "reaper":
            return out
        starts_burst = line.kind in ("invoked", "task_in", "oom_kill_summary", "kill_old")
        if group is not None and group.kill_old is not None and starts_burst:
            # A "Kill process" with no "Killed process" after it: that burst is over.
            out.extend(self._close(source))
            group = None
        if group is not None and (
            (line.kind == "task_in" and group.task_in is not None)
            or (line.kind == "oom_kill_summary" and group.summary is not None)
        ):
            group = None  # a second summary: the earlier burst never reached its kill line
        if group is None or line.kind == "invoked":
            group = _Group(start=time)
            self._group = group
        group.lines.append(line.text)
        if line.kind == "task_in":
            group.task_in = line
        elif line.kind == "oom_kill_summary":
            group.summary = line
        elif line.kind == "kill_old":
            group.kill_old = line
            group.kill_old_time = time
        elif line.kind == "killed":
            out.append(self._build(group, line, time, source))
            self._group = None
        return out

    def flush(self, source: str = "") -> list[OomKill]:
        """Emit a pending "Kill process" kill, if any, and forget the unfinished burst."""
        return self._close(source)

    def expire(self, now: float, source: str = "") -> list[OomKill]:
        """Like `flush`, but only when the pending burst is older than `stale_after`."""
        group = self._group
        if group is not None and self._is_stale(group, now):
            return self._close(source)
        return []

    def _is_stale(self, group: _Group, time: float) -> bool:
        # NaN/inf times compare False: such a burst is simply never considered stale here.
        try:
            return bool(time - group.start > self._stale_after)
        except TypeError:
            return False

    def _close(self, source: str) -> list[OomKill]:
        group, self._group = self._group, None
        if group is None or group.kill_old is None:
            return []
        return [self._build(group, group.kill_old, group.kill_old_time, source)]

    def _build(self, group: _Group, victim: OomLine, time: float, source: str) -> OomKill:
        summary = group.summary
        related = {victim.pid}
        if group.kill_old is not None:
            # A sacrificed child: the summary names the parent chosen first.
            related.add(group.kill_old.pid)
        if summary is not None and summary.pid is not None and summary.pid not in related:
            summary = None
        task_in = group.task_in
        prefixes = [victim.prefix, group.kill_old.prefix if group.kill_old else ""]
        constraint = OomConstraint.UNKNOWN
        if summary is not None and (summary.constraint == "CONSTRAINT_MEMCG" or summary.oom_memcg):
            constraint = OomConstraint.LIMIT
        elif summary is not None and (
            summary.global_oom or summary.constraint == "CONSTRAINT_NONE"
        ):
            constraint = OomConstraint.GLOBAL
        elif _MEMCG_PREFIX in prefixes or task_in is not None:
            constraint = OomConstraint.LIMIT
        elif any(p.startswith("Out of memory") for p in prefixes):
            constraint = OomConstraint.GLOBAL
        task_memcg = (summary.task_memcg if summary else "") or (
            task_in.task_memcg if task_in else ""
        )
        oom_memcg = (summary.oom_memcg if summary else "") or (task_in.oom_memcg if task_in else "")
        container_id = container_id_from_memcg(task_memcg) or container_id_from_memcg(oom_memcg)
        if not container_id and summary is not None and _HEX64.fullmatch(summary.cpuset):
            # cgroup v1 docker names the cpuset cgroup after the container.
            container_id = summary.cpuset
        memcg = oom_memcg if constraint is OomConstraint.LIMIT and oom_memcg else task_memcg
        return OomKill(
            time=time,
            pid=victim.pid if victim.pid is not None else -1,
            process=victim.process or (summary.process if summary else ""),
            constraint=constraint,
            anon_rss_bytes=_kb_to_bytes(victim.anon_rss_kb),
            total_vm_bytes=_kb_to_bytes(victim.total_vm_kb),
            container_id=container_id,
            memcg=memcg,
            source=source,
            raw=tuple(group.lines),
        )


def attribute(kill: OomKill, containers: Mapping[str, ContainerInfo]) -> OomKill:
    """Fill the container name and compose service of a kill from the known containers.

    Args:
        kill: A kill whose `container_id` may be set.
        containers: Known containers by full id (values' `id` may also be short ids).

    Returns:
        A copy with `container` and `service` set, or `kill` itself when the id is unknown.
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
    )

"""One kernel OOM-killer line at a time: which kind it is and the fields it carries.

Kinds (kernels 2.6.32 .. 6.x; trailing fields vary and are optional):

- ``invoked``: ``python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, ...``
- ``cpuset``: ``java cpuset=<id> mems_allowed=0`` (<= 4.18: on docker v1 the container id)
- ``task_in``: ``Task in /docker/<id> killed as a result of limit of /docker/<id>`` (<= 4.18),
  also when wrapped or glued (the limit part may be missing or run into the next message)
- ``limit_of``: `` killed as a result of limit of /docker/<id>``, the wrapped Task-in's tail
- ``path_tail``: ``ds/pod1/<id>``: the rest of a path a terminal wrapped onto the next line
- ``memcg_stats``: ``Memory cgroup stats for /docker/<id>:`` (the first names the limit's cgroup)
- ``oom_kill_summary``: ``oom-kill:constraint=...,oom_memcg=...,task_memcg=...,task=X,pid=N``
- ``kill_old``: ``[Memory cgroup ]Out of memory: Kill process N (x) score S or sacrifice child``
- ``killed``: ``[Memory cgroup ]Out of memory: Killed process N (x) total-vm:...``
- ``oom_group``: ``Tasks in X are going to be killed due to memory.oom.group set``
- ``reaper``: ``oom_reaper: reaped process N (x), now anon-rss:0kB, ...``

Everything here is pure and total: any text in, an `OomLine` or None out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypedDict

__all__ = ["OomLine", "clean_cgroup_path", "container_id_from_memcg", "parse_kernel_line"]

# A kernel line is at most ~1 KiB (LOG_LINE_MAX); anything longer is not one, and bounding the
# input bounds the regex work.
_MAX_LINE = 4096
# Beyond 18 digits a number is garbage (and int() refuses > 4300 digits).
_MAX_DIGITS = 18

_MEMCG_PREFIX = "Memory cgroup out of memory"
_F = re.ASCII

# A 64-hex container id as a whole path segment or a scope's name: /docker/<id>,
# docker-<id>.scope, cri-containerd-<id>.scope, crio-<id>.scope, libpod-<id>.scope,
# /kubepods/burstable/pod<uid>/<id>. Not a longer hex run, not inside a word.
_CONTAINER_ID = re.compile(r"(?:(?<=/)|(?<=-))([0-9a-f]{64})(?![0-9a-z])", _F)
# A glued Task-in line: the path ends at the id (and its .scope), the next message follows.
_GLUED_PATH = re.compile(r"(?P<path>/\S*?[0-9a-f]{64}(?:\.scope)?)(?=[^0-9a-z./]|[A-Za-z]|$)", _F)
# "Out of memory", "Out of memory (oom_kill_allocating_task)", "Memory cgroup out of memory".
_PREFIX = r"(?:(?P<prefix>Memory cgroup out of memory|Out of memory(?: \([^)]{0,64}\))?): )?"
# Process names (comm) may hold parentheses: greedy up to the last ')' before a field boundary.
_COMM = r"\((?P<comm>.{0,64})\)(?=[\s,]|$)"
_KILLED = re.compile(
    _PREFIX + r"Killed process (?P<pid>\d+)(?:, UID (?P<uid_old>\d+),)? " + _COMM + r"(?P<rest>.*)",
    _F,
)
_KILL_OLD = re.compile(
    _PREFIX + r"[Kk]ill process (?P<pid>\d+) " + _COMM + r"(?: score (?P<score>-?\d+))?", _F
)
# Printed with pr_cont: the tail may be on the next line, or the next message glued on.
_TASK_IN = re.compile(
    r"Task in (?P<task>/\S*?)(?: ?killed as a result of limit of ?(?P<limit>/\S*)?|\s*$)", _F
)
_LIMIT_OF = re.compile(r"^\s*killed as a result of limit of ?(?P<limit>/\S*)", _F)
_OOM_GROUP = re.compile(
    r"Tasks in (?P<group>/\S*) are going to be killed due to memory\.oom\.group set", _F
)
_CPUSET = re.compile(r"^(?P<comm>.{0,64}?) cpuset=(?P<cpuset>\S+) mems_allowed=", _F)
# A terminal's wrap of a long line: the rest of a cgroup path alone on a line ("ds/pod1/<id>").
_PATH_TAIL = re.compile(r"^[\w.@:+-]*/[\w./@:+-]*$", _F)
_MEMCG_STATS = re.compile(r"^Memory cgroup stats for (?P<path>/\S*?):?(?:\s|$)", _F)
_INVOKED = re.compile(r"(?P<comm>.{0,64}?) invoked oom-killer:(?P<rest>.*)", _F)
_REAPER = re.compile(r"oom_reaper: reaped process (?P<pid>\d+) " + _COMM + r"(?P<rest>.*)", _F)
_SUMMARY = re.compile(r"oom-kill:(?P<rest>.*)", _F)
# task= holds a comm that may contain commas: take it lazily up to ",pid=<digits>".
_SUMMARY_TASK = re.compile(
    r"(?:^|,)task=(?P<task>.{0,64}?),pid= ?(?P<pid>\d+) ?(?:,uid=(?P<uid>\d+))?", _F
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
        kind: oom_kill_summary, killed, kill_old, task_in, limit_of, oom_group, cpuset,
            memcg_stats, invoked or reaper.
        pid: The victim's pid (for invoked: None; the invoking task is `process`).
        process: The victim's (or, for invoked, the allocating task's) comm.
        prefix: "Memory cgroup out of memory", "Out of memory", ... before Kill(ed) process.
        constraint: CONSTRAINT_MEMCG, CONSTRAINT_NONE, ... from the oom-kill: summary.
        task_memcg: The victim's memory cgroup (summary) or the Task-in task path.
        oom_memcg: The cgroup whose limit was hit (summary) or the Task-in limit path.
        global_oom: The summary says global_oom (host-wide exhaustion).
        cpuset: The summary's (or cpuset line's) cpuset (on cgroup v1 docker, the id).
        group: The cgroup of an oom_group line, or the path of a memcg_stats line.
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
    group: str = ""

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
        task_memcg=clean_cgroup_path(fields.get("task_memcg", "")),
        oom_memcg=clean_cgroup_path(fields.get("oom_memcg", "")),
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
    if m := _LIMIT_OF.match(text):
        return OomLine(kind="limit_of", text=text, oom_memcg=clean_cgroup_path(m["limit"]))
    if m := _OOM_GROUP.search(text):
        return OomLine(kind="oom_group", text=text, group=clean_cgroup_path(m["group"]))
    if m := _MEMCG_STATS.match(text):
        return OomLine(kind="memcg_stats", text=text, group=clean_cgroup_path(m["path"]))
    if _PATH_TAIL.match(text):
        return OomLine(kind="path_tail", text=text, group=text)
    if m := _CPUSET.match(text):
        return OomLine(kind="cpuset", text=text, process=m["comm"].strip(), cpuset=m["cpuset"])
    lowered = text.lower()
    if "oom" not in lowered and "process" not in lowered and "Task in" not in text:
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
        return OomLine(
            kind="task_in",
            text=text,
            task_memcg=clean_cgroup_path(m["task"]),
            oom_memcg=clean_cgroup_path(m["limit"] or ""),
        )
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


def clean_cgroup_path(path: str) -> str:
    """A cgroup path as the kernel meant it: the glued message after it cut off.

    pr_cont lines run into the next message ("/docker/<id>memory: usage ..."): a path that
    holds a container id ends at the id (or its ``.scope``). A trailing ``/`` or ``:`` goes.
    """
    if not isinstance(path, str):
        return ""
    path = path[:_MAX_LINE].strip()
    glued = _GLUED_PATH.match(path)
    if glued is not None:
        path = glued["path"]
    if len(path) > 1:
        path = path.rstrip("/:,")
    return path

"""One row per OOM kill, however many sources reported it.

A kill reaches the journal several times: the kernel's lines (an ``oom_kill`` record, once per
kill, maybe twice when replayed), docker's ``oom`` event (cgroup v1 fires it each time the
limit is hit: about ten per kill were seen on the lab), gunicorn's "Worker ... SIGKILL" line,
and memory.events where a source reads it. They are matched by container and time (and pid
where the pid means the same thing: gunicorn prints the pid inside the container's namespace,
the kernel the host's), and each kill keeps which sources saw it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from incident_console.domain.events import OomKill, event_from_record
from incident_console.domain.oom_scope import kill_scope, scope_sentence
from incident_console.report.model import Kill, when
from incident_console.report.projects import Container, project_of

#: Reports of one container this close in time (seconds) to a kill's reports are that kill:
#: dmesg stamps are placed from the boot time and docker stamps events itself, a second or two
#: apart; two kills of one container seconds apart are told apart by the kernel's pids.
MATCH_S = 3.0
#: The sources a kill can be reported by, in the order the report names them.
SOURCES = ("kernel", "docker", "gunicorn", "memory.events")
_PID = re.compile(r"pid[:\s]+(\d+)", re.IGNORECASE)


@dataclass(slots=True)
class _Cluster:
    key: str
    time: float
    last: float
    sources: list[str] = field(default_factory=list)
    kernel: dict[str, Any] | None = None
    first: dict[str, Any] = field(default_factory=dict)
    pid: int = 0
    reports: int = 0

    def near(self, t: float) -> bool:
        return self.time - MATCH_S <= t <= self.last + MATCH_S

    def add(self, source: str, record: dict[str, Any]) -> None:
        if source not in self.sources:
            self.sources.append(source)
        self.last = max(self.last, when(record))
        self.reports += 1


def _source(record: dict[str, Any]) -> str | None:
    """Which source a record is a kill report of, or None when it is not one."""
    kind = record.get("kind")
    if kind == "oom_kill":
        origin = str(record.get("source") or "")
        if "docker" in origin:
            return "docker"
        # The cgroups' counters (v2 memory.events, v1 memory.oom_control, the host's vmstat)
        # carry no pid: they join the kernel's record of the kill when there is one.
        counted = ("memory.events", "memory.oom_control", "vmstat")
        return "memory.events" if any(c in origin for c in counted) else "kernel"
    if kind == "container_event" and record.get("action") == "oom":
        return "docker"
    if kind == "log" and record.get("signal") == "worker_killed":
        return "gunicorn"
    return None


def is_kill_report(record: dict[str, Any]) -> bool:
    """True for a record that reports a kill (the timeline shows the kill, not each report)."""
    return _source(record) is not None


def _key(record: dict[str, Any], by_name: dict[str, str]) -> str:
    field_name = "container_id" if record.get("kind") == "oom_kill" else "id"
    cid = str(record.get(field_name) or "")
    if cid:
        return cid
    name = str(record.get("container") or record.get("name") or "")
    return by_name.get(name, f"name:{name}" if name else "host")


def _pid(record: dict[str, Any], source: str) -> int:
    if source == "gunicorn":
        found = _PID.search(str(record.get("text", "")))
        return int(found[1]) if found else 0
    pid = record.get("pid")
    return pid if isinstance(pid, int) and not isinstance(pid, bool) else 0


def deduplicate(records: list[dict[str, Any]], containers: dict[str, Container]) -> list[Kill]:
    """The kills the records report, one per kill, in time order (records in time order)."""
    by_name = {c.name: cid for cid, c in containers.items() if c.name}
    clusters: list[_Cluster] = []
    # Per host and container: a host's own kills (no container) stay apart from another's.
    by_key: dict[tuple[str, str], list[_Cluster]] = {}
    reports = [(r, s) for r in records if (s := _source(r)) is not None]
    # The kernel's records first: each is a kill (its pid tells two close kills apart); the
    # others then join the kill they report.
    reports.sort(key=lambda item: item[1] != "kernel")
    for record, source in reports:
        key, t, pid = _key(record, by_name), when(record), _pid(record, source)
        group = by_key.setdefault((str(record.get("host") or ""), key), [])
        same = [c for c in group if c.near(t)]
        if source == "kernel":
            # The same pid again is the same kill reported twice (replayed, then live).
            match = next((c for c in same if c.pid == pid or not c.pid or not pid), None)
        else:
            # The pid first (same namespace when the journal was written by one source), then
            # the nearest kill this source has not reported yet, then any near one.
            match = next((c for c in same if pid and c.pid == pid), None)
            fresh = [c for c in same if source not in c.sources]
            pool = fresh or same
            if match is None and pool:
                match = min(pool, key=lambda c: abs(c.time - t))
        if match is None:
            match = _Cluster(key=key, time=t, last=t, first=record, pid=pid)
            clusters.append(match)
            group.append(match)
        if source == "kernel" and match.kernel is None:
            match.kernel, match.time, match.pid = record, t, pid or match.pid
        match.add(source, record)
    kills = [_kill(c, containers) for c in clusters]
    return sorted(kills, key=lambda k: (k.time, k.container, k.pid))


def _kill(cluster: _Cluster, containers: dict[str, Container]) -> Kill:
    record = cluster.kernel or cluster.first
    known = containers.get(cluster.key)
    # The inspect record's name first: a kill's own may be compose's `<id>_` rename.
    name = (known.name if known else "") or str(record.get("container") or record.get("name") or "")
    service = str(record.get("service") or (known.service if known else ""))
    limit = known.limit_bytes if known else 0
    constraint = str(record.get("constraint") or "") if cluster.kernel else ""
    if not constraint:
        # docker's oom event is the cgroup's limit notification: no global OOM sends one.
        constraint = "limit" if "docker" in cluster.sources and limit else "unknown"
    rss = record.get("anon_rss_bytes") if cluster.kernel else None
    cid = "" if cluster.key.startswith("name:") or cluster.key == "host" else cluster.key
    process = str(record.get("process") or "") if cluster.kernel else ""
    if not process and "gunicorn" in cluster.sources:
        process = "gunicorn"
    return Kill(
        time=cluster.time,
        host=str(record.get("host") or ""),
        container_id=cid,
        container=name or (cid[:12] if cid else ""),
        service=service,
        project=known.project if known else project_of(name, service),
        process=process,
        pid=cluster.pid,
        anon_rss_bytes=rss if isinstance(rss, int) and not isinstance(rss, bool) else None,
        constraint=constraint,
        limit_bytes=limit,
        replayed=bool(cluster.kernel and cluster.kernel.get("replayed")),
        sources=tuple(s for s in SOURCES if s in cluster.sources),
        reports=cluster.reports,
        **_scope(cluster.kernel),
    )


def _scope(record: dict[str, Any] | None) -> dict[str, str]:
    """The kernel record's scope and its words, as every view says them ({} without one)."""
    if record is None:
        return {}
    try:
        kill = event_from_record(record)
    except ValueError:
        return {}  # a record of an older or foreign shape: the constraint still says a little
    if not isinstance(kill, OomKill) or not kill_scope(kill):
        return {}
    return {"scope": kill_scope(kill), "scope_text": scope_sentence(kill)}

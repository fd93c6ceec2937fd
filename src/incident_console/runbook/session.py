"""A headless runbook session: start a monitor, let it see the host, discover the variables.

Used by `runbook run` (and usable by anything else that has no UI). `runbook undo` replays the
journal's file changes newest first.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from pathlib import Path
from typing import Any

from incident_console.monitor.host_monitor import HostMonitor
from incident_console.monitor.journal import operator, read_journal
from incident_console.monitor.state import ContainerView
from incident_console.runbook.actions import restore_backup
from incident_console.runbook.compose_files import split_files
from incident_console.runbook.recycling import SinceStart, health_paths, is_request
from incident_console.runbook.schema import Runbook
from incident_console.runbook.variables import Variables, discover
from incident_console.sources.inventory import parse_docker_time
from incident_console.transport.base import TransportError

#: Seconds of process frames wanted before proposing (frames come every 5 s).
GROWTH_SPAN_S = 10.0
#: Seconds of collecting before a proposal from the samples is taken (under load: hundreds
#: of requests).
PROPOSAL_S = 25.0
#: Under traffic too thin to measure yet (a slow server, a quiet hour), measuring goes on this
#: much longer at most, while the service keeps serving (an idle one is not waited for).
PATIENT_S = 180.0
#: "Keeps serving": a request of the service logged within this many seconds.
TRAFFIC_S = 15.0
#: At most this many lines of a container's log are read to count its requests since start.
SINCE_START_LINES = 50_000
#: A log whose first line comes later than this after the start was cut by that limit.
SINCE_START_GAP_S = 60.0


def _listing(monitor: HostMonitor) -> bool:
    """Whether docker's first list of the containers is still awaited (not failed: a failure
    is said by the variables' reasons): on a server out of memory it can take a minute."""
    return "docker_events" not in monitor.state.sources


def _seen_enough(monitor: HostMonitor, service_hint: str, project: str) -> bool:
    state = monitor.state
    if _listing(monitor) or "kernel_log" not in state.sources:
        return False
    if monitor.probes and not any(state.probes.values()):
        return False
    views = [v for v in state.containers.values() if not v.gone and v.info.state == "running"]
    if not views:
        return True
    target = [
        v
        for v in views
        if v.info.service == service_hint and (not project or v.info.project == project)
    ] or views
    # The service's access lines give its growth per request (max_requests comes from it):
    # the follower starts with the recent tail, timestamps included.
    monitor.follow_logs([v.info.id for v in target])
    # Process RSS arrives every few seconds: the proposals come from it, and a worker's growth
    # needs frames spanning some seconds.
    return all(v.samples for v in target) and any(_frames_span(v) for v in target)


_WARMING: set[asyncio.Task[None]] = set()


async def _compose_command(monitor: HostMonitor) -> None:
    """The host's compose front end, detected once and cached by the monitor (errors are the
    recreate's to say, in its place)."""
    with contextlib.suppress(Exception):
        await monitor.compose_command()


def _serving(monitor: HostMonitor, service: str, project: str) -> bool:
    """Whether the service logged a request (not a health check) in the last TRAFFIC_S."""
    state = monitor.state
    views = [
        v
        for v in state.containers.values()
        if not v.gone and v.info.service == service and (not project or v.info.project == project)
    ]
    ids = {v.info.id for v in views}
    if not ids:
        return False
    skip = health_paths(views)
    recent = time.time() - TRAFFIC_S
    # The newest lines, in arrival order (a container's replayed tail may come in late).
    for line in itertools.islice(reversed(state.logs), 5000):
        if line.time >= recent and line.id in ids and is_request(line.text, skip):
            return True
    return False


def _frames_span(view: ContainerView) -> bool:
    frames = view.process_history
    return len(frames) >= 3 and frames[-1].time - frames[0].time >= GROWTH_SPAN_S


def host_address(monitor: HostMonitor) -> str:
    """The address the console reaches the host at ('' when local): a discovered health URL
    on a port published on the server's loopback is reachable only when that is loopback too."""
    host = monitor.host
    if getattr(host, "is_local", False):
        return ""
    return str(getattr(host, "host", "") or "")


def _discover(
    monitor: HostMonitor,
    runbook: Runbook,
    overrides: dict[str, str],
    since_start: SinceStart | None = None,
    compose_texts: dict[str, str | None] | None = None,
) -> Variables:
    return discover(
        monitor.state,
        runbook,
        overrides,
        host_name=monitor.host.name,
        probes=list(monitor.probes),
        host_address=host_address(monitor),
        since_start=since_start,
        compose_texts=compose_texts,
    )


async def read_compose_files(monitor: HostMonitor, found: Variables) -> dict[str, str | None]:
    """The project's compose files as the host has them (None: unreadable), in order: which
    one holds the service's settings is read from them (runbook/compose_files.py)."""
    texts: dict[str, str | None] = {}
    for path in split_files(found.values.get("compose_files", "")):
        try:
            texts[path] = await monitor.host.read_text(path)
        except (OSError, TransportError):
            texts[path] = None
    return texts


async def requests_since_start(monitor: HostMonitor, found: Variables) -> SinceStart | None:
    """The service container's requests since it started, from its whole log (None when the
    log does not reach back to the start: then the count would prove nothing).

    At idle the samples have no request to measure the growth over; the log since the start
    and what the workers hold now (and held when killed) still say how much a request keeps.
    """
    view = monitor.state.container_by_name(found.values.get("container", ""))
    if view is None or not view.info.started_at or view.info.state != "running":
        return None
    started = view.info.started_at
    skip = health_paths([view], [_path(found.values.get("health_url", ""))])
    try:
        data = await monitor.container_logs(
            view.info.id, since=int(started), tail=SINCE_START_LINES
        )
        lines = data.decode("utf-8", errors="replace").splitlines()
    except Exception:  # noqa: BLE001 - no count is no evidence, never a failed run
        return None
    stamps = [parse_docker_time(line.split(" ", 1)[0]) for line in lines[:1]]
    if not lines or stamps[0] is None or stamps[0] - started > SINCE_START_GAP_S:
        return None  # the tail cut the log: it does not reach back to the start
    texts = [line.split(" ", 1)[1] if " " in line else "" for line in lines]
    boots = sum("Booting worker with pid" in text for text in texts)
    return SinceStart(
        container_id=view.info.id,
        requests=sum(is_request(text, skip) for text in texts),
        recycled=any("Autorestarting worker" in text for text in texts),
        boots=boots or None,
    )


def _path(url: str) -> str:
    rest = url.split("://", 1)[-1]
    return "/" + rest.partition("/")[2].split("?")[0] if "/" in rest else ""


async def gather(
    monitor: HostMonitor,
    runbook: Runbook,
    overrides: dict[str, str],
    *,
    max_s: float = 45.0,
    min_s: float = 3.0,
) -> Variables:
    """Let the monitor collect for `min_s`..`max_s` seconds, then discover the variables.

    It stops early once the fix can be proposed (the growth per request is measured), or
    when nothing more can be learnt by waiting (the project is ambiguous: the caller refuses).
    At idle it waits `max_s` for traffic, then the proposal says it was declined and why; while
    the service keeps serving, too few requests to measure yet, or docker has not listed the
    containers yet, up to PATIENT_S longer.
    """
    started = time.monotonic()
    hint = overrides.get("service", "backend")
    project = overrides.get("project", "")

    def elapsed() -> float:
        return time.monotonic() - started

    # What a recreate will need, asked now (as the walkthrough does when it opens): on a
    # server out of memory `compose version` takes tens of seconds.
    warm = asyncio.create_task(_compose_command(monitor), name="compose-detect")
    _WARMING.add(warm)  # held until done (the recreate, later, awaits the same detection)
    warm.add_done_callback(_WARMING.discard)

    def waiting() -> bool:
        if elapsed() < max_s:
            return True
        return elapsed() < max_s + PATIENT_S and (
            _listing(monitor) or _serving(monitor, hint, project)
        )

    while waiting():
        if elapsed() >= min_s:
            kills = [k.service for k in monitor.state.oom_kills if k.service]
            if _seen_enough(monitor, kills[-1] if kills else hint, project):
                found = _discover(monitor, runbook, overrides)
                if found.ambiguous:
                    return found
                # A first proposal may rest on a few seconds of requests: a little longer
                # under load makes it rest on a few hundred.
                if found.values.get("max_requests") and elapsed() >= PROPOSAL_S:
                    return await _with_files(monitor, runbook, overrides, found)
        await asyncio.sleep(0.5)
    found = _discover(monitor, runbook, overrides)
    if found.values.get("max_requests") or found.ambiguous:
        return await _with_files(monitor, runbook, overrides, found)
    since = await requests_since_start(monitor, found)
    return await _with_files(monitor, runbook, overrides, found, since)


async def _with_files(
    monitor: HostMonitor,
    runbook: Runbook,
    overrides: dict[str, str],
    found: Variables,
    since: SinceStart | None = None,
) -> Variables:
    """`found` again with the compose files read, when there are several to choose from."""
    if found.ambiguous or (len(split_files(found.values.get("compose_files", ""))) < 2
                           and since is None):  # fmt: skip
        return found
    texts = await read_compose_files(monitor, found)
    return _discover(monitor, runbook, overrides, since, texts)


async def stop_monitor(monitor: HostMonitor, limit_s: float = 60.0) -> bool:
    """Stop the monitor; True when it stopped within `limit_s` (HostMonitor.stop's deadline)."""
    return await monitor.stop(deadline_s=limit_s)


def file_changes(journal: Path) -> list[dict[str, Any]]:
    """The journal's file_change records, newest first (the order to undo them in).

    Raises:
        ValueError: a file_change record lacks what an undo needs (one line, naming it).
    """
    records = [r for r in read_journal(journal) if r.get("kind") == "file_change"]
    for number, record in enumerate(records, 1):
        missing = [
            k for k in ("path", "backup", "sha256_before") if not isinstance(record.get(k), str)
        ]
        if missing or not record["path"] or not record["backup"]:
            raise ValueError(
                f"{journal}: file_change record #{number} has no {', '.join(missing or ['path'])}"
                ": not a journal this console wrote, nothing restored"
            )
    return sorted(records, key=lambda r: float(r.get("time") or r.get("ts") or 0), reverse=True)


async def undo_changes(monitor: HostMonitor, changes: list[dict[str, Any]]) -> list[str]:
    """Restore each changed file from its backup, newest change first. Returns what was done.

    Each restore is a change through the monitor's door: a read-only monitor refuses the
    first one (ReadOnlyError) and nothing is copied.
    """
    done: list[str] = []
    for change in changes:
        await restore_backup(
            monitor,
            str(change["path"]),
            str(change["backup"]),
            str(change["sha256_before"]),
        )
        if monitor.journal is not None:
            # The same record the console's undo writes: the report's timeline shows it.
            monitor.journal.write(
                {"kind": "file_restore", "host": monitor.host.name, "who": operator(),
                 "path": str(change["path"]), "backup": str(change["backup"]),
                 "time": time.time()}
            )  # fmt: skip
        done.append(f"restored {change['path']} from {change['backup']}")
    return done

"""A headless runbook session: start a monitor, let it see the host, discover the variables.

Used by `runbook run` (and usable by anything else that has no UI). `runbook undo` replays the
journal's file changes newest first.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from incident_console.monitor.host_monitor import HostMonitor
from incident_console.monitor.journal import operator, read_journal
from incident_console.monitor.state import ContainerView
from incident_console.runbook.actions import restore_backup
from incident_console.runbook.schema import Runbook
from incident_console.runbook.variables import Variables, discover

#: Seconds of process frames wanted before proposing (frames come every 5 s).
GROWTH_SPAN_S = 10.0


def _seen_enough(monitor: HostMonitor, service_hint: str) -> bool:
    state = monitor.state
    if "docker_events" not in state.sources or "kernel_log" not in state.sources:
        return False
    if monitor.probes and not any(state.probes.values()):
        return False
    views = [v for v in state.containers.values() if not v.gone and v.info.state == "running"]
    if not views:
        return True
    target = [v for v in views if v.info.service == service_hint] or views
    # The service's access lines give its request rate (max_requests comes from it): the
    # follower starts with the recent tail, timestamps included.
    monitor.follow_logs([v.info.id for v in target])
    # Process RSS arrives every few seconds: the proposals come from it, and a worker's growth
    # rate needs frames spanning some seconds.
    return all(v.samples for v in target) and any(_frames_span(v) for v in target)


def _frames_span(view: ContainerView) -> bool:
    frames = view.process_history
    return len(frames) >= 3 and frames[-1].time - frames[0].time >= GROWTH_SPAN_S


async def gather(
    monitor: HostMonitor,
    runbook: Runbook,
    overrides: dict[str, str],
    *,
    max_s: float = 30.0,
    min_s: float = 3.0,
) -> Variables:
    """Let the monitor collect for `min_s`..`max_s` seconds, then discover the variables."""
    started = time.monotonic()
    hint = overrides.get("service", "backend")
    while time.monotonic() - started < max_s:
        if time.monotonic() - started >= min_s:
            kills = [k.service for k in monitor.state.oom_kills if k.service]
            if _seen_enough(monitor, kills[-1] if kills else hint):
                break
        await asyncio.sleep(0.5)
    return discover(
        monitor.state,
        runbook,
        overrides,
        host_name=monitor.host.name,
        probes=list(monitor.probes),
    )


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

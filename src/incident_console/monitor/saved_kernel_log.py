"""Diagnose from saved kernel text: its kills in the state, matched to the host's containers.

`diagnose --kernel-log FILE` reads the kills of a support bundle, `journalctl -k` output or a
colleague's paste instead of the live kernel log, and attributes what it can: a container id
the host still runs (or ran while watched) gets its name, service and project, and a kill at
a shared limit or the host's its culprit where the samples cover the minutes before it.
"""

from __future__ import annotations

import dataclasses
import time

from incident_console.domain.events import OomKill, SourceStatus
from incident_console.domain.oom import attribute
from incident_console.domain.oom_scope import (
    CULPRIT_WINDOW_S,
    HOST,
    SHARED_LIMIT,
    enrich_kill,
    kill_scope,
)
from incident_console.monitor.state import HostState

__all__ = ["with_saved_kernel_log"]


def with_saved_kernel_log(
    state: HostState, kills: list[OomKill], label: str, *, reachable: str = ""
) -> HostState:
    """The state with the kills of saved kernel text in place of the live kernel log's.

    Each kill is matched to the host's containers by id where the host was reached (its name,
    service, project; its culprit where the kill falls within the samples), else kept with the
    ids and cgroups the kernel printed.

    Args:
        state: What the monitor saw of the host (maybe nothing: it was not reached).
        kills: The kills read from the file (`domain.oom_text.kills_from_text`).
        label: The file, for the kernel log source's line.
        reachable: Why the host's containers are unknown ('' when they are known).
    """
    infos = {cid: view.info for cid, view in state.containers.items()}
    histories = {
        cid: [(s.time, s.memory_used_bytes) for s in view.samples]
        for cid, view in state.containers.items()
    }
    names = {
        cid: view.info.service or view.info.name.lstrip("/") or cid[:12]
        for cid, view in state.containers.items()
    }
    # A limit of its own is docker's HostConfig.Memory (a sample may show an ancestor's).
    limited = [cid for cid, view in state.containers.items() if view.info.memory_limit_bytes > 0]
    state.oom_kills.clear()
    for kill in kills:
        kill = attribute(kill, infos)
        if not kill.container and kill.container_id:
            known = state.container_name(kill.container_id)
            if known is not None:
                kill = dataclasses.replace(
                    kill, container=known.name, service=kill.service or known.service
                )
        if kill_scope(kill) in (SHARED_LIMIT, HOST) and infos:
            kill = enrich_kill(
                kill,
                histories=histories,
                cgroups={},
                names=names,
                limited=limited,
                window_s=CULPRIT_WINDOW_S,
            )
        state.oom_kills.append(kill)
    detail = f"read from {label} ({len(kills)} kill(s))"
    if reachable:
        detail += f"; containers not matched: {reachable}"
    state.sources["kernel_log"] = SourceStatus(
        time=time.time(), source="kernel_log", method="file", ok=True, detail=detail
    )
    return state

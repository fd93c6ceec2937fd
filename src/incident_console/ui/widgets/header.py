"""A host's header line and the fleet row (one line per host when several are watched)."""

from __future__ import annotations

from collections.abc import Sequence

from textual.content import Content
from textual.widgets import Static

from incident_console.domain.oom_sources import kernel_log_closed, oom_sources_line
from incident_console.transport.base import LinkState
from incident_console.ui import format as fmt
from incident_console.ui.protocol import MonitorLike

LINK_STYLES = {
    LinkState.CONNECTED: "bold $success",
    LinkState.CONNECTING: "$warning",
    LinkState.STALE: "bold $stale",
    LinkState.RECONNECTING: "bold $warning",
    LinkState.FAILED: "bold $error",
    LinkState.CLOSED: "$text-muted",
}


def link_text(monitor: MonitorLike, now: float) -> Content:
    """'connected', 'stale since 03:12:09', 'reconnecting in 4 s', 'failed: reason'."""
    link = monitor.host.state
    return Content.styled(fmt.clean(link.describe(now)), LINK_STYLES.get(link.state, ""))


class HostHeader(Static):
    """Host, connection state, the OOM sources in use, stats method, READ-ONLY badge."""

    DEFAULT_CSS = """
    HostHeader { height: 1; background: $panel; padding: 0 1; }
    """

    def show(self, monitor: MonitorLike, now: float, read_only: bool) -> None:
        """Render the header for `monitor` at `now`."""
        state = monitor.state
        parts: list[Content | tuple[str, str] | str] = [
            (fmt.clean(monitor.host.name), "bold"),
            "  ",
            link_text(monitor, now),
        ]
        # Which OOM sources are in use; the OOM pane says why the kernel log is closed.
        closed = kernel_log_closed(state.sources)
        parts += ["  ", (fmt.clean(oom_sources_line(state.sources)), "$warning" if closed else "")]
        source = state.sources.get("stats")
        if source is None:
            parts += ["  ", ("stats: -", "$text-muted")]
        else:
            text = f"stats: {fmt.clean(source.method)}"
            if not source.ok and source.detail:
                text += f" ({fmt.clean(source.detail)})"
            parts += ["  ", (text, "" if source.ok else "$warning")]
        if (files := state.sources.get("files")) is not None:  # no SFTP: "files: over exec"
            parts += ["  ", f"files: over {fmt.clean(files.method)}"]
        if read_only:
            parts += ["  ", (" READ-ONLY ", "bold reverse $read-only")]
        fmt.update_static(self, Content.assemble(*parts))


def fleet_line(monitor: MonitorLike, now: float) -> Content:
    """One host of the fleet row: memory %, OOM kills in the last hour, unhealthy, link."""
    state = monitor.state
    if state.memory:
        mem = state.memory[-1]
        used = mem.total_bytes - mem.available_bytes
        memory = f"mem {used / mem.total_bytes * 100:.0f}%" if mem.total_bytes else "mem -"
    else:
        memory = "mem -"
    if not state.is_live:
        memory += " (stale)"
    kills = len(state.oom_kills_since(now - 3600))
    unhealthy = sum(
        1 for v in state.containers.values() if v.info.health == "unhealthy" and not v.gone
    )
    return Content.assemble(
        (fmt.clean(monitor.host.name), "bold"),
        f"  {memory}  ",
        (f"oom/h {kills}", "bold $oom" if kills else ""),
        "  ",
        (f"unhealthy {unhealthy}", "bold $unhealthy" if unhealthy else ""),
        "  ",
        link_text(monitor, now),
    )


class FleetRow(Static):
    """Every host at a glance, one segment each."""

    DEFAULT_CSS = """
    FleetRow { height: auto; background: $boost; padding: 0 1; }
    """

    def show(self, monitors: Sequence[MonitorLike], now: float) -> None:
        """Render one segment per host."""
        fmt.update_static(self, Content(" │ ").join(fleet_line(m, now) for m in monitors))

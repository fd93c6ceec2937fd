"""Which OOM sources a host's console is using, in one short line (the header, diagnose).

"OOM from: kernel log (dmesg) · cgroup counters · docker events", or where dmesg is closed to
the user "OOM from: kernel log closed (dmesg_restrict=1) · cgroup counters · docker events".
"""

from __future__ import annotations

from collections.abc import Mapping

from incident_console.domain.events import SourceStatus

SEPARATOR = " · "


def oom_sources(sources: Mapping[str, SourceStatus]) -> list[str]:
    """The OOM sources in use, from the sources' last statuses (kernel log first)."""
    out: list[str] = []
    kernel = sources.get("kernel_log")
    if kernel is None:
        out.append("kernel log (starting)")
    elif kernel.ok:
        out.append(f"kernel log ({kernel.method})")
    else:
        out.append(
            "kernel log closed (dmesg_restrict=1)"
            if "dmesg_restrict" in kernel.detail
            else "kernel log closed"
        )
    counters = sources.get("oom_counters")
    if counters is not None and counters.ok:
        out.append("cgroup counters")
    docker = sources.get("docker_events")
    if docker is not None and docker.ok:
        out.append("docker events")
    return out


def oom_sources_line(sources: Mapping[str, SourceStatus]) -> str:
    """The one line: 'OOM from: kernel log (dmesg) · cgroup counters · docker events'."""
    return "OOM from: " + SEPARATOR.join(oom_sources(sources))


def kernel_log_closed(sources: Mapping[str, SourceStatus]) -> bool:
    """True when the kernel log said it cannot be read."""
    kernel = sources.get("kernel_log")
    return kernel is not None and not kernel.ok

"""The one line that says which OOM sources are in use (the console header, diagnose)."""

from __future__ import annotations

from incident_console.domain.events import SourceStatus
from incident_console.domain.oom_sources import oom_sources_line
from incident_console.monitor.diagnosis import diagnose_state
from incident_console.monitor.state import HostState

DENIED = (
    "dmesg denied (kernel.dmesg_restrict=1); journalctl: No journal files were found.: no"
    " kernel log; kills from the cgroups' OOM counters where readable (no pid) and docker oom"
    " events (they miss worker kills and host-wide kills)"
)


def _status(source: str, method: str, ok: bool = True, detail: str = "") -> SourceStatus:
    return SourceStatus(time=1.0, source=source, method=method, ok=ok, detail=detail)


def _sources(*statuses: SourceStatus) -> dict[str, SourceStatus]:
    return {s.source: s for s in statuses}


def test_the_kernel_log_open_and_every_source_in_use() -> None:
    sources = _sources(
        _status("kernel_log", "dmesg"),
        _status("oom_counters", "memory.oom_control"),
        _status("docker_events", "docker-events"),
    )
    assert oom_sources_line(sources) == (
        "OOM from: kernel log (dmesg) · cgroup counters · docker events"
    )


def test_the_kernel_log_closed_as_the_deploy_user_sees_it() -> None:
    sources = _sources(
        _status("kernel_log", "docker-events", ok=False, detail=DENIED),
        _status("oom_counters", "memory.events"),
        _status("docker_events", "docker-events"),
    )
    assert oom_sources_line(sources) == (
        "OOM from: kernel log closed (dmesg_restrict=1) · cgroup counters · docker events"
    )


def test_sources_not_in_use_are_not_named() -> None:
    down = _status("docker_events", "docker-events", ok=False, detail="docker: refused")
    assert oom_sources_line(_sources(_status("kernel_log", "journalctl"), down)) == (
        "OOM from: kernel log (journalctl)"
    )
    assert oom_sources_line({}) == "OOM from: kernel log (starting)"
    closed = _status("kernel_log", "none", ok=False, detail="dmesg not installed")
    assert oom_sources_line(_sources(closed)) == "OOM from: kernel log closed"


def test_diagnose_prints_the_same_line() -> None:
    state = HostState("h")
    for status in (
        _status("kernel_log", "docker-events", ok=False, detail=DENIED),
        _status("oom_counters", "memory.events"),
        _status("docker_events", "docker-events"),
    ):
        state.apply(status)
    findings = [(f.severity, f.summary) for f in diagnose_state(state, now=2.0).findings]
    assert ("info", oom_sources_line(state.sources)) in findings

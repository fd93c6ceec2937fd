"""diagnose without the kernel log (dmesg denied, no journalctl) must not call a host whose
backend docker reports OOM-killed `healthy`: docker `oom` events count, and the blindness is a
warning, not an info line."""

from __future__ import annotations

from incident_console.domain.events import ContainerEvent, ContainerInfo, SourceStatus
from incident_console.monitor.diagnosis import diagnose_state, scope_to_project
from incident_console.monitor.state import HostState

NOW = 1796050000.0
CID = "c" * 64


def _state(kernel_ok: bool) -> HostState:
    state = HostState(name="prod", link="connected")
    state.apply(ContainerInfo(time=NOW - 100, id=CID, name="icl-backend-1", state="running",
                              project="icl", service="backend", memory_limit_bytes=1 << 28))  # fmt: skip
    state.apply(SourceStatus(time=NOW - 100, source="kernel_log",
                             method="dmesg" if kernel_ok else "docker-events", ok=kernel_ok,
                             detail="" if kernel_ok else "dmesg: Operation not permitted"))  # fmt: skip
    state.apply(ContainerEvent(time=NOW - 30, id=CID, name="icl-backend-1", service="backend",
                               action="oom"))  # fmt: skip
    return state


def test_docker_oom_events_are_critical_without_the_kernel_log() -> None:
    diagnosis = diagnose_state(_state(kernel_ok=False), now=NOW)
    assert diagnosis.verdict == "problems"
    summaries = [(f.severity, f.summary) for f in diagnosis.findings]
    assert (
        "critical",
        "1 docker oom event(s) in backend since boot (kernel log unavailable)",
    ) in summaries
    assert any(s == "warning" and "dmesg: Operation not permitted" in t for s, t in summaries)
    scoped = diagnose_state(scope_to_project(_state(kernel_ok=False), "icl"), now=NOW)
    assert scoped.verdict == "problems"


def test_with_the_kernel_log_docker_events_do_not_double_count() -> None:
    diagnosis = diagnose_state(_state(kernel_ok=True), now=NOW)
    assert not any("docker oom event" in f.summary for f in diagnosis.findings)

"""The container detail's cgroup v2 facts: memory.peak and memory.pressure, or why absent."""

from __future__ import annotations

from types import SimpleNamespace

from incident_console.domain.events import ContainerInfo, ContainerSample, SourceStatus
from incident_console.monitor.state import HostState
from incident_console.ui.screens.detail import ContainerDetailScreen

CID = "d" * 64


def _facts(stats_detail: str, peak: int | None, some: float | None) -> list[str]:
    state = HostState("h")
    state.apply(SourceStatus(time=1.0, source="stats", method="awk-sampler", detail=stats_detail))
    state.apply(ContainerInfo(time=1.0, id=CID, name="isr-backend-1", state="running"))
    state.apply(ContainerSample(time=2.0, id=CID, memory_used_bytes=1 << 20,
                                memory_limit_bytes=0, cpu_percent=0.0,
                                memory_peak_bytes=peak, memory_pressure_some=some))  # fmt: skip
    screen = ContainerDetailScreen(SimpleNamespace(state=state), CID, read_only=True)  # type: ignore[arg-type]
    return screen._v2_facts(state.containers[CID])


def test_v2_shows_peak_and_pressure() -> None:
    lines = _facts("awk-sampler (awk cgroup v2, systemd, one process)", 66912256, 12.34)
    assert lines == [("memory peak", "64M"), ("mem pressure", "some 12.34% (avg10)")]


def test_v1_says_not_available() -> None:
    lines = _facts("awk-sampler (mawk cgroup v1, cgroupfs, one process)", None, None)
    assert lines == [("memory peak", "n/a on cgroup v1"), ("mem pressure", "n/a on cgroup v1")]


def test_a_parent_cgroups_limit_is_said_as_shared_not_as_its_own() -> None:
    state = HostState("h")
    state.apply(ContainerInfo(time=1.0, id=CID, name="isr-db-1", state="running",
                              cgroup_parent="/incident-console-lab-isr"))  # fmt: skip
    state.apply(ContainerSample(time=2.0, id=CID, memory_used_bytes=1 << 20,
                                memory_limit_bytes=512 << 20, cpu_percent=0.0))  # fmt: skip
    screen = ContainerDetailScreen(SimpleNamespace(state=state), CID, read_only=True)  # type: ignore[arg-type]
    facts = dict(screen.facts(state.containers[CID]))
    assert facts["memory limit"] == "none of its own; 512M shared by /incident-console-lab-isr"

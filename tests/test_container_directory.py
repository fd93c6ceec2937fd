"""The sources' narrow view of a host's containers: refs (ids, names, compose labels, state,
pid) and a version counter, not the monitor's whole HostState."""

from __future__ import annotations

import re
from pathlib import Path

from incident_console.domain.events import ContainerGone, ContainerInfo
from incident_console.monitor.state import HostState
from incident_console.sources.inventory import ContainerDirectory, ContainerRef

SOURCES = Path(__file__).resolve().parents[1] / "src" / "incident_console" / "sources"
CID = "e" * 64


def test_refs_follow_the_state_and_say_what_a_source_needs() -> None:
    state = HostState("h")
    directory = ContainerDirectory(state)
    assert directory.refs() == {} and directory.get(CID) is None
    state.apply(ContainerInfo(time=1.0, id=CID, name="isr-backend-1", state="running",
                              service="backend", project="isr", pid=4242, health="healthy"))  # fmt: skip
    assert directory.version == state.version
    assert directory.refs() == {
        CID: ContainerRef(
            id=CID,
            name="isr-backend-1",
            service="backend",
            project="isr",
            state="running",
            health="healthy",
            pid=4242,
        )  # fmt: skip
    }
    first = directory.refs()
    assert directory.refs() is first  # nothing moved: not rebuilt
    state.apply(ContainerGone(time=2.0, id=CID))
    ref = directory.get(CID)
    assert ref is not None and ref.gone and directory.refs()[CID].gone


def test_the_stats_and_docker_sources_read_containers_only_through_the_view() -> None:
    for name in ("stats.py", "docker_events.py", "cgroup_folders.py"):
        text = (SOURCES / name).read_text()
        assert not re.search(r"state\.containers", text), f"{name} reads state.containers"

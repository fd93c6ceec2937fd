"""HostState stays bounded when containers come and go for days (a watch recreating a service,
`docker compose run` jobs): removed containers beyond GONE_KEPT are forgotten, oldest first."""

from __future__ import annotations

from incident_console.domain.events import ContainerGone, ContainerInfo, ContainerSample
from incident_console.monitor.state import GONE_KEPT, HostState


def test_removed_containers_do_not_pile_up() -> None:
    state = HostState(name="h")
    state.apply(ContainerInfo(time=0.0, id="live" * 16, name="db", state="running"))
    for i in range(GONE_KEPT * 4):
        cid = f"{i:064x}"
        state.apply(ContainerInfo(time=float(i), id=cid, name=f"job-{i}", state="running"))
        for t in range(20):
            state.apply(ContainerSample(time=i + t / 20, id=cid, memory_used_bytes=1,
                                        memory_limit_bytes=0, cpu_percent=0.0))  # fmt: skip
        state.apply(ContainerGone(time=i + 1.0, id=cid, name=f"job-{i}"))
    gone = [v for v in state.containers.values() if v.gone]
    assert len(gone) == GONE_KEPT
    assert "live" * 16 in state.containers  # the running one is never forgotten
    # The newest removed ones are kept (a kill just now can still be attributed).
    assert f"{GONE_KEPT * 4 - 1:064x}" in state.containers
    assert f"{0:064x}" not in state.containers

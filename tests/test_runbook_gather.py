"""How long a headless session measures: at idle `max_s`; while the service keeps serving,
too thinly to measure yet (a slow server), or docker has not listed the containers yet, longer;
and what the variables say when docker has not."""

from __future__ import annotations

import time
from types import SimpleNamespace

from incident_console.domain.events import ContainerInfo, LogLine, SourceStatus
from incident_console.monitor.state import HostState
from incident_console.runbook.loader import load_runbook
from incident_console.runbook.session import TRAFFIC_S, _listing, _serving
from incident_console.runbook.variables import discover

CID = "b" * 64
ACCESS = '127.0.0.1 - - [02/Dec/2026:01:57:25 +0000] "GET {path} HTTP/1.1" 200 2 "-" "lab"'


def _monitor(*lines: tuple[float, str]) -> SimpleNamespace:
    state = HostState("h")
    state.apply(ContainerInfo(time=1.0, id=CID, name="icl-backend-1", state="running",
                              project="icl", service="backend"))  # fmt: skip
    for when, text in lines:
        state.apply(LogLine(time=when, id=CID, container="icl-backend-1", text=text))
    return SimpleNamespace(state=state)


def test_a_recent_request_is_serving_a_health_check_or_an_old_one_is_not() -> None:
    now = time.time()
    item = ACCESS.format(path="/api/v1/items")
    assert _serving(_monitor((now - 2, item)), "backend", "icl")  # type: ignore[arg-type]
    assert not _serving(_monitor((now - TRAFFIC_S - 5, item)), "backend", "icl")  # type: ignore[arg-type]
    assert not _serving(_monitor((now - 2, item)), "backend", "shop")  # type: ignore[arg-type]
    assert not _serving(_monitor((now - 2, "[INFO] Booting worker with pid: 7")), "backend", "icl")  # type: ignore[arg-type]


def test_until_docker_lists_the_containers_the_reasons_say_so() -> None:
    # CI's VM after an OOM storm: every variable said "no running container of backend with
    # compose labels" while docker had not answered; the engineer must see which it was.
    runbook = load_runbook("oom-after-deploy")
    state = HostState("h")
    monitor = SimpleNamespace(state=state)
    assert _listing(monitor)  # type: ignore[arg-type]
    assert discover(state, runbook).why["project"] == "docker has not listed the containers yet"
    state.apply(SourceStatus(time=1.0, source="docker_events", method="docker-events", ok=False,
                             detail="docker: Read timed out. (read timeout=60); retrying in 4 s"))  # fmt: skip
    assert not _listing(monitor)  # type: ignore[arg-type]  # failed: said, not waited for
    assert discover(state, runbook).why["project"] == (
        "docker has not listed the containers: docker: Read timed out. (read timeout=60); "
        "retrying in 4 s"
    )
    state.apply(ContainerInfo(time=2.0, id="c" * 64, name="shop-db-1", state="running",
                              project="shop", service="db"))  # fmt: skip
    assert discover(state, runbook).why["project"] == "no container of backend on the host"
    state.apply(ContainerInfo(time=3.0, id=CID, name="backend", state="exited", service="backend"))
    assert discover(state, runbook).why["project"] == (
        "the containers of backend have no compose labels"
    )

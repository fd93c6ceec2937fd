"""How long a headless session measures: at idle `max_s`; while the service keeps serving,
too thinly to measure yet (a slow server), longer."""

from __future__ import annotations

import time
from types import SimpleNamespace

from incident_console.domain.events import ContainerInfo, LogLine
from incident_console.monitor.state import HostState
from incident_console.runbook.session import TRAFFIC_S, _serving

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

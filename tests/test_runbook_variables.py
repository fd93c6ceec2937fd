"""Variable discovery from a HostState built from real-shaped events (two stacks, OOM kills)."""

from __future__ import annotations

import pytest

from incident_console.domain.events import (
    ContainerInfo,
    ContainerProcesses,
    LogLine,
    OomConstraint,
    OomKill,
    ProcessRss,
)
from incident_console.monitor.state import HostState
from incident_console.runbook.loader import load_runbook
from incident_console.runbook.variables import VariableError, discover, parse_sets

MIB = 1024 * 1024


def _info(cid: str, project: str, service: str, limit: int = 256 * MIB) -> ContainerInfo:
    return ContainerInfo(
        time=1.0,
        id=cid,
        name=f"{project}_{service}_1",
        state="running",
        project=project,
        service=service,
        working_dir=f"/srv/{project}",
        config_files=(f"/srv/{project}/docker-compose.yml",),
        memory_limit_bytes=limit,
    )


@pytest.fixture
def state() -> HostState:
    s = HostState(name="prod")
    s.apply(_info("a" * 64, "other", "backend"))
    s.apply(_info("b" * 64, "shop", "backend"))
    s.apply(_info("c" * 64, "shop", "db"))
    procs = [ProcessRss(10, "gunicorn", 20 * MIB)] + [
        ProcessRss(pid, "gunicorn", 30 * MIB) for pid in (11, 12, 13, 14)
    ]
    s.apply(ContainerProcesses(time=2.0, id="b" * 64, processes=tuple(procs)))
    for i in range(3):
        s.apply(
            OomKill(
                time=10.0 + i,
                pid=100 + i,
                process="gunicorn",
                constraint=OomConstraint.LIMIT,
                anon_rss_bytes=60 * MIB,
                container_id="b" * 64,
                service="backend",
            )
        )
    return s


def test_discovers_the_service_with_oom_kills_and_its_compose_labels(state: HostState) -> None:
    runbook = load_runbook("oom-after-deploy")
    v = discover(state, runbook, host_name="prod", probes=["http://127.0.0.1:8080/health"])
    values = v.values
    assert values["service"] == "backend" and "3 OOM kill(s)" in v.why["service"]
    assert values["project"] == "shop"
    assert values["compose_file"] == "/srv/shop/docker-compose.yml"
    assert values["project_dir"] == "/srv/shop"
    assert values["container"] == "shop_backend_1"
    assert values["health_url"] == "http://127.0.0.1:8080/health"
    assert values["current_workers"] == "4"
    assert values["worker_peak"] == "60M"  # the kill lines: bigger than the process samples
    assert values["workers"] == "2"  # 3 fit at 60 MiB in 256m, halved from 4 as the seed did
    assert "60.0 MiB" in v.why["workers"] or "60 MiB" in v.why["workers"]
    assert values["watch"] == "30m"


def test_set_overrides_and_rejects_unknown_names(state: HostState) -> None:
    runbook = load_runbook("oom-after-deploy")
    sets = parse_sets(["watch=90s", "project=other"], runbook)
    v = discover(state, runbook, sets)
    assert v.values["watch"] == "90s"
    assert v.values["project"] == "other"
    assert v.values["container"] == "other_backend_1"
    with pytest.raises(VariableError, match="no such variable"):
        parse_sets(["wtach=90s"], runbook)
    with pytest.raises(VariableError, match="watch"):
        parse_sets(["watch=soon"], runbook)


def test_nothing_measured_falls_back_to_the_seed() -> None:
    v = discover(HostState(name="empty"), load_runbook("oom-after-deploy"))
    assert v.values["service"] == "backend"
    assert v.values["workers"] == "2" and v.values["mem_limit"] == "512M"
    assert v.values["compose_file"] == ""


def _leaking(s: HostState, cid: str) -> None:
    """4 workers growing 2 MiB/s (booted at 20 MiB) at 8 req/s: the lab's 1 MiB per request."""
    for t in range(0, 31, 5):
        procs = [ProcessRss(1, "gunicorn", 20 * MIB)] + [
            ProcessRss(pid, "gunicorn", (20 + 2 * ((t + 7 * pid) % 30)) * MIB)
            for pid in (11, 12, 13, 14)
        ]
        s.apply(ContainerProcesses(time=1000.0 + t, id=cid, processes=tuple(procs)))
    for i in range(241):  # 8 req/s for 30 s, and gunicorn lines between them
        when = 1000.0 + i / 8
        text = '172.18.0.4 - - [x] "GET /api/v1/items HTTP/1.1" 200 44 "-" "lab-load"'
        s.apply(LogLine(time=when, id=cid, container="shop_backend_1", text=text))
        s.apply(LogLine(time=when, id=cid, container="shop_backend_1", text="[INFO] Booting"))


def test_max_requests_comes_from_the_growth_per_request(state: HostState) -> None:
    _leaking(state, "b" * 64)
    runbook = load_runbook("oom-after-deploy")
    v = discover(state, runbook, {"project": "shop"})
    why = v.why["max_requests"]
    assert "grow ~1.0 MiB per request at 8.0 req/s over 4 workers" in why, why
    # (256 MiB / 1.2 - 20 master) / 2 workers - 22 baseline = 74.7 MiB; / 1.1 MiB = 67 -> 65.
    assert v.values["max_requests"] == "65" and v.values["max_requests_jitter"] == "6"
    # A --set worker count or limit is what the workers will run in: the proposal follows.
    one = discover(state, runbook, {"project": "shop", "workers": "1"})
    assert int(one.values["max_requests"]) > 65
    # Another stack's backend (no frames, no access lines) keeps the seed's value and says why.
    other = discover(state, runbook, {"project": "other"})
    assert other.values["max_requests"] == "1000" and "seed" in other.why["max_requests"]


def test_measure_reads_overhead_workers_and_baseline(state: HostState) -> None:
    from incident_console.domain.events import ContainerSample
    from incident_console.runbook.recycling import measure
    from incident_console.runbook.variables import service_views

    cid = "b" * 64
    _leaking(state, cid)
    for t in range(0, 31):  # the container uses 12 MiB more than its processes' RSS
        frame = next(
            f for f in reversed(state.containers[cid].process_history) if f.time <= 1000 + t
        )
        used = sum(p.rss_bytes for p in frame.processes) + 12 * MIB
        state.apply(ContainerSample(1000.0 + t, cid, used, 256 * MIB, 0.0))
    m = measure(state, service_views(state, "backend", "shop"))
    assert m.current_workers == 4 and m.master_bytes == 20 * MIB
    # The smallest worker RSS seen: the 5 s frames caught one 1 s after its boot at 20 MiB.
    assert m.baseline_bytes == 22 * MIB and m.overhead_bytes == 12 * MIB
    assert m.requests_per_s == 8.0
    assert m.growth_bytes_per_s is not None and abs(m.growth_bytes_per_s - 2 * MIB) < 0.1 * MIB


def test_a_healthcheck_python_is_no_worker(state: HostState) -> None:
    from incident_console.runbook.recycling import measure
    from incident_console.runbook.variables import service_views

    cid = "b" * 64
    _leaking(state, cid)
    check = ContainerProcesses(
        time=1031.0,
        id=cid,
        processes=(
            ProcessRss(1, "gunicorn", 20 * MIB),
            ProcessRss(11, "gunicorn", 40 * MIB),
            ProcessRss(90, "python3", 8 * MIB),  # docker's healthcheck: python3 -c ...
        ),
    )
    state.apply(check)
    m = measure(state, service_views(state, "backend", "shop"))
    assert m.baseline_bytes == 22 * MIB and m.current_workers == 4

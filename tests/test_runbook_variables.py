"""Variable discovery from a HostState built from real-shaped events (two stacks, OOM kills)."""

from __future__ import annotations

from dataclasses import replace

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
from incident_console.runbook.recycling import measure, split_gunicorn
from incident_console.runbook.variables import VariableError, discover, parse_sets, service_views
from incident_console.sources.inventory import container_info

MIB = 1024 * 1024
HEALTH = (
    "CMD",
    "/usr/bin/python3",
    "-c",
    "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health')",
)
#: A real kernel line from the lab (cgroup v1, kernel 6.x): anon + file RSS of the worker.
KILLED = (
    "Memory cgroup out of memory: Killed process 7076 (gunicorn) total-vm:176668kB, "
    "anon-rss:124896kB, file-rss:4712kB, shmem-rss:0kB, UID:0 pgtables:388kB oom_score_adj:0"
)
MASTER_PID = 30000


def _info(
    cid: str,
    project: str,
    service: str,
    *,
    pid: int = 0,
    ports: tuple[tuple[str, str, str], ...] = (),
    health: tuple[str, ...] = (),
) -> ContainerInfo:
    """The ContainerInfo the inventory makes of this inspect document."""
    bindings = {p: [{"HostIp": ip, "HostPort": port}] for p, ip, port in ports}
    return container_info(
        {
            "Id": cid,
            "Name": f"/{project}_{service}_1",
            "State": {"Status": "running", "Pid": pid, "StartedAt": "1970-01-01T00:00:01Z"},
            "HostConfig": {"Memory": 256 * MIB, "PortBindings": bindings},
            "NetworkSettings": {"Ports": bindings},
            "Config": {
                "Labels": {
                    "com.docker.compose.project": project,
                    "com.docker.compose.service": service,
                    "com.docker.compose.project.working_dir": f"/srv/{project}",
                    "com.docker.compose.project.config_files": "docker-compose.yml",
                },
                "Healthcheck": {"Test": list(health)},
            },
        },
        now=1.0,
    )


def _kill(cid: str, when: float, pid: int) -> OomKill:
    return OomKill(
        time=when,
        pid=pid,
        process="gunicorn",
        constraint=OomConstraint.LIMIT,
        anon_rss_bytes=124896 * 1024,
        container_id=cid,
        service="backend",
        raw=(KILLED,),
    )


SHOP, OTHER = "b" * 64, "a" * 64


@pytest.fixture
def state() -> HostState:
    """Two stacks with a `backend` each, both OOM-killed; shop's frontend publishes 8080."""
    s = HostState(name="prod")
    s.apply(_info(OTHER, "other", "backend", pid=500, health=HEALTH))
    s.apply(
        _info(SHOP, "shop", "backend", pid=MASTER_PID, health=HEALTH,
              ports=(("8000/tcp", "127.0.0.1", "51939"),))
    )  # fmt: skip
    s.apply(
        _info("c" * 64, "shop", "frontend", ports=(("8080/tcp", "127.0.0.1", "54757"),),
              health=("CMD", "curl", "-f", "http://127.0.0.1:8080/"))
    )  # fmt: skip
    for i in range(3):
        s.apply(_kill(SHOP, 10.0 + i, 100 + i))
    s.apply(_kill(OTHER, 20.0, 200))
    return s


#: Worker pids below the master's: pid_max 32768 wrapped while workers were respawned.
WORKERS = (120, 130, 29990, 29995)


def _frames(s: HostState, start: float, seconds: int, mib_per_s: float, cid: str = SHOP) -> None:
    """Process frames every 5 s: master 29 MiB, 4 workers booted at 25 MiB growing."""
    for t in range(0, seconds + 1, 5):
        grown = 25 + mib_per_s * (start - 1000 + t)
        procs = [ProcessRss(MASTER_PID, "gunicorn", 29 * MIB)] + [
            ProcessRss(pid, "gunicorn", int((grown + k) * MIB)) for k, pid in enumerate(WORKERS)
        ]
        s.apply(ContainerProcesses(time=start + t, id=cid, processes=tuple(procs)))


def _requests(s: HostState, start: float, seconds: int, rate: float, path: str) -> None:
    for i in range(int(seconds * rate)):
        text = f'172.18.0.4 - - [x] "GET {path} HTTP/1.1" 200 44 "-" "lab-load"'
        s.apply(LogLine(time=start + i / rate, id=SHOP, container="shop_backend_1", text=text))


def _load_then_idle(s: HostState, idle_s: int) -> None:
    """60 s of the lab's load (8 req/s, 1 MiB a request over 4 workers: 2 MiB/s each), then
    `idle_s` with only the healthcheck's request every 5 s."""
    _frames(s, 1000.0, 60, 2.0)
    _requests(s, 1000.0, 60, 8.0, "/api/v1/items")
    if idle_s:
        end = 25 + 2.0 * 60
        for t in range(5, idle_s + 1, 5):
            procs = [ProcessRss(MASTER_PID, "gunicorn", 29 * MIB)] + [
                ProcessRss(pid, "gunicorn", int((end + k) * MIB)) for k, pid in enumerate(WORKERS)
            ]
            s.apply(ContainerProcesses(time=1060.0 + t, id=SHOP, processes=tuple(procs)))
        _requests(s, 1061.0, idle_s, 0.2, "/api/v1/health")


def test_two_projects_with_the_service_pick_none(state: HostState) -> None:
    runbook = load_runbook("oom-after-deploy")
    v = discover(state, runbook, host_name="prod")
    assert v.values["service"] == "backend" and "4 OOM kill(s)" in v.why["service"]
    assert v.values["project"] == "" and v.values["compose_file"] == ""
    assert v.ambiguous.startswith("backend runs in 2 compose projects on prod: shop (3 OOM")
    assert "other (1 OOM kill(s))" in v.ambiguous and "--set project=NAME" in v.ambiguous
    assert v.why["compose_file"] == v.ambiguous  # says why, never "no compose labels seen"
    assert v.candidates["project"] == ["shop", "other"]  # the most kills first


def test_set_project_finds_its_labels_and_rejects_bad_sets(state: HostState) -> None:
    runbook = load_runbook("oom-after-deploy")
    v = discover(state, runbook, parse_sets(["watch=90s", "project=other"], runbook))
    assert v.values["watch"] == "90s" and not v.ambiguous
    assert v.values["container"] == "other_backend_1"
    assert v.values["compose_file"] == "/srv/other/docker-compose.yml"
    assert v.values["project_dir"] == "/srv/other"
    with pytest.raises(VariableError, match="no such variable"):
        parse_sets(["wtach=90s"], runbook)
    with pytest.raises(VariableError, match="watch"):
        parse_sets(["watch=soon"], runbook)
    with pytest.raises(VariableError, match="whole number"):
        parse_sets(["workers=two"], runbook)


def test_the_master_is_the_main_process_even_when_pids_wrapped(state: HostState) -> None:
    _load_then_idle(state, 0)
    frame = state.containers[SHOP].process_history[-1]
    master, workers = split_gunicorn(frame.processes, main_pid=MASTER_PID)
    assert master is not None and master.pid == MASTER_PID and len(workers) == 4
    m = measure(state, service_views(state, "backend", "shop"))
    assert m.master_bytes == 29 * MIB and m.current_workers == 4
    assert m.master_how == "the container's main process"
    assert m.baseline_bytes == 25 * MIB  # a worker, not the master, is the smallest worker
    # Without State.Pid the gunicorn seen first is the master: still not the lowest pid.
    first_seen = {MASTER_PID: 0.0, **{pid: 5.0 for pid in WORKERS}}
    master, _ = split_gunicorn(frame.processes, first_seen=first_seen)
    assert master is not None and master.pid == MASTER_PID


def test_the_proposal_is_the_same_at_idle_as_under_load(state: HostState) -> None:
    runbook = load_runbook("oom-after-deploy")
    _load_then_idle(state, 0)
    busy = discover(state, runbook, {"project": "shop"})
    idle = HostState(name="prod")
    for event in (
        _info(SHOP, "shop", "backend", pid=MASTER_PID, health=HEALTH),
        *(_kill(SHOP, 10.0 + i, 100 + i) for i in range(3)),
    ):
        idle.apply(event)
    _load_then_idle(idle, 180)
    later = discover(idle, runbook, {"project": "shop"})
    for name in ("workers", "max_requests", "max_requests_jitter", "mem_limit"):
        assert busy.values[name] == later.values[name] != "", name
    why = busy.why["max_requests"]
    assert "workers grow ~1.0 MiB per request" in why, why
    assert "(/api/v1/health left out)" in later.why["max_requests"]
    # The fix holds on the lab: 2 workers recycled before they outgrow their share of 256m.
    workers, n = int(busy.values["workers"]), int(busy.values["max_requests"])
    jitter = int(busy.values["max_requests_jitter"])
    assert workers == 2 and workers * (25 + n + jitter) + 29 <= 256 / 1.2
    # The kill line counts anon + file rss; the samples saw a worker grow larger still.
    assert "3 kill line(s), largest 126.6 MiB" in busy.why["workers"]
    assert "peaked at 148.0 MiB unrecycled" in busy.why["workers"]
    assert busy.values["worker_peak"] == "148M"


def test_nothing_measured_declines_and_says_what_to_do(state: HostState) -> None:
    runbook = load_runbook("oom-after-deploy")
    v = discover(state, runbook, {"project": "shop"})
    for name in ("workers", "max_requests", "max_requests_jitter"):
        assert v.values[name] == "", name
        assert "run `lab load` or wait for traffic" in v.why[name]
    assert v.values["mem_limit"] == "256M" and "kept" in v.why["mem_limit"]
    empty = discover(HostState(name="empty"), runbook)
    assert empty.values["workers"] == "" and empty.values["mem_limit"] == ""
    assert empty.values["memory_target"] == "" and "mem_limit" in empty.why["memory_target"]


def test_health_url_from_the_frontends_port_and_the_backends_healthcheck(
    state: HostState,
) -> None:
    runbook = load_runbook("oom-after-deploy")
    v = discover(state, runbook, {"project": "shop"})
    assert v.values["health_url"] == "http://127.0.0.1:54757/api/v1/health"
    assert v.why["health_url"] == (
        "published port 8080/tcp of frontend, path from backend's healthcheck"
    )
    probed = discover(state, runbook, {"project": "shop"}, probes=["http://x:1/h"])
    assert probed.values["health_url"] == "http://x:1/h" and "--probe" in probed.why["health_url"]
    # Over SSH to another machine, the server's loopback is not the console's: not offered.
    remote = discover(state, runbook, {"project": "shop"}, host_address="203.0.113.10")
    assert remote.values["health_url"] == "" and "--probe" in remote.why["health_url"]


def test_unknown_values_read_as_unknown_in_texts() -> None:
    runbook = load_runbook("oom-after-deploy")
    v = discover(HostState(name="empty"), runbook)
    why = runbook.step("gunicorn-settings").why
    from incident_console.runbook.schema import render
    from incident_console.runbook.variables import shown  # new: imported here for old code

    text = render(why, shown(v.values))
    assert "()" not in text and "measured peak (unknown)" in text
    assert shown({"a": "", "b": "1"}) == {"a": "unknown", "b": "1"}


def test_a_healthcheck_python_is_no_worker(state: HostState) -> None:
    _load_then_idle(state, 0)
    check = ContainerProcesses(
        time=1061.0,
        id=SHOP,
        processes=(
            ProcessRss(MASTER_PID, "gunicorn", 29 * MIB),
            *(ProcessRss(pid, "gunicorn", 150 * MIB) for pid in WORKERS),
            ProcessRss(90, "python3", 8 * MIB),  # docker's healthcheck: python3 -c ...
        ),
    )
    state.apply(check)
    m = measure(state, service_views(state, "backend", "shop"))
    assert m.baseline_bytes == 25 * MIB and m.current_workers == 4


def test_at_idle_the_log_since_the_start_measures_the_growth(state: HostState) -> None:
    """A fresh session at idle: no request while sampling, but the container's whole log
    (counted by the session) and what its workers hold now and held when killed."""
    from incident_console.runbook.recycling import SinceStart

    runbook = load_runbook("oom-after-deploy")
    for t in range(0, 31, 5):  # idle: 4 workers grown to 145-148 MiB, master 29 MiB
        procs = [ProcessRss(MASTER_PID, "gunicorn", 29 * MIB)] + [
            ProcessRss(pid, "gunicorn", (145 + k) * MIB) for k, pid in enumerate(WORKERS)
        ]
        state.apply(ContainerProcesses(time=2000.0 + t, id=SHOP, processes=tuple(procs)))
    idle = discover(state, runbook, {"project": "shop"})
    assert idle.values["max_requests"] == ""  # the samples alone say nothing
    # kept: (116+117+118+119) MiB by the live workers (above the 29 MiB master) and
    # 3 x (126.6 - 29) MiB by the killed ones: 762.8 MiB over 763 requests.
    since = SinceStart(SHOP, requests=763, recycled=False)
    v = discover(state, runbook, {"project": "shop"}, since_start=since)
    why = v.why["max_requests"]
    assert "workers grow ~1023.6 KiB per request" in why, why
    assert "since shop_backend_1 started: 4 workers now and 3 killed" in why
    # No fresh worker was seen: a worker is taken to boot at 145 MiB (cautious), so only one
    # lives 20+ requests in 256m.
    assert v.values["workers"] == "1" and "then 1 so that each lives 20+" in v.why["workers"]
    assert int(v.values["max_requests"]) >= 20
    recycled = discover(
        state, runbook, {"project": "shop"}, since_start=SinceStart(SHOP, 763, recycled=True)
    )
    assert recycled.values["max_requests"] == ""
    assert "workers were recycled since it started" in recycled.why["max_requests"]
    # The log booted 4 + 3 workers: the 3 that died are the 3 kill lines. An 8th boot is a
    # worker whose kill line the kernel's buffer no longer holds: its memory is unknown.
    counted = discover(state, runbook, {"project": "shop"}, since_start=replace(since, boots=7))
    assert "workers grow ~1023.6 KiB per request" in counted.why["max_requests"]
    lost = discover(state, runbook, {"project": "shop"}, since_start=replace(since, boots=8))
    assert lost.values["max_requests"] == ""
    assert (
        "4 worker(s) died since shop_backend_1 started and what 1 of them held is unknown"
        in lost.why["max_requests"]
    ), lost.why["max_requests"]

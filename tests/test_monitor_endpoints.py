"""A health URL from docker's own facts: published ports and the service's healthcheck.

The inspect fragments are the lab's (docker 20.10): the backend publishes 8000 on loopback and
checks itself with python3; the frontend publishes 8080.
"""

from __future__ import annotations

from typing import Any

from incident_console.monitor.endpoints import discover_health_url, healthcheck_path
from incident_console.monitor.state import HostState
from incident_console.sources.inventory import container_info

BACKEND_TEST = [
    "CMD",
    "/usr/bin/python3",
    "-c",
    "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health', "
    "timeout=3)",
]


def _doc(cid: str, service: str, port: str, host_port: str, test: list[str]) -> dict[str, Any]:
    binding = {f"{port}/tcp": [{"HostIp": "127.0.0.1", "HostPort": host_port}]}
    return {
        "Id": cid,
        "Name": f"/icl_{service}_1",
        "State": {"Status": "running", "Pid": 19112},
        "HostConfig": {"PortBindings": binding, "Memory": 268435456},
        "NetworkSettings": {"Ports": binding},
        "Config": {
            "Labels": {"com.docker.compose.project": "icl", "com.docker.compose.service": service},
            "Healthcheck": {"Test": test, "Interval": 5000000000},
        },
    }


def _state(*docs: dict[str, Any]) -> HostState:
    state = HostState(name="local")
    for doc in docs:
        state.apply(container_info(doc, now=1.0))
    return state


def test_inventory_keeps_pid_ports_and_healthcheck() -> None:
    info = container_info(_doc("b" * 64, "backend", "8000", "51939", BACKEND_TEST), now=1.0)
    assert info.pid == 19112
    assert info.ports == (("8000/tcp", "127.0.0.1", "51939"),)
    assert info.healthcheck[:2] == ("CMD", "/usr/bin/python3")
    stopped = {**_doc("c" * 64, "db", "5432", "1", []), "NetworkSettings": {"Ports": {}}}
    assert container_info(stopped).ports == (("5432/tcp", "127.0.0.1", "1"),)  # as asked


def test_healthcheck_paths_of_common_checks() -> None:
    assert healthcheck_path(BACKEND_TEST) == ("/api/v1/health", 8000)
    assert healthcheck_path(["CMD-SHELL", "curl -fsS http://localhost:8080/healthz || exit 1"]) == (
        "/healthz",
        8080,
    )
    assert healthcheck_path(["CMD", "wget", "-qO-", "http://127.0.0.1/"]) == ("/", None)
    assert healthcheck_path(["CMD", "pg_isready"]) is None
    assert healthcheck_path([]) is None


def test_the_frontends_port_with_the_backends_path() -> None:
    state = _state(
        _doc("b" * 64, "backend", "8000", "51939", BACKEND_TEST),
        _doc("f" * 64, "frontend", "8080", "54757", ["CMD", "curl", "http://127.0.0.1:8080/"]),
    )
    found = discover_health_url(state, "backend", "icl")
    assert found is not None
    assert found.url == "http://127.0.0.1:54757/api/v1/health"
    assert found.where == "published port 8080/tcp of frontend, path from backend's healthcheck"


def test_the_services_own_port_without_a_frontend_and_none_without_a_path() -> None:
    alone = _state(_doc("b" * 64, "backend", "8000", "51939", BACKEND_TEST))
    found = discover_health_url(alone, "backend")
    assert found is not None and found.url == "http://127.0.0.1:51939/api/v1/health"
    assert found.where == "published port 8000/tcp of backend, path from its healthcheck"
    assert discover_health_url(alone, "backend", server="203.0.113.10") is None  # its loopback
    blind = _state(_doc("b" * 64, "backend", "8000", "51939", ["CMD", "true"]))
    assert discover_health_url(blind, "backend") is None
    assert discover_health_url(alone, "worker") is None

"""Where the application answers: a health URL found from what docker says about the stack.

When nobody gave a probe, the runbook's health checks still need a URL. Docker knows enough to
find one: the ports a container publishes (``NetworkSettings.Ports``) and the path its own
healthcheck asks for (``Config.Healthcheck.Test``, e.g. a ``curl`` or ``python3 -c`` of
``http://127.0.0.1:8000/api/v1/health``). The URL is the one the users go through (a published
port of the proxy or frontend of the same compose project) when there is one, else the
service's own published port, always with the path from the service's healthcheck, and it
says where each part came from.

The URL is fetched from the console's side: a port published on the server's loopback only is
reachable only when the server is this machine (or its address is a loopback one).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from incident_console.domain.events import ContainerInfo
from incident_console.monitor.state import ContainerView, HostState

__all__ = ["HealthUrl", "discover_health_url", "healthcheck_path"]

#: Services that front the application: their published port is what users reach.
FRONT_SERVICES = re.compile(r"proxy|frontend|front|nginx|traefik|caddy|haproxy|web|gateway|ingress")
_URL = re.compile(r"https?://(?:\[[^\]]+\]|[^/\s'\":]+)(?::(\d+))?(/[^\s'\"\\)]*)?")
_LOOPBACK_NAMES = ("localhost", "ip6-localhost")


@dataclass(frozen=True, slots=True)
class HealthUrl:
    """A URL to probe and a line saying where it came from."""

    url: str
    where: str


def healthcheck_path(test: Sequence[str]) -> tuple[str, int | None] | None:
    """(path, container port) of the URL a healthcheck fetches, or None when it fetches none.

    Args:
        test: ``Config.Healthcheck.Test`` (``["CMD", "curl", "-f", URL]``, ``["CMD-SHELL", ...]``).
    """
    for part in test:
        match = _URL.search(part)
        if match:
            path = (match.group(2) or "/").split("?")[0] or "/"
            return path, int(match.group(1)) if match.group(1) else None
    return None


def _is_loopback(address: str) -> bool:
    if address in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def _published(info: ContainerInfo, server: str, private: int | None) -> tuple[str, str] | None:
    """(host:port as the console reaches it, the private port) of a published TCP port; the one
    for `private` when given and published, else the first."""
    ports = [p for p in info.ports if p[0].endswith("/tcp")]
    if private is not None:
        ports = [p for p in ports if p[0] == f"{private}/tcp"] or ports
    for container_port, host_ip, host_port in ports:
        bound = host_ip.strip("[]")
        if bound in ("", "0.0.0.0", "::"):
            address = server  # every interface: the server's own address reaches it
        elif _is_loopback(bound):
            if not _is_loopback(server):
                continue  # the server's loopback is not this console's
            address = "127.0.0.1"
        else:
            address = bound
        if ":" in address and not address.startswith("["):
            address = f"[{address}]"
        return f"{address}:{host_port}", container_port
    return None


def _live(state: HostState, project: str) -> list[ContainerView]:
    return [
        v
        for v in state.containers.values()
        if not v.gone
        and v.info.state in ("running", "")
        and (not project or v.info.project == project)
    ]


def discover_health_url(
    state: HostState, service: str = "backend", project: str = "", *, server: str = "127.0.0.1"
) -> HealthUrl | None:
    """A health URL for `service` (in `project`), or None when docker does not say enough.

    Args:
        state: the monitor's state (inspect facts of every container).
        service: the compose service whose health matters.
        project: its compose project ('' when there is only one).
        server: the address the console reaches the server at ('127.0.0.1' when local).
    """
    views = _live(state, project)
    mine = [v for v in views if v.info.service == service]
    if not mine:
        return None
    target = mine[0].info
    found = next((p for v in mine if (p := healthcheck_path(v.info.healthcheck))), None)
    if found is None:
        return None
    path, private = found
    fronts = sorted(
        (v for v in views if v.info.service != service and FRONT_SERVICES.search(v.info.service)),
        key=lambda v: v.info.service,
    )
    for front in fronts:
        reached = _published(front.info, server, None)
        if reached:
            return HealthUrl(
                f"http://{reached[0]}{path}",
                f"published port {reached[1]} of {front.info.service}, "
                f"path from {service}'s healthcheck",
            )
    reached = _published(target, server, private)
    if reached:
        return HealthUrl(
            f"http://{reached[0]}{path}",
            f"published port {reached[1]} of {service}, path from its healthcheck",
        )
    return None

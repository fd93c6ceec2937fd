"""Which compose a host has: the v2 plugin (`docker compose`) or v1 (`docker-compose`).

The same detection serves the lab (this machine, blocking) and the runbook (any host, through
the transport's `Host.run`): both try the candidates in order and keep the first that answers.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from incident_console.transport.base import TransportError

if TYPE_CHECKING:
    from incident_console.transport.base import Host

#: The compose front ends we know, preferred first (v1 ignores deploy.resources: see README).
COMPOSE_CANDIDATES: tuple[tuple[str, ...], ...] = (("docker", "compose"), ("docker-compose",))


class ComposeUnavailable(TransportError):
    """Neither `docker compose` nor `docker-compose` answers on the host."""


def _unavailable(where: str, reasons: Sequence[str]) -> ComposeUnavailable:
    detail = "; ".join(reasons)
    return ComposeUnavailable(f"no docker compose on {where} ({detail})")


async def detect_compose(host: Host, timeout_s: float = 20.0) -> list[str]:
    """Find the compose command on `host`.

    Args:
        host: any transport host; `<candidate> version` is run through `host.run`.
        timeout_s: seconds allowed for each `version` call.

    Returns:
        The argv prefix to put before compose arguments, e.g. ["docker-compose"].

    Raises:
        ComposeUnavailable: neither candidate answers (the message says why, in one line).
    """
    reasons: list[str] = []
    for candidate in COMPOSE_CANDIDATES:
        try:
            result = await host.run([*candidate, "version"], timeout=timeout_s)
        except OSError as exc:  # the local transport execs directly: a missing binary raises
            reasons.append(f"{' '.join(candidate)}: {exc.strerror or exc}")
            continue
        if result.ok:
            return list(candidate)
        last = (result.stderr.strip() or result.stdout.strip()).splitlines()
        reasons.append(f"{' '.join(candidate)}: {last[-1] if last else result.exit_status}")
    raise _unavailable(host.name, reasons)


RunVersion = Callable[[Sequence[str]], int]


def _run_locally(argv: Sequence[str]) -> int:
    return subprocess.run(
        list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20, check=False
    ).returncode


def compose_command(run: RunVersion | None = None) -> list[str]:
    """The blocking twin of :func:`detect_compose`, for this machine (the lab).

    Args:
        run: runs an argv and returns its exit status; default: a local subprocess.

    Returns:
        The argv prefix of the compose command.

    Raises:
        ComposeUnavailable: neither candidate answers.
    """
    run = run or _run_locally
    reasons: list[str] = []
    for candidate in COMPOSE_CANDIDATES:
        try:
            status = run([*candidate, "version"])
        except OSError as exc:
            reasons.append(f"{' '.join(candidate)}: {exc.strerror or exc}")
            continue
        if status == 0:
            return list(candidate)
        reasons.append(f"{' '.join(candidate)}: exit status {status}")
    raise _unavailable("this machine", reasons)

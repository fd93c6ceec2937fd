"""Throwaway containers for the sources' tests: prefix `icts-`, an imported empty image, /usr bound.

No registry is reachable, so the image is `docker import` of an empty root with the usr-merge
symlinks; the host's read-only /usr brings python3 and sh.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Callable

import pytest

from conftest import IN_CI
from incident_console.lab import image as lab_image

IMAGE = "icts-base:latest"


def docker_or_skip() -> None:
    """Fail in CI, skip elsewhere, when the docker engine does not answer."""
    try:
        ok = subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        if IN_CI:
            pytest.fail("docker engine not available (required in CI)")
        pytest.skip("docker engine not available")


def ensure_image() -> str:
    """Import the empty base image once (idempotent): the lab's rootfs, under our own tag."""
    lab_image.ensure_image(IMAGE)
    return IMAGE


def run_container(code: str, *docker_args: str, name: str | None = None) -> tuple[str, str]:
    """Start `python3 -c code` in a throwaway container; return (id, name)."""
    ensure_image()  # never rely on an earlier test having imported it
    name = name or f"icts-{uuid.uuid4().hex[:8]}"
    cid = subprocess.run(
        ["docker", "run", "-d", "--name", name, "-v", "/usr:/usr:ro", *docker_args, IMAGE,
         "/usr/bin/python3", "-u", "-c", code],  # fmt: skip
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return cid, name


def remove(*names: str) -> None:
    """Remove our containers (never anything else)."""
    for name in names:
        assert name.startswith("icts-")
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)


async def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:  # noqa: ASYNC109
    """Poll `predicate` until true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.2)


ALLOCATE = (
    "import time\n"
    "b = bytearray({mib} * 1024 * 1024)\n"
    "for i in range(0, len(b), 4096): b[i] = 1\n"
    "print('allocated', flush=True)\n"
    "time.sleep(600)\n"
)

"""The shared incident lab: one lab per test session, and one real OOM incident in it.

`lab` brings the stack up once (unique project `ict<pid>`, files in a tmp folder) and removes
it at the end of the session. `lab_oom` loads it until the kernel OOM-kills a backend worker,
so the diagnose, console and report tests can share that one incident.
Without a docker engine (or dmesg) these fail in CI and skip elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from conftest import IN_CI
from incident_console.lab.lab import Lab
from incident_console.lab.load import LoadStats
from incident_console.lab.oom import KernelLogUnavailable, KernelOomKill, read_kernel_log

#: The load the shared incident uses: about 30 s to the first kill with 4 workers and 256m.
OOM_RATE = 8.0
OOM_MAX_S = 240.0


def docker_missing() -> str | None:
    """Why the docker engine or compose cannot be used here, or None when they can."""
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    done = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        return f"the docker engine does not answer: {done.stderr.strip()[:200]}"
    if (
        shutil.which("docker-compose") is None
        and subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False
        ).returncode
        != 0
    ):
        return "neither `docker compose` nor `docker-compose` is installed"
    return None


def require_docker() -> None:
    """Fail in CI, skip elsewhere, when the docker engine is missing."""
    reason = docker_missing()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"docker is required in CI: {reason}")
        pytest.skip(reason)


@dataclass(frozen=True)
class LabOom:
    """The shared incident: the first kernel OOM kill in the lab's backend.

    Attributes:
        kill: the kernel's account of it (lines as dmesg prints them).
        kills: every kill seen in the backend when the load stopped.
        container_id: the backend container.
        seconds_to_oom: from the load's start to the first kill seen in dmesg.
        at: wall-clock time (epoch seconds) the kill was seen.
        load: what the load had done when it stopped.
    """

    kill: KernelOomKill
    kills: tuple[KernelOomKill, ...]
    container_id: str
    seconds_to_oom: float
    at: float
    load: LoadStats


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The session's lab, up and healthy (backend 4 workers, mem_limit 256m)."""
    require_docker()
    project = f"ict{os.getpid()}"
    the_lab = Lab(project, tmp_path_factory.mktemp("lab") / project)
    try:
        the_lab.up()
        yield the_lab
    finally:
        the_lab.down()


def require_kernel_log() -> None:
    """The kernel log must be readable (OOM kills are read there): fail in CI, else skip."""
    try:
        read_kernel_log()
    except KernelLogUnavailable as exc:
        if IN_CI:
            pytest.fail(f"the kernel log is required in CI: {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def lab_oom(lab: Lab) -> LabOom:
    """Load the lab until the kernel OOM-kills a backend worker (once per session)."""
    require_kernel_log()
    container_id = lab.backend_container_id()
    stop = threading.Event()
    seen: list[tuple[float, float]] = []
    t0 = time.monotonic()

    def watch(_stats: LoadStats) -> None:
        if not seen and lab.oom_kills():
            seen.append((time.monotonic() - t0, time.time()))
            stop.set()

    stats = lab.load(duration_s=OOM_MAX_S, rate=OOM_RATE, progress=watch, stop=stop)
    kills = tuple(lab.oom_kills())
    if not kills:
        pytest.fail(f"no kernel OOM kill in the lab backend after {stats.describe()}")
    seconds, at = seen[0] if seen else (time.monotonic() - t0, time.time())
    return LabOom(kills[0], kills, container_id, seconds, at, stats)

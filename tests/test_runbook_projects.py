"""Two compose projects with a `backend` each, both OOM-killed: the runbook never picks one.

Two labs (unique project names) on the real engine, both loaded until the kernel OOM-kills a
worker in each, reached over a real sshd. `runbook run oom-after-deploy TARGET --yes` must exit
non-zero naming both projects and change neither (compose files' sha256, container ids); with
`--set project=A` it fixes A (exit 0, no --probe: the health URL is found from docker) and B
stays as it was. The loads are kept short: B's stops at its first kill, A's runs through A's fix.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures_lab import require_docker, require_kernel_log
from fixtures_sshd import SshdServer
from incident_console.lab.lab import Lab

pytestmark = [pytest.mark.docker, pytest.mark.sshd, pytest.mark.slow]

CLI = str(Path(sys.executable).parent / "incident-console")


@pytest.fixture
def two_labs(tmp_path: Path) -> Iterator[tuple[Lab, Lab]]:
    require_docker()
    require_kernel_log()
    a = Lab(f"icpa{os.getpid()}", tmp_path / "a")
    b = Lab(f"icpb{os.getpid()}", tmp_path / "b")
    try:
        a.up()
        b.up()
        yield a, b
    finally:
        a.down()
        b.down()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli(sshd: SshdServer, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    ssh = ["-i", str(sshd.client_key), "--known-hosts", str(sshd.known_hosts)]
    return subprocess.run(
        [CLI, "runbook", *args, *ssh], capture_output=True, text=True, timeout=timeout, check=False
    )


def _load(lab: Lab, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(
        target=lab.load, kwargs={"duration_s": 1200, "rate": 8.0, "stop": stop}, daemon=True
    )
    thread.start()
    return thread


def test_two_projects_refused_then_the_chosen_one_fixed(
    two_labs: tuple[Lab, Lab], sshd: SshdServer, tmp_path: Path
) -> None:
    a, b = two_labs
    stop_a, stop_b = threading.Event(), threading.Event()
    loads = [_load(a, stop_a), _load(b, stop_b)]
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (a.oom_kills() and b.oom_kills()):
            if b.oom_kills():
                stop_b.set()  # short: one kill is all B needs
            time.sleep(2)
        stop_b.set()
        assert a.oom_kills() and b.oom_kills(), "both backends must be OOM-killed under load"
        loads[1].join(timeout=60)
        before = {
            lab.project: (_sha(lab.compose_file), sorted(lab.container_ids())) for lab in (a, b)
        }

        refused = _cli(
            sshd, "run", "oom-after-deploy", sshd.target, "--yes",
            "--journal", str(tmp_path / "refused.jsonl"), timeout=300,
        )  # fmt: skip
        said = refused.stdout + refused.stderr
        print(said[-3000:])
        assert refused.returncode == 2, said[-3000:]
        refusal = [line for line in said.splitlines() if a.project in line and b.project in line]
        assert refusal, said[-3000:]  # one line naming both
        assert "--set project=" in refusal[0] and "nothing changed" in refusal[0]
        for lab in (a, b):
            assert (_sha(lab.compose_file), sorted(lab.container_ids())) == before[lab.project]

        journal = tmp_path / "fix-a.jsonl"
        fixed = _cli(
            sshd, "run", "oom-after-deploy", sshd.target, "--yes",
            "--set", f"project={a.project}", "--set", "watch=60s",
            "--journal", str(journal), timeout=900,
        )  # fmt: skip
    finally:
        stop_a.set()
        stop_b.set()
        for thread in loads:
            thread.join(timeout=60)
    out = fixed.stdout
    print(out[:3000], out[-4000:], fixed.stderr[-2000:])
    assert fixed.returncode == 0, out[-3000:] + fixed.stderr[-1000:]
    assert "10/10 steps passed" in out
    # No --probe: the health URL came from docker, and says from where.
    assert f"health_url = http://127.0.0.1:{a.settings.frontend_port}/api/v1/health" in out
    assert "published port 8080/tcp of frontend, path from backend's healthcheck" in out
    # Every remediate step's header names the project it changes.
    for step in ("gunicorn-settings", "memory-limit", "recreate"):
        assert f"remediate {step}: " in out
        header = next(line for line in out.splitlines() if f"remediate {step}: " in line)
        assert f"(project {a.project} on " in header, header
    assert _sha(a.compose_file) != before[a.project][0]
    assert sorted(a.container_ids()) != before[a.project][1]  # the backend was recreated
    assert (_sha(b.compose_file), sorted(b.container_ids())) == before[b.project]

"""Real OOM kills on the lab server, seen by the product as `deploy` (issue 14, part 3).

The session's one VM (fixtures_labserver.py) serves both incidents: first its stack with the
backend's 256 MiB limit (a limit kill), then the same stack recreated with no container limit
(`LabServer.restack`), where the VM itself runs out (a host-wide kill). The tests that need no
limits are marked `labserver_nolimits` and run after every other lab server test.

As `deploy` the kernel log is closed (dmesg_restrict=1): the product's kill records come from
the cgroups' counters. The ground truth here is the kernel's own lines, read as root over SSH.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fixtures_labserver import (
    KernelKill,
    LabServerRun,
    clock_offset,
    kernel_kills,
    memory_events_kills,
)
from incident_console.lab.lab import Lab
from incident_console.monitor.journal import read_journal

pytestmark = [pytest.mark.labserver, pytest.mark.slow, pytest.mark.timeout(1500)]

CLI = str(Path(sys.executable).parent / "incident-console")


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def records(journal: Path, kind: str, **match: Any) -> list[dict[str, Any]]:
    if not journal.exists():
        return []
    return [
        r
        for r in read_journal(journal)
        if r.get("kind") == kind and all(r.get(k) == v for k, v in match.items())
    ]


class Diagnose:
    """`diagnose TARGET --json --sample S --journal J` as deploy, in the background."""

    def __init__(self, run: LabServerRun, tmp: Path, sample_s: float) -> None:
        self.journal = tmp / "diagnose.jsonl"
        self.out = tmp / "diagnose.json"
        self.err = tmp / "diagnose.err"
        argv = [CLI, "diagnose", *run.target_args, "--json", "--since", "30m", "--project",
                "icl", "--sample", str(sample_s), "--journal", str(self.journal)]  # fmt: skip
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=err)

    def counting(self) -> bool:
        """Whether the cgroups' counters have their baseline (a rise from now on is news)."""
        if self.proc.poll() is not None:
            return False
        return bool(records(self.journal, "source", source="oom_counters", ok=True))

    def settled(self) -> bool:
        """Counting, or exited."""
        return self.counting() or self.proc.poll() is not None

    def gave_up_connecting(self) -> bool:
        """It exited 2 on its connect timeout (an emulated VM on a busy machine: try again)."""
        return self.proc.poll() == 2 and "no answer" in self.err.read_text()

    def result(self, timeout: float) -> dict[str, Any]:
        self.proc.wait(timeout=timeout)
        assert self.proc.returncode in (0, 1), self.err.read_text()
        doc: dict[str, Any] = json.loads(self.out.read_text())
        return doc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class Load:
    """`lab.load` in a thread, stopped by `stop()`."""

    def __init__(self, lab: Lab, rate: float) -> None:
        self.stop_event = threading.Event()
        self.thread = threading.Thread(
            target=lab.load,
            kwargs={"duration_s": 900, "rate": rate, "stop": self.stop_event},
            daemon=True,
        )
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=60)


def fill(lab: Lab, run: LabServerRun, rate: float, below: Callable[[int], bool]) -> None:
    """Load the leak until the backend's memory is no longer `below` (no kill yet, we hope)."""
    load = Load(lab, rate)
    try:
        wait_for(
            "the backend to fill",
            lambda: not below(lab.backend_memory_bytes() or 0),
            600,
            every=3,
        )
    finally:
        load.stop()


@dataclass
class Incident:
    """What one kill under a watching `diagnose` left: its JSON, journal and the kernel's word."""

    doc: dict[str, Any]
    journal: Path
    backend_id: str
    kernel: list[KernelKill]
    counted: int
    offset: float
    started: float


def incident(run: LabServerRun, tmp: Path, rate: float, sample_s: float) -> Incident:
    """Watch with `diagnose` (as deploy) while the load makes the kernel kill in the backend."""
    lab = run.lab()
    backend_id = lab.backend_container_id()
    before = len(kernel_kills(run, backend_id))
    offset = clock_offset(run)
    diag = Diagnose(run, tmp, sample_s)
    try:
        for _attempt in range(3):
            wait_for(
                "diagnose's counters to have a baseline",
                diag.settled,
                180,
            )
            if not diag.gave_up_connecting():
                break
            diag = Diagnose(run, tmp, sample_s)
        assert diag.counting(), diag.err.read_text()
        started = time.time()
        load = Load(lab, rate)
        try:
            wait_for(
                "a kill record in diagnose's journal",
                lambda: [
                    r for r in records(diag.journal, "oom_kill") if r["container_id"] == backend_id
                ],
                sample_s,
            )
        finally:
            load.stop()
        doc = diag.result(timeout=sample_s + 120)
    finally:
        diag.kill()
    # The kernel's lines and the counters, read when the kills are over (the load stopped).
    time.sleep(5)
    kernel = kernel_kills(run, backend_id)
    assert len(kernel) > before, "the kernel logged no new kill in the backend"
    return Incident(
        doc, diag.journal, backend_id, kernel, memory_events_kills(run, backend_id), offset, started
    )


def first_delay(inc: Incident) -> float:
    """Seconds from the first kernel kill line after the load started to the product's record."""
    first_kernel = min(k.wall for k in inc.kernel if k.wall - inc.offset >= inc.started - 1)
    first_record = min(
        r["ts"] for r in records(inc.journal, "oom_kill") if r["container_id"] == inc.backend_id
    )
    return first_record - (first_kernel - inc.offset)


@pytest.fixture
def watch_policy(lab_server: LabServerRun, tmp_path: Path) -> Path:
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"""
project: icl
probes:
  - {{name: frontend, url: "{lab_server.report.frontend_url}", interval: 2s, timeout: 10s}}
rules:
  - name: restart-frontend
    probe_fails: {{probe: frontend, times: 2}}
    action: restart
    target: frontend
limits: {{restarts_per_hour: 3, backoff: 5s}}
stop_timeout: 5s
status_interval: 5s
""")
    return policy


@pytest.fixture
def watching(
    lab_server: LabServerRun, tmp_path: Path, watch_policy: Path
) -> Iterator[tuple[subprocess.Popen[bytes], Path, Path]]:
    journal = tmp_path / "watch.jsonl"
    out = tmp_path / "watch.out"
    with open(out, "w") as fh:
        proc = subprocess.Popen(
            [CLI, "watch", *lab_server.target_args, "--policy", str(watch_policy), "--journal",
             str(journal)],
            stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONFAULTHANDLER": "1"},
        )  # fmt: skip
    try:
        yield proc, journal, out
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def test_watch_restarts_a_stopped_frontend_on_the_vm(
    lab_server: LabServerRun, watching: tuple[subprocess.Popen[bytes], Path, Path]
) -> None:
    proc, journal, out = watching
    url = lab_server.report.frontend_url

    def answering() -> bool:
        assert proc.poll() is None, out.read_text()
        return any(r["status"] == 200 for r in records(journal, "probe", url=url))

    wait_for("watch to probe the frontend", answering, 180)
    lab = lab_server.lab()
    frontend = lab.container_id("frontend")
    assert frontend is not None
    # Taken before: on the emulated CPU `docker stop` returns seconds after the stop itself.
    stopped = time.time()
    stop = lab_server.host().run(["docker", "stop", "-t", "1", frontend], timeout=120)
    assert stop.returncode == 0, stop.stderr
    restart = wait_for(
        "the restart", lambda: records(journal, "action", what="restart container"), 120
    )[0]
    recovered = wait_for(
        "the frontend to answer again",
        lambda: [r for r in records(journal, "probe", url=url)
                 if r["time"] > restart["started"] and r["status"] == 200],
        240,
    )  # fmt: skip
    print(
        f"lab server: watch restarted the frontend {restart['started'] - stopped:.1f} s after "
        f"the stop; answering {recovered[0]['time'] - stopped:.1f} s after it"
    )
    assert restart["container"].startswith("icl-frontend") and not restart["error"]
    decision = records(journal, "watch", decision="restart")[0]
    assert decision["acted"] is True and decision["target"] == "frontend"

    def running() -> bool:
        state = lab_server.host().run(
            ["docker", "inspect", "--format", "{{.State.Running}}", frontend], timeout=60
        )
        return state.stdout.strip() == "true"

    # On the emulated CPU a restarted frontend may answer once and reset the next probes while
    # it settles, and the policy restarts it again (seen in CI: restart 2/3 under way when this
    # was read once): it runs again within the policy's limits.
    wait_for("the frontend to run", running, 120, every=3)


def test_a_limit_kill_is_attributed_within_2s_and_counted_as_the_kernel_logged_it(
    lab_server: LabServerRun, tmp_path: Path
) -> None:
    lab = lab_server.lab()
    assert lab.settings.limits
    limit = 256 * 1024 * 1024
    # Most of the way up first: then the watching diagnose needs only a short window.
    fill(lab, lab_server, 8, lambda used: used < 0.8 * limit)
    inc = incident(lab_server, tmp_path, rate=8, sample_s=150)

    ours = [k for k in inc.doc["oom_kills"] if k["container_id"] == inc.backend_id]
    assert ours, inc.doc["oom_kills"]
    for kill in ours:
        assert kill["container"] == "icl-backend-1" and kill["service"] == "backend"
        assert kill["constraint"] == "limit"
        assert kill["source"] == "memory.events"  # the kernel log is closed to deploy
    # Every kernel line of this container was a limit kill, not the host running out.
    assert not any(k.global_oom for k in inc.kernel)
    assert any("OOM kill(s) in backend" in f["summary"] for f in inc.doc["findings"])
    delay = first_delay(inc)
    print(f"lab server: limit kill attributed {delay:.2f} s after the kernel line")
    assert delay <= 2.0
    # The cgroup's count (what deploy can read) equals the kernel's lines (what root can).
    assert inc.counted == len(inc.kernel)


@pytest.mark.labserver_nolimits
def test_with_no_limits_the_server_runs_out_and_diagnose_names_the_container_hit(
    lab_server: LabServerRun, tmp_path: Path
) -> None:
    took = lab_server.server.restack(False)
    print(f"lab server: stack recreated with no container limits in {took:.0f} s")
    lab = lab_server.lab()
    assert not lab.settings.limits
    backend = next(c for c in lab.status() if c.service == "backend")
    assert backend.memory_limit == 0
    inc = incident(lab_server, tmp_path, rate=8, sample_s=150)

    ours = [k for k in inc.doc["oom_kills"] if k["container_id"] == inc.backend_id]
    assert ours, inc.doc["oom_kills"]
    for kill in ours:
        assert kill["container"] == "icl-backend-1" and kill["service"] == "backend"
        assert kill["constraint"] == "global"
    assert any(
        # domain.oom_scope's words, as the feed, the pop-up and watch say them.
        "OOM kill(s) in backend" in f["summary"] and "the server ran out of memory" in f["summary"]
        for f in inc.doc["findings"]
    ), inc.doc["findings"]
    assert all(k.global_oom for k in inc.kernel)
    delay = first_delay(inc)
    print(f"lab server: host-wide kill attributed {delay:.2f} s after the kernel line")
    assert inc.counted == len(inc.kernel)
    # The server itself kept answering: the way in survives its OOM.
    assert lab_server.host().run(["true"], timeout=60).returncode == 0


@pytest.mark.labserver_nolimits
def test_with_no_limits_the_runbook_sets_a_limit_from_nothing_as_deploy(
    lab_server: LabServerRun, tmp_path: Path
) -> None:
    """The seed's server as it was, fixed headless as deploy: no limit anywhere, the server's
    RAM the only bound; the runbook proposes a limit that fits what the others leave, writes it
    into the override, recreates from both files (compose v2), watches, and undo restores."""
    lab = lab_server.lab()
    if lab.settings.limits:  # run alone: the stack as the seed's server had it
        lab_server.server.restack(False)
        lab = lab_server.lab()
    host = lab_server.host()
    files = [f"{lab.stack_dir}/{name}" for name in lab.settings.compose_files]
    assert len(files) == 2, files
    base, prod = files

    def digests() -> str:
        done = host.run(["sha256sum", *files], timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    originals = digests()
    assert all(c.memory_limit == 0 for c in lab.status())  # no limit anywhere
    journal = tmp_path / "runbook.jsonl"
    # 16 MiB a request: the VM runs out about every 30 s, and the 45 s the runbook measures
    # for hold 50+ requests between the kills (at 2/s it saw 44: not enough to propose).
    load = Load(lab, rate=4.0)
    try:
        run = subprocess.run(
            [CLI, "runbook", "run", "oom-after-deploy", *lab_server.target_args, "--yes",
             "--set", "watch=90s", "--journal", str(journal)],
            capture_output=True, text=True, timeout=1200, check=False,
        )  # fmt: skip
    finally:
        load.stop()
    print(run.stdout[:4000], run.stdout[-4000:], run.stderr[-2000:])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-1000:]
    out = run.stdout
    steps = re.search(r"(\d+)/(\d+) steps passed", out)
    assert "service = backend" in out and steps and steps.group(1) == steps.group(2), out[-3000:]
    assert f"compose_file = {prod}    (" in out, out[:3000]
    limit = re.search(r"^  mem_limit = (\d+)M    \((.*)\)$", out, re.MULTILINE)
    # From nothing: the limit the workers need where it fits ("no limit in effect: ... it fits
    # the server"), else the most the server can give ("no limit anywhere; ... more than the
    # server has"): both runs were seen, on what the workers had grown to when measured.
    assert limit and re.match(r"no limit (in effect|anywhere)", limit.group(2)), out[:3000]
    # No cgroup parent: what the VM's RAM leaves, after the others and the host's own use.
    left = re.search(r"\(the host's RAM\).* = ([\d.]+) (MiB|GiB) left for backend",
                     limit.group(2))  # fmt: skip
    assert left, limit.group(2)
    left_mib = float(left.group(1)) * (1024 if left.group(2) == "GiB" else 1)
    assert 64 <= int(limit.group(1)) <= left_mib + 0.05 * 1024 < 1536, limit.group(2)

    recreate = next(
        r["argv"]
        for r in read_journal(journal)
        if r.get("kind") == "command" and "--force-recreate" in r.get("argv", [])
    )
    assert recreate[:2] == ["docker", "compose"], recreate  # compose v2 on the VM
    assert [recreate[i + 1] for i, a in enumerate(recreate) if a == "-f"] == [base, prod]
    assert recreate[recreate.index("--project-directory") + 1] == lab.stack_dir
    watch = next(
        r
        for r in read_journal(journal)
        if r.get("kind") == "runbook_step" and r.get("step") == "watch" and r.get("finished")
    )
    assert watch["state"] == "passed" and watch["finished"] - watch["started"] >= 90
    assert "no OOM kill of project icl since the step began" in out
    backend = next(c for c in lab.status() if c.service == "backend")
    assert backend.memory_limit == int(limit.group(1)) * (1 << 20)  # from nothing, in effect

    undo = subprocess.run(
        [CLI, "runbook", "undo", str(journal), *lab_server.target_args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert undo.returncode == 0, undo.stdout + undo.stderr
    assert digests() == originals  # both files byte for byte

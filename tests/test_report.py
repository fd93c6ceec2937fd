"""The postmortem from a synthetic journal built from the real event classes and Journal."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from incident_console.domain.events import (
    ContainerInfo,
    ContainerSample,
    Event,
    HealthChange,
    LogLine,
    LogSignal,
    OomConstraint,
    OomKill,
    ProbeResult,
)
from incident_console.monitor.journal import Journal, read_journal
from incident_console.report import render_report, write_report

T0 = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC
MIB = 1024 * 1024
BACKEND = "b" * 64
FRONTEND = "f" * 64
URL = "http://127.0.0.1:8080/api/v1/health"
CLI = [str(Path(sys.executable).with_name("incident-console"))]


def _incident(journal: Journal) -> None:
    """A lab-like incident: the backend leaks, two workers OOM-killed, a runbook fixes it."""

    def put(event: Event, **extra: Any) -> None:
        record = event.to_record()
        record["host"] = "lab"
        record.update(extra)
        journal.write(record)

    put(
        ContainerInfo(
            time=T0,
            id=BACKEND,
            name="ict_backend_1",
            service="backend",
            state="running",
            health="healthy",
            memory_limit_bytes=256 * MIB,
            environment=("DB_PASSWORD=hunter2", "GUNICORN_WORKERS=4"),
        )
    )
    put(ContainerInfo(time=T0, id=FRONTEND, name="ict_frontend_1", service="frontend"))
    for i in range(0, 600, 10):
        used = (100 + i / 2) * MIB if i < 300 else (90 + (i - 300) / 30) * MIB
        put(ContainerSample(T0 + i, BACKEND, int(used), 256 * MIB, 20.0))
        put(ContainerSample(T0 + i, FRONTEND, 30 * MIB, 1 << 63, 1.0))
    put(ProbeResult(T0 + 5, URL, 200, 3.0))
    put(ProbeResult(T0 + 200, URL, 504, 30000.0))
    put(ProbeResult(T0 + 210, URL, None, None, error="timed out"))
    for n, (t, pid) in enumerate(((205, 7076), (250, 7134))):
        put(
            OomKill(
                T0 + t,
                pid,
                "gunicorn",
                OomConstraint.LIMIT,
                (200 + n * 10) * 1024 * 1024,
                container_id=BACKEND,
                container="ict_backend_1",
                service="backend",
            )
        )
        put(
            LogLine(
                T0 + t + 1,
                BACKEND,
                "ict_backend_1",
                f"[ERROR] Worker (pid:{pid}) was sent SIGKILL! Perhaps out of memory?",
                signal=LogSignal.WORKER_KILLED,
            )
        )
    put(HealthChange(T0 + 220, BACKEND, "ict_backend_1", "backend", "healthy", "unhealthy"))
    step = {
        "kind": "runbook_step",
        "host": "lab",
        "who": "oncall@laptop",
        "runbook": "oom-after-deploy",
        "step": "fewer-workers",
        "title": "Two workers",
        "step_kind": "remediate",
        "action": "compose_set",
        "checks": [],
        "started": T0 + 300,
        "exit_status": None,
        "output": {},
    }
    journal.write({**step, "state": "running", "verdict": "", "finished": None, "ts": T0 + 300})
    journal.write(
        {
            "kind": "command",
            "host": "lab",
            "who": "oncall@laptop",
            "why": "recreate",
            "argv": ["docker-compose", "-f", "/srv/app/docker-compose.yml", "up", "-d", "backend"],
            "started": T0 + 301,
            "duration_s": 4.2,
            "exit_status": 0,
            "output": {"sha256": "0" * 64, "lines": 1, "tail": ["Recreating ict_backend_1"]},
            "ts": T0 + 305,
        }
    )
    checks = [{"check": "no_new_oom", "status": "passed", "detail": "none since 20:31:40"}]
    journal.write(
        {
            **step,
            "state": "passed",
            "verdict": "all checks passed",
            "checks": checks,
            "finished": T0 + 320,
            "exit_status": 0,
            "ts": T0 + 320,
        }
    )
    verify = {**step, "step": "health-200", "title": "Health answers", "step_kind": "verify"}
    journal.write(
        {
            **verify,
            "started": T0 + 330,
            "state": "failed",
            "finished": T0 + 400,
            "verdict": "http: HTTP 504 3 times",
            "ts": T0 + 400,
        }
    )
    put(HealthChange(T0 + 340, BACKEND, "ict_backend_1", "backend", "unhealthy", "healthy"))
    put(ProbeResult(T0 + 345, URL, 200, 4.0))


def _journal(tmp_path: Path) -> Path:
    journal = Journal(tmp_path / "incident.jsonl")
    _incident(journal)
    journal.close()
    return journal.path


def test_report_sections_and_kills(tmp_path: Path) -> None:
    path = _journal(tmp_path)
    text = render_report(read_journal(path), followups=["More swap (2 GB)."])
    for heading in (
        "# Incident postmortem: lab",
        "## Summary",
        "## Timeline (UTC)",
        "## OOM kills",
        "## Memory",
        "### Before remediation: ict_backend_1",
        "### After remediation: ict_backend_1",
        "## Runbook steps",
        "## Follow-ups",
    ):
        assert f"\n{heading}\n" in f"\n{text}", heading
    kill_rows = [
        line
        for line in text.splitlines()
        if line.startswith("| 2026-05-28 20:3") and "| gunicorn |" in line
    ]
    assert len(kill_rows) == 2, kill_rows
    # One row per kill: the kernel's record and gunicorn's SIGKILL line are the same kill.
    assert kill_rows[0] == (
        "| 2026-05-28 20:30:05Z | ict_backend_1 | backend | gunicorn | 7076 | 200.0 MiB "
        "| limit 256.0 MiB | kernel, gunicorn | before remediation |"
    )
    assert "In the backend service (ict_backend_1), `gunicorn` processes" in text
    assert "at its 256.0 MiB memory limit (2 kills, anon-rss up to 210.0 MiB)" in text
    # The impact window: the first failed probe (T0+200) to the probe answering again.
    assert "**Impact window:** 2026-05-28 20:30:00Z to 2026-05-28 20:32:25Z (2 min 25 s)" in text
    assert (
        "**Remediation:** `fewer-workers` (passed), 2026-05-28 20:31:40Z to 2026-05-28 20:32:00Z."
        in text
    )
    assert "**Outcome:** no OOM kill since 2026-05-28 20:32:00Z (to 2026-05-28 20:36:30Z)" in text
    assert "the verify step `health-200` failed (http: HTTP 504 3 times)" in text
    assert "**Runbook:** oom-after-deploy: 2 steps run (1 passed, 1 failed)." in text
    # Runbook steps: who, verdicts, the command run during the step with its exit status.
    assert (
        "| 1 | fewer-workers: Two workers | remediate | passed | all checks passed "
        "| oncall@laptop | 20:31:40Z | 20 s |" in text
    )
    assert "| verify | failed | http: HTTP 504 3 times |" in text
    assert (
        "`docker-compose -f /srv/app/docker-compose.yml up -d backend` → exit 0, 4.2 s, "
        "by oncall@laptop" in text
    )
    assert "- [ ] More swap (2 GB)." in text
    # Charts are plain text: braille plot cells, no colour codes, the limit line named.
    assert "\x1b" not in text
    assert "```text" in text and "(horizontal line: memory limit 256.0 MiB)" in text
    assert any("\u2800" <= ch <= "\u28ff" for ch in text)


def test_same_journal_same_report(tmp_path: Path) -> None:
    records = read_journal(_journal(tmp_path))
    first = render_report(records)
    shuffled = list(records)
    random.Random(7).shuffle(shuffled)
    assert render_report(shuffled) == first
    assert render_report(read_journal(tmp_path / "incident.jsonl")) == first


def test_secrets_never_appear(tmp_path: Path) -> None:
    path = tmp_path / "raw.jsonl"
    # Written without the Journal, as an older or foreign journal might be: the report redacts.
    path.write_text(
        '{"kind":"command","host":"lab","who":"me","argv":["env","API_TOKEN=abc123secret"],'
        '"started":1780000000,"exit_status":0}\n'
        '{"kind":"note","host":"lab","what":"DB_PASSWORD=hunter2 in the env","time":1780000001}\n'
    )
    text = render_report(read_journal(path))
    assert "abc123secret" not in text and "hunter2" not in text
    assert "API_TOKEN=***" in text


def test_torn_journal_and_empty(tmp_path: Path) -> None:
    path = _journal(tmp_path)
    whole = render_report(read_journal(path))
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"kind":"oom_kill","pid":1,"pro')  # killed mid-write
    assert render_report(read_journal(path)) == whole
    assert "The journal has no records." in render_report([])


def test_report_command(tmp_path: Path) -> None:
    path = _journal(tmp_path)
    out = tmp_path / "pm" / "postmortem.md"
    done = subprocess.run(
        [*CLI, "report", str(path), "-o", str(out)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    text = out.read_text(encoding="utf-8")
    # The built-in runbook's "if it persists" list comes in by the runbook's name.
    assert "If it persists (from the runbook):" in text
    assert "pool_size=5" in text
    assert write_report(path, tmp_path / "again.md").read_text(encoding="utf-8") == text
    missing = subprocess.run(
        [*CLI, "report", str(tmp_path / "nope.jsonl")], capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 2
    assert (
        missing.stderr.strip()
        == f"incident-console: {tmp_path / 'nope.jsonl'}: no such journal file"
    )
    assert "Traceback" not in missing.stderr

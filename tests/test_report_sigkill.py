"""A monitor killed with SIGKILL mid-incident on the lab: the journal keeps everything, `report` renders it.

The child process runs a real HostMonitor on LocalHost (real docker engine, real kernel log) with
a real Journal, and prints the count of records written after each write. We load the lab until
the kernel OOM-kills a backend worker while it watches, SIGKILL it, and check that every record
it said it wrote is in the file, and that `incident-console report` names the kill and the backend.
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
from pathlib import Path

import pytest

from fixtures_lab import LabOom
from incident_console.lab.lab import Lab
from incident_console.lab.load import LoadStats
from incident_console.monitor.journal import read_journal

pytestmark = [pytest.mark.docker, pytest.mark.lab, pytest.mark.slow]

CLI = [str(Path(sys.executable).with_name("incident-console"))]

CHILD = r"""
import asyncio, sys
from pathlib import Path
from incident_console.monitor.host_monitor import HostMonitor
from incident_console.monitor.journal import Journal
from incident_console.transport.local import LocalHost

journal = Journal(Path(sys.argv[1]))
write = journal.write
count = 0

def counted(record):
    global count
    write(record)
    count += 1
    print(f"written {count} {record.get('kind')}", flush=True)

journal.write = counted

async def main():
    monitor = HostMonitor(LocalHost(), journal=journal, since=float(sys.argv[2]), probes=[sys.argv[3]])
    await monitor.start()
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def _records(path: Path) -> list[dict[str, object]]:
    return read_journal(path) if path.exists() else []


def _live_backend_kill(path: Path, container_id: str) -> bool:
    return any(
        r.get("kind") == "oom_kill"
        and r.get("container_id") == container_id
        and not r.get("replayed")
        for r in _records(path)
    )


def test_sigkill_mid_incident_loses_nothing(tmp_path: Path, lab: Lab, lab_oom: LabOom) -> None:
    path = tmp_path / "incident.jsonl"
    out = open(tmp_path / "child.out", "w+", encoding="utf-8")  # noqa: SIM115 - read after the kill
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(lab_oom.at - 120), lab.health_url],
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        # Let the sources start (the first sample summaries), then bring on the next kill.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            kinds = {r.get("kind") for r in _records(path)}
            if {"container", "sample", "source"} <= kinds:
                break
            assert child.poll() is None, (tmp_path / "child.out").read_text()
            time.sleep(0.5)
        stop = threading.Event()
        container_id = lab.backend_container_id()

        def watch(_stats: LoadStats) -> None:
            if _live_backend_kill(path, container_id):
                stop.set()

        stats = lab.load(duration_s=180, rate=8.0, progress=watch, stop=stop)
        assert _live_backend_kill(path, container_id), (
            f"no live OOM kill journaled after {stats.describe()}"
        )
        time.sleep(1.0)  # a little more of the incident: health, probes, gunicorn's log line
    finally:
        os.kill(child.pid, signal.SIGKILL)  # mid-incident, no chance to flush or close
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    out.seek(0)
    said = [line for line in out.read().splitlines() if line.startswith("written ")]
    out.close()
    assert said, "the child wrote nothing"
    written = int(said[-1].split()[1])
    lines = path.read_text(encoding="utf-8").splitlines()
    records = read_journal(path)
    # Every record the monitor said it had written is in the file, each one whole JSON.
    assert len(records) >= written, (len(records), written)
    assert all(isinstance(json.loads(line), dict) for line in lines[:written])
    kills = [
        r for r in records if r.get("kind") == "oom_kill" and r.get("container_id") == container_id
    ]
    assert kills and all(k.get("service") == "backend" for k in kills), kills

    report = tmp_path / "postmortem.md"
    done = subprocess.run(
        [*CLI, "report", str(path), "-o", str(report)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    text = report.read_text(encoding="utf-8")
    assert "## OOM kills" in text and "_backend_1 (backend): gunicorn" in text
    # One row per kill, whichever project the report takes for the incident's: this monitor
    # watches the whole engine, where other labs' backends are OOM-killed too, and nothing in
    # its journal (no command, restart or changed file) names the lab's project.
    live = next(k for k in kills if not k.get("replayed"))
    rows = [line for line in text.splitlines() if f"| {live['pid']} |" in line]
    assert len(rows) == 1, rows
    assert "| backend |" in rows[0] and "| limit 256.0 MiB |" in rows[0], rows[0]
    assert "| kernel" in rows[0], rows[0]  # reported by the kernel (and docker, if it saw it)
    affected = re.search(r"^Project `([^`]+)`;", text, re.M)
    assert affected is not None, text
    if affected[1] == lab.project:
        assert "In the backend service (" in text and "256.0 MiB memory limit" in text
    else:
        assert f"`{lab.project}` (" in text  # named among the other projects hit
    # The backend's memory: a chart, or, the journal holding one sample per 10 s, how few.
    samples = re.search(r"Too few samples in the journal \((\d+)\) to draw a chart", text)
    assert "```text" in text or (samples is not None and int(samples[1]) < 6), text
    (Path(__file__).parent / "artifacts").mkdir(exist_ok=True)
    (Path(__file__).parent / "artifacts" / "sigkill-postmortem.md").write_text(text)

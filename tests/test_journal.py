"""The journal: append-only, redacted, crash-safe, torn lines tolerated, disk errors survived."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from incident_console.domain.events import OomConstraint, OomKill
from incident_console.monitor.journal import Journal, read_journal


def test_records_round_trip_and_secrets_are_redacted(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    kill = OomKill(time=1.5, pid=7076, process="python3", constraint=OomConstraint.LIMIT)
    journal.write(kill.to_record())
    journal.write(
        {"kind": "container", "environment": ["DB_PASSWORD=hunter2", "GUNICORN_WORKERS=4"]}
    )
    journal.close()
    records = read_journal(tmp_path / "j.jsonl")
    assert records[0]["kind"] == "oom_kill" and records[0]["pid"] == 7076
    assert records[0]["constraint"] == "limit"
    raw = (tmp_path / "j.jsonl").read_text()
    assert "hunter2" not in raw
    assert "GUNICORN_WORKERS=4" in raw


def test_torn_last_line_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text('{"kind": "a", "ts": 1}\n{"kind": "b", "ts": 2}\n{"kind": "c", "t')
    assert [r["kind"] for r in read_journal(path)] == ["a", "b"]


def test_sigkill_loses_nothing_written(tmp_path: Path) -> None:
    """A process killed with SIGKILL right after write() keeps every record (no buffering in user space)."""
    path = tmp_path / "j.jsonl"
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from pathlib import Path
        from incident_console.monitor.journal import Journal
        j = Journal(Path({str(path)!r}))
        for i in range(500):
            j.write({{"kind": "note", "n": i}})
        print("written", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL
    assert "written" in proc.stdout
    assert [r["n"] for r in read_journal(path)] == list(range(500))


def test_unwritable_directory_is_reported_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    journal = Journal(blocker / "sub" / "j.jsonl")  # parent is a file: cannot be created
    journal.write({"kind": "note"})
    assert journal.error is not None and str(blocker) in journal.error
    assert journal.lost == 1


def test_full_disk_is_reported_and_writing_resumes(tmp_path: Path) -> None:
    """/dev/full fails every write with ENOSPC: the journal says so and keeps going."""
    if not os.path.exists("/dev/full"):
        raise AssertionError("/dev/full missing on this Linux machine")
    link = tmp_path / "j.jsonl"
    link.symlink_to("/dev/full")
    journal = Journal(link)
    for _ in range(3):
        journal.write({"kind": "note", "big": "x" * 10000})
    assert journal.error is not None and "No space left" in journal.error
    assert journal.lost >= 1

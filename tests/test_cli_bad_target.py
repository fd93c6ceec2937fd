"""Every command that takes a TARGET answers a bad one with one line and exit 2 (one shared
`open_target` in cli.py, not five copies of the same try/except)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = str(Path(sys.executable).with_name("incident-console"))
BAD = "ftp://nowhere"


@pytest.mark.parametrize(
    "args",
    [
        ["diagnose", BAD],
        ["console", BAD],
        ["watch", BAD],
        ["runbook", "run", "oom-after-deploy", BAD],
    ],
)
def test_bad_target_is_one_line_exit_2(args: list[str], tmp_path: Path) -> None:
    done = subprocess.run(
        [SCRIPT, *args, "--journal", str(tmp_path / "j.jsonl")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [
        "incident-console: invalid target 'ftp://nowhere': unsupported scheme 'ftp' (only ssh://)"
    ]


def test_undo_with_a_bad_target(tmp_path: Path) -> None:
    journal = tmp_path / "j.jsonl"
    journal.write_text('{"kind":"file_change","path":"/x","backup":"/x.bak","sha256_before":"0"}\n')
    done = subprocess.run(
        [SCRIPT, "runbook", "undo", str(journal), BAD],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "incident-console: invalid target 'ftp://nowhere': unsupported scheme 'ftp' (only ssh://)"
    ]

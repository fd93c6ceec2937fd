"""Bad input to the headless commands, through the installed `incident-console`.

Each answer is one line naming what was wrong, with the exit code README.md's "Exit codes"
documents: `--since ''` is an error (it meant "since boot"), `report` refuses what is not a
journal (it said "The journal is empty" and exit 0), `runbook run --dry-run` makes no journal,
and a second `lab down` of the same project is no traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures_lab import require_docker
from incident_console.lab.lab import Lab

SCRIPT = str(Path(sys.executable).with_name("incident-console"))


def run(
    args: list[str], home: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The real command; with `home`, a HOME (and data folder) of its own."""
    env = dict(os.environ)
    if home is not None:
        env = {k: v for k, v in env.items() if not k.startswith("XDG_")}
        env["HOME"] = str(home)
    return subprocess.run(
        [SCRIPT, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


# --since ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "invalid duration '': empty"),
        ("  ", "invalid duration '  ': empty"),
        ("soon", "invalid duration 'soon': use a number with s, m, h or d"),
        ("-5m", "invalid duration '-5m'"),
    ],
)
def test_since_that_is_no_duration_is_an_error(tmp_path: Path, value: str, why: str) -> None:
    """`diagnose` is the one command with --since (`incident-console --help` of each)."""
    done = run(["diagnose", "local", "--since", value], home=tmp_path, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"incident-console: --since: {why}"), lines
    assert done.stdout == ""  # refused before looking at the host, not "since boot"


def test_since_is_only_on_diagnose() -> None:
    """Should another command take --since, this says to give it the same check."""
    commands = [
        ["console"], ["diagnose"], ["report"], ["serve"], ["watch"], ["runbook", "run"],
        ["runbook", "undo"], ["lab", "up"], ["lab", "load"], ["lab", "down"],
    ]  # fmt: skip
    having = [c for c in commands if "--since" in run([*c, "--help"], timeout=60).stdout]
    assert having == [["diagnose"]]


@pytest.mark.parametrize("command", [["console"], ["watch", "-q"]])
def test_empty_config_name_is_an_error(tmp_path: Path, command: list[str]) -> None:
    """`--config ''` read the default file (and called it missing): the option is named."""
    done = run([*command, "--config", ""], home=tmp_path, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["incident-console: --config: empty file name"]


# report -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            b'theme = "incident-dark"\n\n[keymap]\nrestart = "ctrl+r"\n',
            "not an incident journal (line 1: 'theme = \"incident-dark\"'): no line is a JSON "
            "record with a 'kind'",
        ),
        (
            b"\n\nGET /api/v1/health 200\nGET / 200\n",
            "not an incident journal (line 3: 'GET /api/v1/health 200'): no line is a JSON "
            "record with a 'kind'",
        ),
        (os.urandom(64) + b"\0" + os.urandom(64), "not an incident journal (binary file"),
        (b"", "empty file, not an incident journal"),  # as README documents it
    ],
    ids=["toml", "garbage", "binary", "empty"],
)
def test_report_refuses_what_is_not_a_journal(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    journal = tmp_path / "incident.jsonl"
    journal.write_bytes(content)
    done = run(["report", str(journal)], timeout=60)
    assert done.returncode == 2, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"incident-console: {journal}: {expected}"), (
        done.stderr
    )
    assert "journal is empty" not in done.stdout + done.stderr
    assert files_under(tmp_path) == [journal]  # no report written beside it


def test_report_of_a_journal_still_works(tmp_path: Path) -> None:
    journal = tmp_path / "incident.jsonl"
    journal.write_text('{"kind": "note", "host": "local", "what": "console started", "ts": 1}\n')
    done = run(["report", str(journal), "-o", "-"], timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("#")


def test_report_of_a_missing_file_names_it(tmp_path: Path) -> None:
    done = run(["report", str(tmp_path / "nope.jsonl")], timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"incident-console: {tmp_path / 'nope.jsonl'}: no such journal file"
    ]


# runbook run --dry-run and lab down, on a lab of this module's own ---------------------------


@pytest.fixture(scope="module")
def own_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A small lab of this module's own (project ibi<pid>), removed at the end."""
    require_docker()
    project = f"ibi{os.getpid()}"
    lab = Lab(project, tmp_path_factory.mktemp("lab") / project)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


def test_dry_run_makes_no_journal(own_lab: Lab, tmp_path: Path) -> None:
    done = run(
        ["runbook", "run", "oom-after-deploy", "local", "--dry-run", "--set",
         f"project={own_lab.project}"],
        home=tmp_path,
        timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert "dry run: no journal" in done.stdout.splitlines()[0]
    assert f"(project {own_lab.project} on local)" in done.stdout  # it did preview the steps
    assert files_under(tmp_path) == []  # nothing in the data folder, nor anywhere in HOME


def test_dry_run_with_a_journal_named_is_refused(tmp_path: Path) -> None:
    journal = tmp_path / "j.jsonl"
    done = run(
        ["runbook", "run", "oom-after-deploy", "local", "--dry-run", "--journal", str(journal)],
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "incident-console: --journal: a dry run writes no journal (it changes nothing, no file "
        "either)"
    ]
    assert not journal.exists()


def test_second_lab_down_is_no_traceback(own_lab: Lab) -> None:
    """Fixed on main before this test (the issue saw a FileNotFoundError traceback): kept so
    it stays fixed. Runs last in this module: it removes the module's lab."""
    args = ["lab", "down", "--project", own_lab.project, "--dir", str(own_lab.directory)]
    for _ in range(2):
        done = run(args, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"lab {own_lab.project!r} removed"
        assert "Traceback" not in done.stderr and done.stderr == ""
    assert own_lab.container_ids() == []
    assert not own_lab.directory.exists()

"""A new user's first hour, as a test: the real console in tmux over a real sshd, on a busy engine.

The world is built first, as a real server has it: the lab up (containers that already run and
already logged), a neighbour compose project with its own `backend` on the same engine, OOM-killed
before the console was started. Then the console is typed in a shell as a person would, with no
`--set` and no `--probe`, and the session goes step by step: open, the backend's logs, `lab load`
and the kill on screen, the detail, the walkthrough run to its end (the fix must hold under the
load still running), the postmortem (its summary must agree with its tables), quit (nothing left
on the server). Each step's screen is kept under ci-artifacts/scenario/ with a step log; a
failing step is recorded and the steps that do not need it still run, so one run says which
steps pass.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import IN_CI
from fixtures_lab import require_docker, require_kernel_log
from fixtures_sshd import SshdServer
from scenario import world
from scenario.first_hour import FirstHour
from scenario.postmortem import Expected, contradictions
from scenario.runner import Scenario, Tmux, artifacts_dir, fresh_folder
from scenario.walkthrough import CONSOLE, LOAD


def require_tmux() -> None:
    if shutil.which("tmux") is None:
        if IN_CI:
            pytest.fail("tmux is required in CI")
        pytest.skip("tmux is not installed")


@pytest.fixture
def busy_engine(tmp_path: Path) -> Iterator[world.BusyEngine]:
    require_tmux()
    require_docker()
    require_kernel_log()
    fresh_folder(ARTIFACTS)
    engine = world.build(tmp_path / "labs", ARTIFACTS / "world.log")
    try:
        yield engine
    finally:
        engine.down()


ARTIFACTS = artifacts_dir("scenario")


# The session needs the real world and takes minutes (the reading tests below need neither).
@pytest.mark.sshd
@pytest.mark.docker
@pytest.mark.lab
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_new_users_first_hour(
    sshd: SshdServer, busy_engine: world.BusyEngine, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    bin_dir = str(Path(world.CONSOLE).parent)
    # A new user's shell: their own HOME (no config, journals in its data folder), the
    # installed command on PATH. Nothing else of the test's environment leaks in.
    env = {
        "HOME": str(home),
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "SHELL": "/bin/sh",
    }
    if "PYTHONPATH" in os.environ:  # a source checkout run as PYTHONPATH=src
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    tmux = Tmux(tmp_path / "tmux.sock", width=200, height=50, env=env)
    sc = Scenario(tmux, ARTIFACTS, CONSOLE)
    user = FirstHour(sc, busy_engine, sshd, home)
    try:
        tmux.start(CONSOLE)
        tmux.new_window(LOAD)
        sc.run("open", user.open)
        sc.run("logs", user.logs, needs=["open"])
        sc.run("load-kill", user.load_until_kill, needs=["open"])
        sc.run("detail", user.detail, needs=["load-kill"])
        sc.run("detail-logs", user.detail_logs, needs=["detail"])
        last = user.walk()
        # The watch step (the last) is the one that says the fix held under the load.
        sc.run("fix-holds", user.fix_holds, needs=[last, "load-kill"])
        tmux.keys(LOAD, "C-c")
        sc.run("postmortem", user.postmortem, needs=["open"])
        sc.run("quit", user.quit, needs=["open"])
    finally:
        with contextlib.suppress(Exception):
            sc.capture("load-window-last", window=LOAD)
        tmux.kill()
    failures = sc.failures()
    if failures:
        pytest.fail(
            f"{len(failures)} step(s) did not pass (captures in {ARTIFACTS}):\n{sc.report()}\n\n"
            f"first failing screen:\n{sc.first_failure_screen()}",
            pytrace=False,
        )
    print(f"\nscenario steps (captures in {ARTIFACTS}):\n{sc.report()}")


# The scenario's reading of a postmortem, checked on small reports (no engine needed): it
# must find each contradiction the issue saw, and none in a report that agrees with itself.

_AGREEING = """# Incident postmortem: ssh://root@127.0.0.1:2222

## Summary

- **What happened:** 2 OOM kills of project `icsc1` on ssh://root@127.0.0.1:2222 (icsc1_backend_1).
- **Not this incident:** project `icsn1` on the same host had 1 OOM kill (icsn1_backend_1 at 17:01:00Z).
- **Remediation:** gunicorn-settings (passed), 17:07:05Z to 17:08:00Z.
- **Outcome:** no OOM kill since 2026-12-01 17:08:00Z (to 2026-12-01 17:20:00Z).
- **Runbook:** oom-after-deploy: 2 steps run (1 passed, 1 failed), 1 skipped.

## Timeline (UTC)

| time (UTC) | what |
|---|---|
| 2026-12-01 17:05:00 | **OOM kill** in icsc1_backend_1 (backend): gunicorn pid 10 ×3 |
| 2026-12-01 17:06:00 | **OOM kill** in icsc1_backend_1 (backend): gunicorn pid 11 |

## OOM kills

| time (UTC) | container | service | process | pid | remediation |
|---|---|---|---|---|---|
| 2026-12-01 17:05:00Z | icsc1_backend_1 | backend | gunicorn | 10 | before remediation |
| 2026-12-01 17:06:00Z | icsc1_backend_1 | backend | gunicorn | 11 | before remediation |

## Runbook steps

| # | step | kind | result | verdict |
|---|---|---|---|---|
| 1 | host-memory | diagnose | passed | all checks passed |
| 2 | app-answers | diagnose | skipped | skipped by the operator |
| 3 | watch | verify | failed | no_new_oom |
"""

_EXPECTED = Expected("icsc1", "icsc1_backend_1", ["icsn1"], {10, 11})


def test_a_postmortem_that_agrees_with_itself_passes_the_scenarios_reading() -> None:
    assert contradictions(_AGREEING, _EXPECTED) == []


def test_the_scenarios_reading_finds_each_contradiction_issue_13_saw() -> None:
    edits = {
        # "no OOM kill since" before a kill of the table
        "no OOM kill since 2026-12-01 17:08:00Z": "no OOM kill since 17:05:30Z",
        # skipped steps counted as run
        "2 steps run (1 passed, 1 failed)": "3 steps run (1 passed, 1 failed)",
        # the neighbour named in the summary's account
        "(icsc1_backend_1).": "(icsc1_backend_1); impact icsn1_backend_1.",
        # one kill on two timeline rows (a second source)
        "| 2026-12-01 17:06:00 | **OOM kill**": "| 2026-12-01 17:06:00 | icsc1_backend_1: oom |\n"
        "| 2026-12-01 17:06:00 | **OOM kill**",
        # the neighbour's kill in this incident's table
        "| 11 | before remediation |": "| 11 | before remediation |\n"
        "| 2026-12-01 17:01:00Z | icsn1_backend_1 | backend | gunicorn | 9 | - |",
    }
    text = _AGREEING
    for old, new in edits.items():
        assert old in text
        text = text.replace(old, new)
    # ... and a kill the kernel logged (pid 12) that the report left out.
    expected = Expected("icsc1", "icsc1_backend_1", ["icsn1"], {10, 11, 12})
    found = "\n".join(contradictions(text, expected))
    assert "no OOM kill since 17:05:30" in found
    assert "3 step(s) run" in found
    assert "names the neighbour project 'icsn1'" in found
    assert "the timeline has 3 OOM rows" in found
    assert "kill(s) of other projects: ['icsn1_backend_1']" in found
    assert "the summary says 2 OOM kill(s), the table has 3 rows" in found
    assert "not in the table: [12]" in found

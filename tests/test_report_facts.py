"""The postmortem of the session seen in issue 13: every section tells the same story.

The journal is written with the real event classes, the real runbook engine (the built-in
runbook's steps and their records) and the real Journal, as the console writes them: a manual
restart at 17:07:05, the remediate steps, kills at 17:11:48 and 17:12:16 each reported by the
kernel, ~10 docker `oom` events and gunicorn's log line, a failed watch step, an undo at
17:12:48, and another compose project on the host with an old kill of its own.
"""

from __future__ import annotations

import calendar
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from incident_console.domain.events import (
    ContainerEvent,
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
from incident_console.report import JournalError, derive_facts, read_journal_file, render_report
from incident_console.runbook.engine import CheckResult, CheckStatus, Engine, FileChange
from incident_console.runbook.loader import load_runbook

MIB = 1024 * 1024
BACKEND = "b" * 64
FRONTEND = "f" * 64
SHOP = "5" * 64
URL = "http://127.0.0.1:8080/api/v1/health"
CLI = [str(Path(sys.executable).with_name("incident-console"))]


def at(hms: str) -> float:
    """Epoch seconds of 2026-12-01 at HH:MM:SS UTC."""
    h, m, s = (int(part) for part in hms.split(":"))
    return float(calendar.timegm((2026, 12, 1, h, m, s)))


class Session:
    """Writes one incident's records the way the console does."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        runbook = load_runbook("oom-after-deploy")
        names = set(runbook.requires) | {n for s in runbook.steps for n in s.requires}
        self.variables = {name: f"<{name}>" for name in names}
        self.variables.update(service="backend", watch="30m", health_url=URL)
        self.engine = Engine(runbook, self.variables)

    def put(self, event: Event) -> None:
        record = event.to_record()
        record["host"] = "lab"
        self.journal.write(record)

    def step(self, step_id: str) -> tuple[int, Any]:
        i = self.engine.index(step_id)
        return i, self.engine.records[i]

    def write_step(self, record: Any, ts: float) -> None:
        self.journal.write(
            {
                "host": "lab",
                "who": "oncall@laptop",
                **record.to_record("oom-after-deploy", self.variables),
                "ts": ts,
            }
        )

    def run(self, step_id: str, start: str, end: str, error: str = "") -> None:
        i, record = self.step(step_id)
        self.engine.start(i, at(start))
        self.write_step(record, at(start))
        checks = [CheckResult("no_new_oom", CheckStatus.PASSED, "none")] if not error else []
        self.engine.decide(i, checks, window_over=True, now=at(end), error=error)
        self.write_step(record, at(end))

    def skip(self, step_id: str, when: str) -> None:
        i, record = self.step(step_id)
        self.engine.skip(i, at(when))
        self.write_step(record, at(when))

    def kill(self, hms: str, pid: int, worker_pid: int, docker_events: int = 10) -> None:
        """One kill as the sources report it: kernel, docker's oom events, gunicorn's line."""
        t = at(hms)
        self.put(
            OomKill(
                t,
                pid,
                "gunicorn",
                OomConstraint.LIMIT,
                230 * MIB,
                container_id=BACKEND,
                container="icl_backend_1",
                service="backend",
                source="dmesg",
            )
        )
        for n in range(docker_events):
            self.put(ContainerEvent(t + 0.2 * n, BACKEND, "icl_backend_1", "backend", "oom"))
        self.put(
            LogLine(
                t + 0.6,
                BACKEND,
                "icl_backend_1",
                f"[2026-12-01 {hms} +0000] [1] [ERROR] Worker with pid {worker_pid} was "
                "terminated due to signal 9",
                signal=LogSignal.WORKER_KILLED,
            )
        )


def seen_session(journal: Journal, *, end: str = "17:13:00") -> None:
    """The issue's session, 17:00 to `end` (samples every 10 s, as the monitor journals them)."""
    s = Session(journal)
    s.put(ContainerInfo(at("17:00:00"), BACKEND, "icl_backend_1", project="icl", service="backend",
                        memory_limit_bytes=256 * MIB, health="healthy"))  # fmt: skip
    s.put(
        ContainerInfo(at("17:00:00"), FRONTEND, "icl_frontend_1", project="icl", service="frontend")
    )
    s.put(ContainerInfo(at("17:00:00"), SHOP, "shop_web_1", project="shop", service="web",
                        memory_limit_bytes=128 * MIB))  # fmt: skip
    # The other project's kill, from earlier in the day: read back from the kernel log.
    s.put(OomKill(at("15:02:00"), 4242, "node", OomConstraint.LIMIT, 120 * MIB, container_id=SHOP,
                  container="shop_web_1", service="web", source="dmesg", replayed=True))  # fmt: skip
    stop = at(end)
    t = at("17:00:00")
    while t <= stop:
        used = 150 * MIB + int((t - at("17:00:00")) * 100_000) % (100 * MIB)
        s.put(ContainerSample(t, BACKEND, used, 256 * MIB, 30.0))
        s.put(ContainerSample(t, SHOP, 60 * MIB, 128 * MIB, 1.0))
        t += 10
    s.put(ProbeResult(at("17:00:05"), URL, 200, 4.0))
    s.kill("17:04:30", 91001, 10)
    for hms, old, new in (
        ("17:04:40", "healthy", "unhealthy"),
        ("17:04:55", "unhealthy", "healthy"),
        ("17:05:10", "healthy", "unhealthy"),
        ("17:05:25", "unhealthy", "healthy"),
        ("17:05:40", "healthy", "unhealthy"),
    ):
        s.put(HealthChange(at(hms), BACKEND, "icl_backend_1", "backend", old, new))
    s.put(HealthChange(at("17:06:00"), SHOP, "shop_web_1", "web", "healthy", "unhealthy"))
    s.put(ProbeResult(at("17:05:00"), URL, 502, 10.0))
    # The manual restart: an action, not remediation.
    journal.write({"kind": "action", "host": "lab", "what": "restart container",
                   "who": "oncall@laptop", "container": "icl_backend_1", "container_id": BACKEND,
                   "started": at("17:07:05"), "duration_s": 1.4, "error": ""})  # fmt: skip
    s.put(HealthChange(at("17:07:30"), BACKEND, "icl_backend_1", "backend", "unhealthy", "healthy"))
    s.put(ProbeResult(at("17:07:35"), URL, 200, 5.0))
    s.run("host-memory", "17:08:00", "17:08:02")
    s.skip("service-logs", "17:08:05")
    s.skip("app-answers", "17:08:06")
    s.run("gunicorn-settings", "17:09:00", "17:09:05")
    _, settings = s.step("gunicorn-settings")
    settings.change = FileChange("/srv/icl/docker-compose.yml", "/srv/icl/docker-compose.yml.bak",
                                 "0" * 64, "1" * 64)  # fmt: skip
    journal.write({"kind": "file_change", "host": "lab", "path": settings.change.path,
                   "backup": settings.change.backup, "sha256_before": "0" * 64,
                   "sha256_after": "1" * 64, "step": "gunicorn-settings",
                   "time": at("17:09:04")})  # fmt: skip
    s.skip("memory-limit", "17:09:08")
    s.run("recreate", "17:09:10", "17:09:40")
    journal.write({"kind": "command", "host": "lab", "who": "oncall@laptop", "why": "recreate",
                   "argv": ["docker-compose", "-p", "icl", "up", "-d", "--force-recreate",
                            "--no-deps", "backend"], "started": at("17:09:11"),
                   "duration_s": 20.5, "exit_status": 0, "ts": at("17:09:32")})  # fmt: skip
    s.run("memory-dropped", "17:09:40", "17:10:20")
    i, watch = s.step("watch")
    s.engine.start(i, at("17:10:20"))
    s.write_step(watch, at("17:10:20"))
    s.kill("17:11:48", 93001, 12)
    s.engine.decide(i, [CheckResult("no_new_oom", CheckStatus.FAILED, "OOM kill at 17:11:48")],
                    window_over=False, now=at("17:11:49"))  # fmt: skip
    s.write_step(watch, at("17:11:49"))
    s.kill("17:12:16", 93077, 13)
    s.engine.rolled_back(s.engine.index("gunicorn-settings"), at("17:12:48"))
    s.write_step(settings, at("17:12:48"))
    journal.write({"kind": "file_restore", "host": "lab", "path": settings.change.path,
                   "backup": settings.change.backup, "time": at("17:12:48")})  # fmt: skip


def _write(tmp_path: Path, **kwargs: Any) -> Path:
    journal = Journal(tmp_path / "incident.jsonl")
    seen_session(journal, **kwargs)
    journal.close()
    return journal.path


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


@pytest.fixture
def report(tmp_path: Path) -> str:
    return render_report(read_journal(_write(tmp_path)))


def test_summary_counts_the_kills_after_remediation(report: str) -> None:
    summary = _section(report, "Summary")
    # Remediation is the remediate steps that ran: not the restart at 17:07:05, not the undo.
    assert (
        "- **Remediation:** `gunicorn-settings` (passed), `recreate` (passed), "
        "2026-12-01 17:09:00Z to 2026-12-01 17:09:40Z; undone: runbook step "
        "`gunicorn-settings` rolled back at 2026-12-01 17:12:48Z" in summary
    )
    assert (
        "- **Outcome:** **2 OOM kills after remediation** at 2026-12-01 17:11:48Z, "
        "2026-12-01 17:12:16Z; the verify step `watch` failed (no_new_oom: OOM kill at 17:11:48)"
        in summary
    )
    assert "no OOM kill since" not in report
    assert "- **Restarts (not remediation):** icl_backend_1 at 2026-12-01 17:07:05Z" in summary
    # The kill table's remediation column says the same of the same kills.
    table = _section(report, "OOM kills")
    after = [line for line in table.splitlines() if line.endswith("| after remediation |")]
    assert [line.split(" | ")[0] for line in after] == [
        "| 2026-12-01 17:11:48Z",
        "| 2026-12-01 17:12:16Z",
    ]


def test_one_row_per_kill_with_its_sources(report: str) -> None:
    table = _section(report, "OOM kills")
    rows = [line for line in table.splitlines() if line.startswith("| 2026-12-01 17:")]
    assert len(rows) == 3, rows
    assert all("| icl_backend_1 | backend | gunicorn |" in row for row in rows)
    assert all("| kernel, docker, gunicorn |" in row for row in rows)
    timeline = _section(report, "Timeline (UTC)")
    kill_rows = [line for line in timeline.splitlines() if "**OOM kill**" in line]
    assert len(kill_rows) == 3, kill_rows
    assert ": oom" not in timeline  # docker's ~10 oom events per kill are in the kill's row
    assert "was terminated due to signal 9" not in timeline
    # The health flapping 17:04:40-17:05:40 is one row; the recovery after the restart its own.
    flap = [line for line in timeline.splitlines() if "icl_backend_1 health flapping" in line]
    assert flap == [
        "| 2026-12-01 17:04:40 | icl_backend_1 health flapping: 5 changes (3 to unhealthy), "
        "last **unhealthy** (to 17:05:40Z) |"
    ]
    assert "| 2026-12-01 17:07:30 | icl_backend_1 unhealthy → **healthy** |" in timeline


def test_impact_is_the_affected_project_only(report: str) -> None:
    summary = _section(report, "Summary")
    impact = next(line for line in summary.splitlines() if "**Impact window:**" in line)
    assert "shop" not in impact
    # First sign (the kill at 17:04:30) to the last kill (17:12:16): every kill is inside.
    assert impact.startswith(
        "- **Impact window:** 2026-12-01 17:04:30Z to 2026-12-01 17:12:16Z (7 min 46 s): "
        "3 OOM kills in icl_backend_1; icl_backend_1 unhealthy 3 times; "
        f"probe {URL} failed 1 time."
    ), impact
    assert "3 OOM kills of project `icl` on lab (icl_backend_1)" in summary
    # The restart and the `-p icl` command say which project the operator was working on.
    assert "- **Affected project:** `icl` (the operator worked on it)." in summary
    assert (
        "- **Other projects hit on this host:** `shop` (1 kill): listed under OOM kills" in summary
    )
    table = _section(report, "OOM kills")
    others = table[table.index("### Other projects on the host (not this incident)") :]
    assert "| 2026-12-01 15:02:00Z (replayed) | shop | shop_web_1 | web | node | 4242 |" in others
    timeline = _section(report, "Timeline (UTC)")
    assert "shop_web_1" not in timeline
    memory = _section(report, "Memory")
    assert "shop_web_1" not in memory and "### Before remediation: icl_backend_1" in memory


def test_skipped_steps_are_not_counted_as_run(report: str) -> None:
    summary = _section(report, "Summary")
    assert (
        "- **Runbook:** oom-after-deploy: 5 steps run (4 passed, 1 failed), 3 skipped, 1 undone."
        in summary
    )
    steps = _section(report, "Runbook steps")
    assert "| remediate | skipped | skipped by the operator |" in steps
    assert "| remediate | passed, undone | all checks passed |" in steps
    timeline = _section(report, "Timeline (UTC)")
    assert "runbook step memory-limit (remediate): **skipped**" in timeline


def test_charts_after_remediation_have_the_samples(report: str) -> None:
    memory = _section(report, "Memory")
    # 17:09:40 to the undo at 17:12:48: 19 samples, a chart; then the undo's own period.
    after = memory[memory.index("### After remediation: icl_backend_1") :]
    assert after.split("\n", 3)[2] == "```text", after[:200]
    assert "### After the undo: icl_backend_1\n\nToo few samples after the undo (2)" in memory


def test_too_few_samples_after_remediation_says_so(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "short.jsonl")
    s = Session(journal)
    s.put(ContainerInfo(at("17:00:00"), BACKEND, "icl_backend_1", project="icl",
                        service="backend", memory_limit_bytes=256 * MIB))  # fmt: skip
    for n in range(0, 130, 10):
        s.put(ContainerSample(at("17:00:00") + n, BACKEND, (100 + n) * MIB, 256 * MIB, 5.0))
    s.kill("17:00:30", 99, 7)
    s.run("gunicorn-settings", "17:01:50", "17:02:00")
    journal.close()
    text = render_report(read_journal(journal.path))
    assert "Too few samples after remediation (1) to draw a chart." in text
    assert "### Before remediation: icl_backend_1\n\n```text" in text


def test_same_journal_same_bytes(tmp_path: Path) -> None:
    records = read_journal(_write(tmp_path))
    first = render_report(records)
    assert render_report(list(reversed(records))) == first
    assert derive_facts(records) == derive_facts(list(reversed(records)))


# Bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "empty file, not an incident journal"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)), "binary file"),
        (b'[hosts.lab]\ntarget = "ssh://lab"\nread_only = true\n', "not an incident journal"),
        (b"hello\nthis is not json\n", "not an incident journal"),
        (b'{"a": 1}\n[1, 2]\n', "no line is a JSON record with a 'kind'"),
    ],
    ids=["empty", "binary", "toml", "garbage", "json-without-kind"],
)
def test_report_refuses_what_is_not_a_journal(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "thing.jsonl"
    path.write_bytes(content)
    with pytest.raises(JournalError, match=re.escape(why)):
        read_journal_file(path)
    out = tmp_path / "out.md"
    done = subprocess.run(
        [*CLI, "report", str(path), "-o", str(out)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and why in lines[0], done.stderr
    assert not out.exists()  # nothing written over a wrong path


def test_torn_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = _write(tmp_path)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(40, '{"kind":"sample","id":"bbb","memo\n')  # a crash mid-write, then resumed
    lines.append('{"kind":"oom_kill","pid":1,"pro')
    path.write_text("".join(lines), encoding="utf-8")
    read = read_journal_file(path)
    assert read.skipped_lines == 2
    out = tmp_path / "torn.md"
    done = subprocess.run(
        [*CLI, "report", str(path), "-o", str(out)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    text = out.read_text(encoding="utf-8")
    assert "2 torn or unreadable lines of the journal were skipped." in text
    assert "**2 OOM kills after remediation**" in text


def test_a_recreated_container_keeps_its_line(tmp_path: Path) -> None:
    """compose v1 renames the old container `<id12>_name` on recreate: still the same series."""
    new_id = "c" * 64
    journal = Journal(tmp_path / "recreate.jsonl")
    s = Session(journal)
    s.put(ContainerInfo(at("17:00:00"), BACKEND, "icl_backend_1", project="icl",
                        service="backend", memory_limit_bytes=256 * MIB))  # fmt: skip
    for n in range(0, 120, 10):
        s.put(ContainerSample(at("17:00:00") + n, BACKEND, (100 + n) * MIB, 256 * MIB, 5.0))
    s.kill("17:01:00", 99, 7)
    s.run("recreate", "17:01:55", "17:02:00")
    s.put(ContainerInfo(at("17:01:58"), BACKEND, f"{BACKEND[:12]}_icl_backend_1", project="icl",
                        service="backend", memory_limit_bytes=256 * MIB))  # fmt: skip
    s.put(ContainerInfo(at("17:01:59"), new_id, "icl_backend_1", project="icl",
                        service="backend", memory_limit_bytes=256 * MIB))  # fmt: skip
    for n in range(0, 120, 10):
        s.put(ContainerSample(at("17:02:00") + n, new_id, (60 + n) * MIB, 256 * MIB, 5.0))
    journal.close()
    facts = derive_facts(read_journal(journal.path))
    assert facts.charted == ("icl_backend_1",)
    assert [period.samples for period in facts.memory] == [12, 12]
    assert [k.container for k in facts.kills] == ["icl_backend_1"]


def _door(journal: Journal, hms: str, change_id: str, kind: str, what: str, **extra: Any) -> None:
    """A change through the one door as it journals it: intent, then result (or refusal)."""
    t = at(hms)
    base = {"kind": "change", "host": "lab", "who": "oncall@laptop", "change_id": change_id,
            "change": kind, "what": what}  # fmt: skip
    journal.write({**base, "phase": "intent", "why": extra.pop("why", ""), "ts": t})
    if "reason" in extra:
        journal.write({**base, "phase": "refused", "reason": extra["reason"], "ts": t})
        return
    journal.write({**base, "phase": "result", "ok": True, "exit_status": 0, "duration_s": 1.0,
                   "ts": t + 1})  # fmt: skip
    if kind == "restart":  # the door's legacy twin, which the console always wrote
        journal.write({"kind": "action", "host": "lab", "what": "restart container",
                       "who": "oncall@laptop", "container": what.removeprefix("restart "),
                       "container_id": BACKEND, "started": t, "duration_s": 1.0, "error": "",
                       "change_id": change_id})  # fmt: skip


def test_changes_through_the_one_door_count_once(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "door.jsonl")
    s = Session(journal)
    s.put(ContainerInfo(at("17:00:00"), BACKEND, "icl_backend_1", project="icl",
                        service="backend", memory_limit_bytes=256 * MIB))  # fmt: skip
    s.kill("17:01:00", 99, 7)
    _door(journal, "17:02:00", "c1", "restart", "restart icl_backend_1")
    _door(journal, "17:02:30", "c2", "write", "write /srv/icl/docker-compose.yml",
          reason="read-only")  # fmt: skip
    i, recreate = s.step("recreate")
    s.engine.start(i, at("17:03:00"))
    s.write_step(recreate, at("17:03:00"))
    _door(journal, "17:03:05", "c3", "command", "docker-compose -p icl up -d backend")
    s.engine.decide(i, [], window_over=True, now=at("17:03:30"))
    s.write_step(recreate, at("17:03:30"))
    _door(journal, "17:05:00", "c4", "command", "docker-compose -p icl up -d --scale backend=2")
    _door(journal, "17:06:00", "c5", "command", "cp -p -- /srv/icl/x.bak /srv/icl/x.yml",
          why="undo: restore /srv/icl/x.yml")  # fmt: skip
    journal.write({"kind": "file_restore", "host": "lab", "path": "/srv/icl/x.yml",
                   "backup": "/srv/icl/x.bak", "time": at("17:06:01")})  # fmt: skip
    journal.close()
    facts = derive_facts(read_journal(journal.path))
    assert [(r.time, r.target) for r in facts.restarts] == [(at("17:02:00"), "icl_backend_1")]
    # The recreate step (its own command inside) and the change made by hand after it; not the
    # refused write, not the restart, not the undo's copy.
    assert [r.what for r in facts.remediation] == [
        "`recreate`",
        "`docker-compose -p icl up -d --scale backend=2`",
    ]
    assert [u.what for u in facts.undos] == ["restored `/srv/icl/x.yml` from its backup"]
    text = render_report(read_journal(journal.path))
    assert "refused: `write /srv/icl/docker-compose.yml` (read-only)" in text
    assert text.count("restart container icl_backend_1") == 1

"""`incident-console watch` against the real lab: restarts, limits, dry-run, OOM notifications.

Each test runs the real command as a subprocess on `local` (the docker engine here), with a
short-interval policy, and stops it with SIGTERM (which must exit 0). The lab is this module's
own compose project (`icw<pid>`), since these tests stop and restart its frontend.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures_lab import require_docker
from incident_console.lab.lab import Lab, free_loopback_port
from incident_console.monitor.journal import read_journal

PROJECT = f"icw{os.getpid()}"
CLI = str(Path(sys.executable).parent / "incident-console")


class Webhook:
    """A local HTTP server that keeps every JSON POST with the time it arrived."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict[str, Any]]] = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hook.received.append((time.time(), json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, kind: str) -> list[tuple[float, dict[str, Any]]]:
        return [(t, e) for t, e in self.received if e.get("event") == kind]


@pytest.fixture(scope="module")
def wlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """This module's own lab (its frontend gets stopped and restarted)."""
    require_docker()
    lab = Lab(PROJECT, tmp_path_factory.mktemp("wlab") / PROJECT)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.server.shutdown()


def wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def records(journal: Path, kind: str, **match: Any) -> list[dict[str, Any]]:
    if not journal.exists():
        return []
    return [
        r
        for r in read_journal(journal)
        if r.get("kind") == kind and all(r.get(k) == v for k, v in match.items())
    ]


class Running:
    """The watch command as a subprocess."""

    def __init__(self, tmp: Path, policy: str, *args: str) -> None:
        self.policy = tmp / "policy.yaml"
        self.policy.write_text(policy)
        self.journal = tmp / "journal.jsonl"
        self.out = tmp / "out.txt"
        with open(self.out, "w") as out:
            self.proc = subprocess.Popen(
                [CLI, "watch", "local", "--policy", str(self.policy), "--journal",
                 str(self.journal), *args],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONFAULTHANDLER": "1"},
            )  # fmt: skip

    def ready(self, probes: bool = True) -> None:
        """Wait until the kernel log is followed (and a probe has answered, with probes)."""

        def up() -> bool:
            assert self.proc.poll() is None, self.out.read_text()
            if not records(self.journal, "source", source="kernel_log"):
                return False
            return not probes or bool(records(self.journal, "probe"))

        wait_for("watch to start", up, 30)

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)  # faulthandler: where it hangs
            self.proc.wait(timeout=10)
            raise AssertionError(
                "watch did not stop on SIGTERM:\n" + self.out.read_text()
            ) from None
        text = self.out.read_text()
        assert code == 0, text
        return text


def started_at(lab: Lab) -> dict[str, str]:
    out = subprocess.run(
        ["docker", "inspect", "--format", "{{.Name}} {{.State.StartedAt}}", *lab.container_ids()],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())


def policy(probe_url: str, *, times: int, interval: float, extra: str = "", notify: str) -> str:
    # project: other sessions' labs run on this engine too; only ours may be touched.
    return f"""
project: {PROJECT}
probes:
  - {{name: frontend, url: "{probe_url}", interval: {interval}s, timeout: 1s}}
rules:
  - name: restart-frontend
    probe_fails: {{probe: frontend, times: {times}}}
    action: restart
    target: frontend
{extra}
stop_timeout: 1s
status_interval: 2s
notify:
{notify}
"""


def test_malformed_policy_is_one_line_per_error_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("probes:\n  - name: f\n    url: http://x/\n    interval: soon\n")
    done = subprocess.run([CLI, "watch", "--policy", str(bad)], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.startswith(f"incident-console: policy {bad}:4:5: probes[0].interval:")
    assert "Traceback" not in done.stderr
    assert subprocess.run([CLI, "watch", "--check"], capture_output=True).returncode == 0


def test_dry_run_changes_nothing_but_journals_its_intents(wlab: Lab, tmp_path: Path) -> None:
    before = started_at(wlab)
    closed = f"http://127.0.0.1:{free_loopback_port()}/"
    run = Running(tmp_path, policy(closed, times=1, interval=0.5,
                                   notify=f"  command: [{sys.executable}, -c, 'pass']"),
                  "--dry-run")  # fmt: skip
    run.ready()
    wait_for("an intent", lambda: records(run.journal, "watch", decision="restart"), 20)
    out = run.stop()
    intents = records(run.journal, "watch", decision="restart")
    assert all(r["acted"] is False and r["why_not"] == "dry-run" for r in intents)
    assert intents[0]["target"] == "frontend"
    assert records(run.journal, "action") == []  # nothing was done to a container
    assert started_at(wlab) == before
    assert "would restart frontend" in out and "[dry-run]" in out


def test_stopped_frontend_is_restarted_and_recovers(
    wlab: Lab, tmp_path: Path, webhook: Webhook
) -> None:
    interval = 1.0
    run = Running(tmp_path, policy(wlab.frontend_url, times=2, interval=interval,
                                   extra="limits: {restarts_per_hour: 3, backoff: 5s}",
                                   notify=f"  webhook: {webhook.url}"))  # fmt: skip
    run.ready()
    frontend = wlab.container_id("frontend")
    assert frontend is not None
    subprocess.run(["docker", "stop", "-t", "1", frontend], check=True, capture_output=True)
    stopped = time.time()
    restart = wait_for(
        "the restart", lambda: records(run.journal, "action", what="restart container"), 20
    )[0]
    recovered = wait_for(
        "the probe to recover",
        lambda: [r for r in records(run.journal, "probe", url=wlab.frontend_url)
                 if r["time"] > restart["started"] and r["status"] == 200],
        20,
    )  # fmt: skip
    wait_for("the notifications", lambda: webhook.events("recovered"), 10)
    out = run.stop()

    failed = [r for r in records(run.journal, "probe", url=wlab.frontend_url)
              if r["time"] >= stopped - 0.5 and r["status"] is None]  # fmt: skip
    first_failure = failed[0]["time"]
    took = restart["started"] - first_failure
    print(f"restart {took:.2f} s after the first failed probe; "
          f"answering {recovered[0]['time'] - stopped:.1f} s after the stop")  # fmt: skip
    assert took <= 2 * interval + 0.5  # within two probe intervals
    assert restart["container"].startswith(PROJECT) and not restart["error"]
    decision = records(run.journal, "watch", decision="restart")[0]
    assert decision["acted"] is True and decision["evidence"]["probes"]
    kinds = [e["event"] for _, e in webhook.received]
    assert "restart" in kinds and "recovered" in kinds
    sent = webhook.events("restart")[0][1]
    assert sent["target"] == "frontend" and sent["acted"] is True and sent["host"] == "local"
    assert records(run.journal, "notification", event="restart")[0]["delivered"] is True
    assert "restart frontend" in out


def test_a_service_that_keeps_failing_is_restarted_at_most_n_times(
    wlab: Lab, tmp_path: Path
) -> None:
    sink = tmp_path / "notified.jsonl"
    closed = f"http://127.0.0.1:{free_loopback_port()}/"
    command = json.dumps(
        [
            sys.executable,
            "-c",
            f"import sys; open({str(sink)!r}, 'a').write(sys.stdin.read() + '\\n')",
        ]
    )
    run = Running(tmp_path, policy(closed, times=1, interval=0.5,
                                   extra="limits: {restarts_per_hour: 2, backoff: 1s}",
                                   notify=f"  command: {command}"))  # fmt: skip
    run.ready()
    wait_for("the escalation", lambda: records(run.journal, "watch", decision="escalate"), 40)
    time.sleep(5)  # the probe keeps failing: no more restarts may follow
    out = run.stop()
    restarts = records(run.journal, "action", what="restart container")
    assert len(restarts) == 2
    escalations = records(run.journal, "watch", decision="escalate")
    assert len(escalations) == 1 and escalations[0]["what"] == "restart_limit"
    assert "ESCALATION local: frontend restarted 2 times" in out
    sent = [json.loads(line) for line in sink.read_text().splitlines() if line.strip()]
    assert [e["event"] for e in sent].count("restart_limit") == 1
    assert [e["event"] for e in sent].count("restart") == 2
    wlab.wait_healthy("frontend", 30)


def test_oom_kill_notifies_naming_the_backend_within_5_s(
    wlab: Lab, tmp_path: Path, webhook: Webhook
) -> None:
    text = f"""
project: {PROJECT}
rules:
  - name: oom
    oom_kill: {{service: backend}}
status_interval: 2s
notify:
  webhook: {webhook.url}
"""
    run = Running(tmp_path, text)
    run.ready(probes=False)
    stop = threading.Event()

    def until_killed(_stats: object) -> None:
        if webhook.events("oom_kill"):
            stop.set()

    wlab.load(duration_s=150, rate=8.0, progress=until_killed, stop=stop)
    received, event = wait_for("the OOM notification", lambda: webhook.events("oom_kill"), 15)[0]
    run.stop()
    kill = records(run.journal, "oom_kill", replayed=False)[0]
    print(f"notified {received - kill['time']:.2f} s after the kernel line")
    assert received - kill["time"] <= 5.0
    assert event["target"] == "backend" and "backend" in event["summary"]
    assert any("Killed process" in line for line in event["evidence"]["kernel_lines"])
    assert event["evidence"]["memory"]["limit_bytes"] == 256 * 1024 * 1024

"""The default policy probes nothing nobody configured, and says so.

It used to probe http://127.0.0.1/ and .../api/v1/health from wherever watch ran: on a quiet,
healthy host whose frontend is on another port, `watch --dry-run` decided within 90 s to
restart the frontend and paged "probe backend failed 3 times in a row (Connection refused)".
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from incident_console.domain.events import ProbeResult
from incident_console.monitor.state import HostState
from incident_console.sources.probes import ProbeSource
from incident_console.transport.local import LocalHost
from incident_console.watch.policy import load_policy, parse_policy
from incident_console.watch.rules import RuleEngine
from incident_console.watch.runner import Watch, WatchTarget, status_line
from sources_support import docker_or_skip

OLD_DEFAULT_URLS = ("http://127.0.0.1/", "http://127.0.0.1/api/v1/health")
CLI = str(Path(sys.executable).with_name("incident-console"))


@pytest.fixture
def no_probe_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FRONTEND_URL", raising=False)
    monkeypatch.delenv("BACKEND_HEALTH_URL", raising=False)


def nothing_on_port_80() -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", 80)) != 0


def test_default_policy_acts_on_no_unconfigured_url(no_probe_env: None) -> None:
    policy = load_policy()
    assert [p.name for p in policy.probes] == ["frontend", "backend"]
    assert policy.active_probes == []
    assert all(p.discover for p in policy.probes)  # the hook health URL discovery fills
    engine = RuleEngine(policy)
    state = HostState("h")
    decisions = [
        d
        for t in range(10)
        for url in OLD_DEFAULT_URLS
        for d in engine.on_event(
            ProbeResult(
                time=float(t), url=url, status=None, latency_ms=None, error="Connection refused"
            ),  # fmt: skip
            state,
            now=float(t),
        )
    ]
    assert decisions == []
    notes = " ".join(policy.probe_notes())
    assert "no probe configured" in notes
    assert "frontend restarts on probe failure are off" in notes


def test_a_configured_url_is_probed_and_acted_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTEND_URL", "http://127.0.0.1:9/")
    monkeypatch.delenv("BACKEND_HEALTH_URL", raising=False)
    policy = load_policy()
    assert [p.name for p in policy.active_probes] == ["frontend"]
    engine = RuleEngine(policy)
    state = HostState("h")
    refused = [
        ProbeResult(
            time=float(t),
            url="http://127.0.0.1:9/",
            status=None,
            latency_ms=None,
            error="Connection refused",
        )  # fmt: skip
        for t in range(3)
    ]
    decisions = [d for r in refused for d in engine.on_event(r, state, now=r.time)]
    assert [(d.kind, d.target) for d in decisions] == [("restart", "frontend")]
    assert policy.probe_notes()[0].startswith("no probe configured (no URL for backend)")


def test_discovered_url_turns_the_probe_on(no_probe_env: None) -> None:
    probe = load_policy().probes[0]
    found = probe.with_url("http://127.0.0.1:8080/")
    assert found.configured and not found.discover and found.interval == probe.interval
    with pytest.raises(ValueError):
        probe.with_url("ftp://nope/")
    empty = parse_policy("probes:\n  - {name: f, url: ''}\n")
    assert empty.active_probes == [] and not empty.probes[0].discover


def test_print_policy_passes_check(tmp_path: Path, no_probe_env: None) -> None:
    printed = subprocess.run([CLI, "watch", "--print-policy"], capture_output=True, text=True)
    assert printed.returncode == 0
    path = tmp_path / "policy.yaml"
    path.write_text(printed.stdout)
    checked = subprocess.run(
        [CLI, "watch", "--check", "--policy", str(path)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    assert "no probe configured" in checked.stdout


@pytest.mark.slow
async def test_default_watch_on_a_quiet_host_probes_nothing_and_says_why(
    no_probe_env: None,
) -> None:
    """A real dry-run watch with the default policy on this host, where nothing listens on
    127.0.0.1:80 (the old default's URL): no probe runs, nothing is decided, the status says
    why."""
    docker_or_skip()
    if not nothing_on_port_80():
        pytest.skip("something listens on 127.0.0.1:80 here")
    lines: list[str] = []
    watch = Watch(
        [WatchTarget("local", LocalHost())], load_policy(), journal=None, dry_run=True,
        out=lines.append,
    )  # fmt: skip
    watched = watch.hosts[0]
    assert watched.probes == [] and watched.unprobed == ["frontend", "backend"]
    sources = getattr(watched.monitor, "_sources", [])
    assert sources and not any(isinstance(s, ProbeSource) for s in sources)
    stop = asyncio.Event()
    task = asyncio.create_task(watch.run(stop))
    await asyncio.sleep(7)  # the first status line comes after 5 s
    stop.set()
    await asyncio.wait_for(task, 60)
    assert watched.monitor.state.probes == {}
    assert not [line for line in lines if "would" in line or "notify" in line], lines
    assert watched.intents == 0 and watched.restarts == 0
    status = [line for line in lines if "not probed (no URL): frontend,backend" in line]
    assert status, lines
    assert "not probed (no URL): frontend,backend" in status_line(watched)

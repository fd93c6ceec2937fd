"""The watch rule engine and policy loader, without a server: limits, backoff, escalation."""

from __future__ import annotations

import pytest

from incident_console.domain.events import (
    ContainerInfo,
    ContainerSample,
    HealthChange,
    OomConstraint,
    OomKill,
    ProbeResult,
)
from incident_console.monitor.state import HostState
from incident_console.watch.policy import PolicyError, load_policy, parse_policy
from incident_console.watch.rules import RuleEngine

URL = "http://127.0.0.1:9/"

POLICY = f"""
probes:
  - name: front
    url: {URL}
    interval: 1s
rules:
  - name: restart-front
    probe_fails: {{probe: front, times: 2}}
    action: restart
    target: frontend
  - name: oom
    oom_kill: {{service: backend}}
  - name: sick
    unhealthy: {{for: 10s}}
    action: restart
limits:
  restarts_per_hour: 3
  backoff: 10s
  backoff_max: 15s
  notifications_per_hour: 2
"""


def fail(t: float) -> ProbeResult:
    return ProbeResult(time=t, url=URL, status=None, latency_ms=None, error="refused")


def test_restarts_after_k_failures_then_backs_off_then_escalates_once() -> None:
    engine = RuleEngine(parse_policy(POLICY))
    state = HostState("h")
    kinds: list[tuple[float, str]] = []
    for t in range(0, 400):
        for d in engine.on_event(fail(float(t)), state, now=float(t)):
            kinds.append((t, d.kind))
    restarts = [t for t, k in kinds if k == "restart"]
    # First after 2 failures, then doubling backoff: 10 s, then 15 s (capped), then the limit.
    assert restarts == [1, 11, 26]
    assert [k for _, k in kinds if k == "escalate"] == ["escalate"]
    escalate_at = next(t for t, k in kinds if k == "escalate")
    assert escalate_at > 26
    # A slot frees an hour after the first restart: acting resumes then, not before.
    later = engine.on_event(fail(3601.0), state, now=3601.0)
    later += engine.on_event(fail(3602.0), state, now=3602.0)
    assert [d.kind for d in later] == ["restart"]


def test_probe_recovery_notifies_and_resets_the_streak() -> None:
    engine = RuleEngine(parse_policy(POLICY))
    state = HostState("h")
    engine.on_event(fail(0.0), state, now=0.0)
    assert [d.kind for d in engine.on_event(fail(1.0), state, now=1.0)] == ["restart"]
    ok = ProbeResult(time=2.0, url=URL, status=200, latency_ms=3.0)
    recovered = engine.on_event(ok, state, now=2.0)
    assert [(d.kind, d.what) for d in recovered] == [("notify", "recovered")]
    assert engine.probe_streak("front") == 0


def test_oom_kill_notifies_naming_the_service_and_is_capped_per_hour() -> None:
    engine = RuleEngine(parse_policy(POLICY))
    state = HostState("h")
    kill = OomKill(time=5.0, pid=42, process="gunicorn", constraint=OomConstraint.LIMIT,
                   container_id="c" * 64, container="lab-backend-1", service="backend",
                   raw=("Memory cgroup out of memory: Killed process 42 (gunicorn)",))  # fmt: skip
    out = [d for i in range(4) for d in engine.on_event(kill, state, now=5.0 + i)]
    assert [d.kind for d in out] == ["notify", "notify", "escalate"]
    assert out[0].target == "backend" and "backend" in out[0].summary
    assert out[0].evidence["kernel_lines"] == list(kill.raw)
    replayed = OomKill(time=1.0, pid=1, process="x", service="backend", replayed=True)
    assert RuleEngine(parse_policy(POLICY)).on_event(replayed, state, now=9.0) == []


def test_unhealthy_for_n_seconds_restarts_that_container() -> None:
    engine = RuleEngine(parse_policy(POLICY))
    state = HostState("h")
    info = ContainerInfo(time=0.0, id="a" * 64, name="lab-db-1", service="db", state="running",
                         health="healthy")  # fmt: skip
    state.apply(info)
    state.apply(HealthChange(time=100.0, id=info.id, name=info.name, service="db",
                             old="healthy", new="unhealthy"))  # fmt: skip
    state.apply(ContainerInfo(time=100.0, id=info.id, name=info.name, service="db",
                              state="running", health="unhealthy"))  # fmt: skip
    assert engine.tick(state, now=105.0) == []
    decisions = engine.tick(state, now=111.0)
    assert [(d.kind, d.target, d.container_id) for d in decisions] == [("restart", "db", info.id)]


def test_malformed_policy_errors_name_the_line() -> None:
    text = "probes:\n  - name: a\n    url: ftp://x/\nrules:\n  - name: r\n    probe_fails: {probe: a, times: 0}\n"
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.yaml")
    lines = sorted(str(e) for e in caught.value.errors)
    assert lines[0].startswith("p.yaml:3:5: probes[0].url: ")
    assert lines[1].startswith("p.yaml:6:") and "times" in lines[1]


def test_unknown_probe_and_yaml_errors_have_lines() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy("rules:\n  - name: r\n    probe_fails: {probe: nope}\n", "p.yaml")
    assert str(caught.value).startswith("p.yaml:3:19: rules[0].probe_fails.probe: unknown probe")
    with pytest.raises(PolicyError) as caught:
        parse_policy("probes: [\n  {name: a\n", "p.yaml")
    assert str(caught.value).startswith("p.yaml:3:")


def test_default_policy_mirrors_the_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTEND_URL", "http://127.0.0.1:8080/")
    policy = load_policy()
    assert [p.interval for p in policy.probes] == [30.0, 30.0]
    assert policy.probes[0].url == "http://127.0.0.1:8080/"
    restart = [r for r in policy.rules if r.action == "restart" and r.probe_fails]
    assert restart and restart[0].target == "frontend"
    assert {r.trigger for r in policy.rules} >= {"oom_kill", "time_to_limit", "unhealthy"}


def test_a_restart_not_carried_out_does_not_count_toward_the_limit() -> None:
    """The runner drops a decision while the last restart is still running: no restart was
    done, so the limit must not be reached by it (nor the escalation claim it)."""
    engine = RuleEngine(parse_policy(POLICY))
    state = HostState("h")
    decided: list[tuple[int, str]] = []
    for t in range(0, 400):
        for d in engine.on_event(fail(float(t)), state, now=float(t)):
            decided.append((t, d.kind))
            if d.kind == "restart" and t == 11:
                engine.restart_not_done(d.target)  # as the runner does when one is in flight
    restarts = [t for t, k in decided if k == "restart"]
    # The one at 11 s was given back: the backoff restarts from the first, and three real
    # restarts happen before the escalation.
    assert restarts[0] == 1 and restarts[1] == 11 and len(restarts) == 4
    assert [k for _, k in decided].count("escalate") == 1


TTL_POLICY = """
rules:
  - name: near-memory-limit
    time_to_limit: {below: 10m}
    action: notify
"""


def _container_with(samples: list[tuple[float, float]], limit: int) -> HostState:
    state = HostState("h")
    info = ContainerInfo(time=0.0, id="r" * 64, name="lab-redis-1", service="redis",
                         state="running", memory_limit_bytes=limit)  # fmt: skip
    state.apply(info)
    for t, used in samples:
        state.apply(ContainerSample(time=t, id=info.id, memory_used_bytes=int(used),
                                    memory_limit_bytes=limit, cpu_percent=0.5))  # fmt: skip
    return state


def test_time_to_limit_never_notifies_from_two_values_in_fifteen_seconds() -> None:
    # redis 4.9 MB then 5.9 MB, 15 s after watch started: it paged "memory limit in 4 m 54 s".
    start = 1_796_051_236.0
    samples = [(start + s, 4.9e6 if s < 7 else 5.9e6) for s in range(16)]
    state = _container_with(samples, 25_000_000)
    engine = RuleEngine(parse_policy(TTL_POLICY))
    assert engine.tick(state, now=start + 15.5) == []
    # The same step seen for five minutes is still no trend.
    later = [(start + s, 4.9e6 if s < 150 else 5.9e6) for s in range(300)]
    assert RuleEngine(parse_policy(TTL_POLICY)).tick(_container_with(later, 25_000_000),
                                                     now=start + 300) == []  # fmt: skip


def test_time_to_limit_notifies_on_a_real_leak_with_its_evidence() -> None:
    start = 1_796_051_236.0
    mib = 1 << 20
    leak = [(start + s, 100 * mib + s * mib) for s in range(180)]
    state = _container_with(leak, 512 * mib)
    decisions = RuleEngine(parse_policy(TTL_POLICY)).tick(state, now=start + 180)
    assert [(d.kind, d.what, d.target) for d in decisions] == [("notify", "time_to_limit", "redis")]
    assert decisions[0].summary.startswith("lab-redis-1: memory limit in ")
    evidence = decisions[0].evidence["memory"]
    assert evidence["trend_status"] == "growing" and evidence["seconds_to_limit"] < 600

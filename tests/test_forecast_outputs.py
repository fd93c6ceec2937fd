"""Where the forecast is shown (host pane, diagnose text and JSON) it says which: a time only
from a significant trend, else "stable" or "too little data" and why."""

from __future__ import annotations

import random

from incident_console.commands.diagnose import _forecast_words
from incident_console.domain.events import ContainerInfo, ContainerSample, HostMemory
from incident_console.monitor.diagnosis import diagnose_state, diagnosis_json, host_forecast_text
from incident_console.monitor.diagnosis import host_forecast as host_forecast_of
from incident_console.monitor.state import HostState
from incident_console.ui.widgets.panes import HostMemoryPane

MIB = 1 << 20
GIB = 1 << 30
T0 = 1_796_051_236.0


def host_at_three_percent(seconds: int) -> HostState:
    """24 GiB, 3% used, available wandering (page cache, short-lived processes)."""
    state = HostState("h", link="connected")
    rng = random.Random(5)
    for s in range(seconds):
        available = int(0.97 * 24 * GIB - s * 100_000 + rng.gauss(0, 40 * MIB))
        state.apply(HostMemory(time=T0 + s, total_bytes=24 * GIB, available_bytes=available,
                               swap_total_bytes=0, swap_free_bytes=0))  # fmt: skip
    return state


def with_container(state: HostState, seconds: int, level: float, slope: float) -> str:
    info = ContainerInfo(time=T0, id="b" * 64, name="lab-redis-1", service="redis",
                         state="running", memory_limit_bytes=32 * MIB)  # fmt: skip
    state.apply(info)
    for s in range(seconds):
        state.apply(ContainerSample(time=T0 + s, id=info.id,
                                    memory_used_bytes=int(level + slope * s),
                                    memory_limit_bytes=32 * MIB, cpu_percent=0.1))  # fmt: skip
    return info.id


def test_host_pane_at_three_percent_used_is_no_out_of_memory_time() -> None:
    state = host_at_three_percent(300)
    lines = [line.plain for line in HostMemoryPane().lines(state, T0 + 300)]
    assert lines[-1] == "forecast stable", lines
    short = host_at_three_percent(40)
    assert [line.plain for line in HostMemoryPane().lines(short, T0 + 40)][-1] == (
        "forecast too little data (39 s/2 m)"
    )


def test_host_running_out_is_a_time_with_its_rate() -> None:
    state = HostState("h", link="connected")
    for s in range(200):
        state.apply(HostMemory(time=T0 + s, total_bytes=8 * GIB,
                               available_bytes=int(2 * GIB - s * 5 * MIB), swap_total_bytes=0,
                               swap_free_bytes=0))  # fmt: skip
    text = host_forecast_text(host_forecast_of(state))
    assert text.startswith("out of memory in ~3 m ") and "available falling 300.0 MiB/min" in text


def test_diagnose_json_and_text_carry_the_forecast_and_why() -> None:
    state = host_at_three_percent(10)
    cid = with_container(state, 10, 4.9e6, 0.0)
    doc = diagnosis_json(diagnose_state(state, now=T0 + 10), state)
    container = next(c for c in doc["containers"] if c["id"] == cid)
    assert container["forecast"]["status"] == "too_little_data"
    assert "a trend needs 2 m" in container["forecast"]["reason"]
    assert doc["memory"]["forecast"]["status"] == "too_little_data"
    assert _forecast_words(state.containers[cid]).startswith("too little data (9 s of samples")

    flat = host_at_three_percent(300)
    cid = with_container(flat, 300, 4.9e6, 0.0)
    doc = diagnosis_json(diagnose_state(flat, now=T0 + 300), flat)
    container = next(c for c in doc["containers"] if c["id"] == cid)
    assert container["forecast"]["status"] == "stable"
    assert container["forecast"]["seconds_to_limit"] is None
    assert doc["memory"]["forecast"]["status"] == "stable"
    assert _forecast_words(flat.containers[cid]) == "stable"

    leaking = HostState("h", link="connected")
    cid = with_container(leaking, 180, 4 * MIB, 0.1 * MIB)
    diagnosis = diagnose_state(leaking, now=T0 + 180)
    assert any("growing toward its memory limit: limit in" in f.summary for f in diagnosis.findings)
    forecast = diagnosis_json(diagnosis, leaking)["containers"][0]["forecast"]
    assert forecast["status"] == "growing" and 0 < forecast["seconds_to_limit"] < 600

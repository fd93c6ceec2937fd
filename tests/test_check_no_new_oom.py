"""`no_new_oom` must not pass on what it cannot see: without the kernel log, the docker `oom`
events count; with neither source (or the link down) it waits, and fails when the window ends.

A real HostMonitor on LocalHost; the events are recorded as its sources record them."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from incident_console.domain.events import (
    ContainerEvent,
    ContainerInfo,
    OomConstraint,
    OomKill,
    SourceStatus,
)
from incident_console.monitor.host_monitor import HostMonitor
from incident_console.runbook.checks import Checker
from incident_console.runbook.engine import CheckStatus, StepRecord
from incident_console.runbook.schema import Check, Step
from incident_console.transport.local import LocalHost

CID = "b" * 64


@pytest.fixture
async def monitor() -> AsyncIterator[HostMonitor]:
    mon = HostMonitor(LocalHost(), sources=[])
    await mon.start()
    mon.record(ContainerInfo(time=time.time(), id=CID, name="icl-backend-1", state="running",
                             project="icl", service="backend"))  # fmt: skip
    yield mon
    await mon.stop()


async def _check(monitor: HostMonitor, started: float) -> tuple[CheckStatus, str]:
    step = Step(id="w", title="watch", kind="verify", wait="1s", checks=[{"no_new_oom": True}])
    record = StepRecord(step, started=started)
    check = Check.model_validate({"no_new_oom": True})
    result = await Checker(monitor).evaluate(
        check, record, {"service": "backend", "project": "icl"}, {}
    )
    return result.status, result.detail


def _sources(monitor: HostMonitor, *, kernel: bool, docker: bool) -> None:
    now = time.time()
    monitor.record(SourceStatus(time=now, source="kernel_log", method="dmesg" if kernel
                                else "docker-events", ok=kernel, detail="dmesg: denied"))  # fmt: skip
    monitor.record(SourceStatus(time=now, source="docker_events", method="docker-events",
                                ok=docker))  # fmt: skip


async def test_docker_oom_event_fails_it_when_the_kernel_log_is_denied(
    monitor: HostMonitor,
) -> None:
    started = time.time()
    _sources(monitor, kernel=False, docker=True)
    monitor.record(ContainerEvent(time=started + 1, id=CID, name="icl-backend-1",
                                  service="backend", action="oom"))  # fmt: skip
    status, detail = await _check(monitor, started)
    assert status is CheckStatus.FAILED, detail
    assert "docker oom event" in detail


async def test_blind_is_not_a_pass(monitor: HostMonitor) -> None:
    _sources(monitor, kernel=False, docker=False)
    status, detail = await _check(monitor, time.time())
    assert status is CheckStatus.PENDING
    assert "cannot see OOM kills" in detail


async def test_passes_when_it_can_see(monitor: HostMonitor) -> None:
    _sources(monitor, kernel=True, docker=True)
    status, detail = await _check(monitor, time.time())
    assert status is CheckStatus.PASSED, detail
    assert "kernel log via dmesg" in detail


async def _recorded(monitor: HostMonitor) -> tuple[CheckStatus, str]:
    check = Check.model_validate({"oom_recorded": {"service": ""}})
    step = Step(id="k", title="kills", kind="diagnose", run=["true"], checks=[check])
    result = await Checker(monitor).evaluate(
        check, StepRecord(step, started=time.time()), {"service": "backend", "project": "icl"}, {}
    )
    return result.status, result.detail


async def test_kills_recorded_from_the_counters_pass_where_the_kernel_log_is_closed(
    monitor: HostMonitor,
) -> None:
    """As deploy (dmesg_restrict=1) the kernel's lines are closed: the step that shows them
    passes on the kills the console counted in the project's cgroups."""
    now = time.time()
    _sources(monitor, kernel=False, docker=True)
    monitor.record(SourceStatus(time=now, source="oom_counters", method="memory.events", ok=True))
    status, detail = await _recorded(monitor)
    assert status is CheckStatus.FAILED, detail
    assert detail == (
        "no OOM kill of project icl recorded (the cgroups' OOM counters and docker events: "
        "the kernel log is unavailable)"
    )
    other = "c" * 64
    monitor.record(ContainerInfo(time=now, id=other, name="shop-backend-1", state="running",
                                 project="shop", service="backend"))  # fmt: skip
    monitor.record(OomKill(time=now, pid=0, process="", constraint=OomConstraint.LIMIT,
                           container_id=other, service="backend", source="memory.events"))  # fmt: skip
    status, detail = await _recorded(monitor)
    assert status is CheckStatus.FAILED, detail  # another project's kill is not ours
    monitor.record(OomKill(time=now, pid=0, process="", constraint=OomConstraint.LIMIT,
                           container_id=CID, service="backend", source="memory.events"))  # fmt: skip
    status, detail = await _recorded(monitor)
    assert status is CheckStatus.PASSED, detail
    assert detail.startswith("1 OOM kill(s) of project icl recorded, last OOM kill in backend")
    assert detail.endswith("(from memory.events)"), detail

"""Stopping a monitor always ends it: no source keeps running after a cancel, whenever it comes.

On Python 3.11 `asyncio.wait_for` can swallow a cancellation that races with its result; a
source looping over it kept sampling after stop() (seen by the watch and runbook commands).
"""

from __future__ import annotations

import asyncio
import random

from fixtures_lab import require_docker
from incident_console.monitor.host_monitor import HostMonitor
from incident_console.transport.local import LocalHost

#: Not a speed target: a stop that has not returned by then never will.
HANG_S = 30.0


async def test_stop_at_any_moment_ends_every_source() -> None:
    require_docker()
    rng = random.Random(7)
    delays = [0.0, 0.05, 0.2, 0.5, 1.0, 1.5, 2.5] + [rng.uniform(0, 3) for _ in range(5)]
    for delay in delays:
        monitor = HostMonitor(LocalHost())
        await monitor.start()
        await asyncio.sleep(delay)
        await asyncio.wait_for(monitor.stop(), HANG_S)
        version = monitor.state.version
        await asyncio.sleep(1.5)  # a live sampler would have emitted a frame by now
        assert monitor.state.version == version, f"events after stop (stopped at {delay:.2f} s)"
        leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not [t for t in leftover if not t.done()], leftover

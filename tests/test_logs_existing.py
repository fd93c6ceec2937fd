"""Logs of containers that already ran when the monitor started (issue 13, item 1).

The console opened over a blank Logs pane for every container that existed before it: the
follower followed only what it was told, and nobody told it "all". These start the container
first, then a real HostMonitor (LocalHost, and SshHost over the test sshd), and expect the
recent lines from before the start (the tail) and the live stream, within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from fixtures_sshd import SshdServer
from incident_console.config import Settings
from incident_console.domain.events import Event, LogLine
from incident_console.monitor.host_monitor import HostMonitor
from incident_console.transport.base import Host
from incident_console.transport.local import LocalHost
from incident_console.ui.app import make_app
from incident_console.ui.widgets.logs import LogPane
from sources_support import docker_or_skip, remove, run_container, wait_for

THEMES = Path(__file__).resolve().parents[1] / "themes"

#: 30 lines at once ("early N"), then one line every 0.2 s ("tick N"), for ten minutes.
CHATTY = (
    "import time\n"
    "for i in range(30): print(f'early {i}', flush=True)\n"
    "for i in range(3000):\n"
    "    print(f'tick {i}', flush=True); time.sleep(0.2)\n"
)


@contextlib.asynccontextmanager
async def existing_container() -> AsyncIterator[tuple[str, str]]:
    """A container that has logged for a while before anything watches it."""
    docker_or_skip()
    cid, name = run_container(CHATTY)
    try:
        await asyncio.sleep(1.5)  # it wrote its 'early' lines (and a few ticks) before we start
        yield cid, name
    finally:
        remove(name)


async def _lines_arrive(host: Host) -> None:
    async with existing_container() as (cid, name):
        started = time.time()
        monitor = HostMonitor(host)
        events: list[Event] = []
        monitor.subscribe(events.append)
        await monitor.start()
        try:

            def texts() -> list[str]:
                return [e.text for e in events if isinstance(e, LogLine) and e.id == cid]

            await wait_for(lambda: "early 29" in texts(), 20, f"the tail of {name}")
            # The tail came first and whole, then the stream went on past the start.
            assert texts()[:30] == [f"early {i}" for i in range(30)]
            ticks_before = len([t for t in texts() if t.startswith("tick ")])
            await wait_for(
                lambda: len([t for t in texts() if t.startswith("tick ")]) >= ticks_before + 5,
                20,
                f"live lines of {name}",
            )
            live = [e for e in events if isinstance(e, LogLine) and e.id == cid]
            assert any(e.time > started for e in live), "no line written after the start"
            assert all(e.container == name for e in live)
        finally:
            await monitor.stop()


async def test_local_monitor_follows_a_container_that_already_ran() -> None:
    await _lines_arrive(LocalHost())


async def test_ssh_monitor_follows_a_container_that_already_ran(sshd: SshdServer) -> None:
    from incident_console.transport.targets import open_host

    await _lines_arrive(open_host(sshd.target, **sshd.host_options()))  # type: ignore[arg-type]


async def test_console_logs_pane_shows_a_container_that_already_ran() -> None:
    async with existing_container() as (_cid, name):
        monitor = HostMonitor(LocalHost())
        app = make_app(Settings(), [monitor], theme_dirs=[THEMES])
        async with app.run_test(size=(160, 45)) as pilot:
            logs = app.query_one(LogPane)

            def shown() -> str:
                return "\n".join(strip.text for strip in logs.lines)

            await wait_for(lambda: "early 29" in shown() and "tick " in shown(), 30, "the pane")
            assert "early 0" in shown()
            assert name in shown()  # following all: each line says whose it is
            # Following the selection asks for its stream alone; back to all, all again.
            follower = monitor.log_follower
            logs.focus()
            await pilot.press("f")
            await wait_for(lambda: not follower.follows_all, 5, "one stream")
            selected = app.active_dashboard.selected_id
            await wait_for(lambda: follower.following <= {selected}, 5, "the others to stop")
            await pilot.press("f")
            await wait_for(lambda: follower.follows_all, 5, "every stream again")
            await pilot.press("q")

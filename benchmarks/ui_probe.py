"""The real console (make_app + a real HostMonitor over SSH), headless, driven for the benchmark.

Runs the Textual app with `App.run_test()` (the same app, compositor and widgets; no terminal)
in its own process so its CPU and RSS can be read from /proc. Prints one JSON line per figure.

At start: `first_frame` (seconds from --t0, the wall time the parent spawned us, to the app's
first refresh having been drawn: `IncidentApp.first_frame_at`) and `first_row_data` (to the first row showing a memory figure). Then it obeys
commands on stdin, one a line:

  follow CID                  follow that container's logs (as the log pane's follow key does)
  health CID STATE TIMEOUT    wait until the row shows STATE; latency from docker's event time
  oom N TIMEOUT               wait for N new kernel OOM kills to show on their rows
  logs SECONDS                lines/s reaching the log pane, and key press -> handled latency
  quit

Usage: python benchmarks/ui_probe.py --t0 WALL --identity KEY --known-hosts FILE TARGET
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from typing import Any

from textual import events

from incident_console.config import Settings
from incident_console.domain.events import Event, HealthChange, OomKill
from incident_console.monitor.host_monitor import HostMonitor
from incident_console.transport.targets import open_host
from incident_console.ui.app import make_app
from incident_console.ui.widgets.containers import ContainersTable
from incident_console.ui.widgets.logs import LogPane

#: How often the widgets are looked at; well under the latencies measured (100s of ms).
POLL_S = 0.01


def say(**data: object) -> None:
    print(json.dumps(data), flush=True)


def cell(table: ContainersTable, cid: str, column: str) -> str:
    try:
        return str(getattr(table.get_cell(cid, column), "plain", table.get_cell(cid, column)))
    except Exception:  # noqa: BLE001 - the row is not there (yet)
        return ""


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(args: argparse.Namespace) -> None:
    host = open_host(args.target, identity=[args.identity], known_hosts=args.known_hosts)
    monitor = HostMonitor(host, since=time.time())
    kills: list[tuple[OomKill, float]] = []  # with when the monitor published it
    health: list[HealthChange] = []

    def on_event(event: Event) -> None:
        if isinstance(event, OomKill) and not event.replayed:
            kills.append((event, time.time()))
        elif isinstance(event, HealthChange):
            health.append(event)

    monitor.subscribe(on_event)
    app = make_app(Settings(), [monitor])
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str] = asyncio.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(commands.put_nowait, line.strip())
        loop.call_soon_threadsafe(commands.put_nowait, "quit")

    threading.Thread(target=read_stdin, daemon=True).start()
    async with app.run_test(size=(180, 50)) as pilot:
        while app.first_frame_at is None:  # noqa: ASYNC110 - set by the app once drawn
            await asyncio.sleep(POLL_S)
        say(t="first_frame", s=app.first_frame_at - args.t0)
        table = app.query_one(ContainersTable)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any("/" in cell(table, cid, "used") for cid in list(monitor.state.containers)):
                say(t="first_row_data", s=time.time() - args.t0)
                break
            await asyncio.sleep(POLL_S)
        while True:
            command = (await commands.get()).split()
            if not command or command[0] == "quit":
                break
            if command[0] == "follow":
                monitor.follow_logs([command[1]])
                say(t="following", id=command[1])
            elif command[0] == "health":
                await watch_health(table, health, command[1], command[2], float(command[3]))
            elif command[0] == "oom":
                await watch_oom(table, monitor, kills, int(command[1]), float(command[2]))
            elif command[0] == "logs":
                await measure_logs(pilot, table, float(command[1]))
    await monitor.stop()


async def watch_health(
    table: ContainersTable, health: list[HealthChange], cid: str, wanted: str, limit_s: float
) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if cell(table, cid, "health") == wanted:
            now = time.time()
            change = next((h for h in reversed(health) if h.id == cid and h.new == wanted), None)
            say(
                t="health",
                state=wanted,
                screen_s=None if change is None else now - change.time,
            )
            return
        await asyncio.sleep(POLL_S)
    say(t="health", state=wanted, error=f"not shown within {limit_s:g} s")


async def watch_oom(
    table: ContainersTable,
    monitor: HostMonitor,
    kills: list[tuple[OomKill, float]],
    n: int,
    limit_s: float,
) -> None:
    """Latency of each new kill: kernel time -> event, and kernel time -> its row's oom count."""
    start = len(kills)
    done = 0
    shown: dict[str, int] = {}
    deadline = time.monotonic() + limit_s
    while done < n and time.monotonic() < deadline:
        for kill, received in kills[start + done :]:
            cid = kill.container_id
            view = monitor.state.containers.get(cid)
            if view is None:
                continue
            count = view.oom_kills
            if f"({count}oom)" in cell(table, cid, "restarts") and shown.get(cid, 0) < count:
                shown[cid] = count
                say(
                    t="oom_screen",
                    event_s=received - kill.time,
                    screen_s=time.time() - kill.time,
                )
                done += 1
        await asyncio.sleep(POLL_S)
    say(t="oom_done", shown=done)


async def measure_logs(pilot: Any, table: ContainersTable, seconds: float) -> None:
    """Lines taken into the pane per second, how current it is, and key press latency.

    The key is the table's `down`/`up`: latency is from posting the Key event to the cursor
    having moved (polled every 2 ms on the app's own loop). The lag is, at each press, the
    age of the newest line in the pane (its docker timestamp; same clock, loopback).
    """
    pane = pilot.app.query_one(LogPane)
    before = pane.received
    latencies: list[float] = []
    lags: list[float] = []
    t0 = time.monotonic()
    direction = "down"
    while time.monotonic() - t0 < seconds:
        row = table.cursor_row
        start = time.perf_counter()
        # As the terminal driver does: a Key event posted to the app (pilot.press would also
        # wait for the whole app to go idle, which under a log stream is not the key's cost).
        pilot.app.post_message(events.Key(direction, None))
        while table.cursor_row == row and time.perf_counter() - start < 5:  # noqa: ASYNC110 - polling is the measurement
            await asyncio.sleep(0.002)
        latencies.append(time.perf_counter() - start)
        if (newest := pane.newest_shown) is not None:
            lags.append(time.time() - newest.time)
        direction = "up" if direction == "down" else "down"
        await asyncio.sleep(0.1)
    elapsed = time.monotonic() - t0
    say(
        t="logs",
        lines_per_s=(pane.received - before) / elapsed,
        lag_p95_s=pct(lags, 0.95),
        key_p50_ms=1000 * (pct(latencies, 0.5) or 0),
        key_p95_ms=1000 * (pct(latencies, 0.95) or 0),
        key_max_ms=1000 * max(latencies, default=0),
        presses=len(latencies),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target")
    parser.add_argument("--t0", type=float, required=True)
    parser.add_argument("--identity", required=True)
    parser.add_argument("--known-hosts", required=True)
    asyncio.run(main(parser.parse_args()))

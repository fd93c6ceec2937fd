"""The console's collection side, headless, in its own process so its CPU and RSS can be measured.

One HostMonitor per target, all in one event loop (as the console runs them). Prints one JSON
line per milestone on stdout: `first_data` (seconds from start to the first container sample of
each host), `oom` (the kernel's timestamp of an OOM kill and when the monitor received it),
`status` (each source's method). Runs until SIGTERM, then stops every monitor.

Usage: python benchmarks/console_probe.py --identity KEY --known-hosts FILE TARGET [TARGET ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time

from incident_console.domain.events import ContainerSample, Event, OomKill, SourceStatus
from incident_console.monitor.host_monitor import HostMonitor
from incident_console.transport.targets import open_host


def say(**data: object) -> None:
    print(json.dumps(data), flush=True)


async def main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    monitors: list[HostMonitor] = []
    t0 = time.monotonic()

    def listener(index: int) -> object:
        first = [False]

        def on_event(event: Event) -> None:
            if isinstance(event, ContainerSample) and not first[0]:
                first[0] = True
                say(t="first_data", host=index, s=round(time.monotonic() - t0, 3))
            elif isinstance(event, OomKill) and not event.replayed:
                say(
                    t="oom",
                    host=index,
                    kernel_time=event.time,
                    recv=time.time(),
                    container=event.container,
                    pid=event.pid,
                )
            elif isinstance(event, SourceStatus):
                say(t="status", host=index, source=event.source, method=event.method, ok=event.ok)

        return on_event

    # One key per target, in order (each test sshd has its own client key; offering them all
    # to every server would exceed sshd's MaxAuthTries), or every key for every target.
    paired = len(args.identity) == len(args.targets)
    for index, target in enumerate(args.targets):
        keys = [args.identity[index]] if paired else args.identity
        host = open_host(target, identity=keys, known_hosts=args.known_hosts)
        monitor = HostMonitor(host, since=time.time())
        monitor.subscribe(listener(index))  # type: ignore[arg-type]
        if args.follow:
            monitor.follow_logs(args.follow)
        monitors.append(monitor)
    try:
        await asyncio.gather(*(m.start() for m in monitors))
    except Exception as exc:  # one line for the benchmark, not a traceback
        say(t="error", error=f"{type(exc).__name__}: {exc}")
        await asyncio.gather(*(m.stop() for m in monitors), return_exceptions=True)
        raise SystemExit(1) from None
    say(t="started", s=round(time.monotonic() - t0, 3))
    await stop.wait()
    await asyncio.gather(*(m.stop() for m in monitors), return_exceptions=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="+")
    parser.add_argument("--identity", action="append", default=[])
    parser.add_argument("--known-hosts")
    parser.add_argument("--follow", action="append", default=[], help="a container id to tail")
    try:
        asyncio.run(main(parser.parse_args()))
    except KeyboardInterrupt:
        sys.exit(130)

"""Draw the before/after pictures of issue 17 ("what the screen says") as SVG files.

Run it with the code to picture on the path::

    python docs/screens/make_screens.py docs/screens after
    PYTHONPATH=/tmp/before/src python docs/screens/make_screens.py docs/screens before

Each scenario is the demo incident (frozen clock, UTC) at 200x50, made to show one item of
the issue: lab-like long container names, a burst of kills, a starting container's
traceback, a detail after two minutes of samples. Only the public demo, the domain events
and ``make_app`` are used, so the same script draws the code before and after the change.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ["TZ"] = "UTC"
time.tzset()

from incident_console.config import Settings  # noqa: E402
from incident_console.domain.events import (  # noqa: E402
    ContainerEvent,
    ContainerInfo,
    ContainerSample,
    HealthChange,
    OomConstraint,
    OomKill,
)
from incident_console.ui.app import make_app  # noqa: E402
from incident_console.ui.demo import DEMO_NOW, MiB, demo_monitor  # noqa: E402

THEMES = Path(__file__).resolve().parents[2] / "themes"
SIZE = (200, 50)
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/usr/bin/gunicorn", line 33, in <module>\n'
    "    sys.exit(load_entry_point('gunicorn', 'console_scripts', 'gunicorn')())\n"
    '  File "/usr/lib/python3/dist-packages/gunicorn/app/base.py", line 72, in run\n'
    "    Arbiter(self).run()\n"
    "urllib.error.URLError: <urlopen error [Errno 111] Connection refused>\n"
)


def cid(name: str) -> str:
    """A container id made from its name, as the demo makes them."""
    return (name.encode().hex() * 8)[:64]


def lab(now: float = DEMO_NOW, *, minutes: float = 3.0) -> Any:
    """The demo host with the lab's long names (icbench31926_*) and a starting frontend."""
    monitor = demo_monitor(containers=5, now=now)
    for name, service, limit, used, health, output in (
        ("icbench31926_backend_1", "backend", 256, 230, "unhealthy", "curl: (28) timed out"),
        ("icbench31926_frontend_1", "frontend", 128, 40, "starting", TRACEBACK),
        ("icbench31926_loadgen_1", "loadgen", 64, 10, "", ""),
    ):
        ident = cid(name)
        monitor.post(
            ContainerInfo(
                time=now - 3600,
                id=ident,
                name=name,
                image=f"icbench/{service}:lab",
                state="running",
                health=health,
                last_probe_output=output,
                started_at=now - 120,
                created_at=now - 3600,
                memory_limit_bytes=limit * MiB,
                project="icbench31926",
                service=service,
                working_dir="/root/.local/share/incident-console/lab/icbench31926",
                config_files=(
                    "/root/.local/share/incident-console/lab/icbench31926/docker-compose.yml",
                ),
            )
        )
        count = int(minutes * 60)
        for t in range(count):
            share = 0.5 + 0.5 * t / max(1, count - 1) if service == "backend" else 0.8
            monitor.post(
                ContainerSample(
                    time=now - count + 1 + t,
                    id=ident,
                    memory_used_bytes=int(used * MiB * share),
                    memory_limit_bytes=limit * MiB,
                    cpu_percent=20.0,
                )
            )
    backend = cid("icbench31926_backend_1")
    monitor.post(
        HealthChange(
            time=now - 50,
            id=cid("icbench31926_frontend_1"),
            name="icbench31926_frontend_1",
            service="frontend",
            old="",
            new="starting",
            output=TRACEBACK,
        )
    )
    monitor.post(
        OomKill(
            time=now - 20,
            pid=31337,
            process="gunicorn",
            constraint=OomConstraint.LIMIT,
            anon_rss_bytes=231 * MiB,
            container_id=backend,
            container="icbench31926_backend_1",
            service="backend",
            source="dmesg",
        )
    )
    # docker sends one "oom" event per process the kernel looked at: seven for one kill.
    for _ in range(7):
        monitor.post(
            ContainerEvent(
                time=now - 20,
                id=backend,
                name="icbench31926_backend_1",
                service="backend",
                action="oom",
            )
        )
    return monitor


class Journal:
    """Where a lab's journal is: a long path, as on the lab machine."""

    path = "/root/.local/share/incident-console/journals/prod-20261201T165828Z-local.jsonl"
    error = None


def burst(monitor: Any, now: float = DEMO_NOW) -> None:
    """Three kills of the backend in 20 s, arriving live."""
    backend = cid("icbench31926_backend_1")
    for k in range(3):
        monitor.post(
            OomKill(
                time=now - 20 + k * 10,
                pid=32000 + k,
                process="gunicorn",
                constraint=OomConstraint.LIMIT,
                anon_rss_bytes=230 * MiB,
                container_id=backend,
                container="icbench31926_backend_1",
                service="backend",
                source="dmesg",
            )
        )


Steps = Callable[[Any, Any], Awaitable[None]]


@dataclass
class Scenario:
    """One picture: how the app is built and what is done before the shot."""

    name: str
    what: str
    theme: str = "incident-dark"
    monitors: Callable[[], list[Any]] = lambda: [lab()]
    steps: Steps | None = None
    read_only: bool = False


async def keys(pilot: Any, *pressed: str) -> None:
    for key in pressed:
        await pilot.press(key)
        await pilot.pause(0.1)


def press(*pressed: str) -> Steps:
    async def run(pilot: Any, _monitors: Any) -> None:
        await keys(pilot, *pressed)

    return run


async def notifications(pilot: Any, monitors: Any) -> None:
    burst(monitors[0])
    await pilot.pause(0.3)


async def restart(pilot: Any, _monitors: Any) -> None:
    await keys(pilot, "r")
    await pilot.pause(0.2)
    await keys(pilot, "y")
    await pilot.pause(0.3)


async def palette_host(pilot: Any, _monitors: Any) -> None:
    await keys(pilot, "ctrl+p")
    for char in "host":
        await pilot.press(char)
    await pilot.pause(0.5)


async def walkthrough_list(pilot: Any, _monitors: Any) -> None:
    await keys(pilot, "b")
    await pilot.pause(0.5)


def connecting() -> list[Any]:
    from incident_console.transport.base import ConnectionState, LinkState

    monitor = demo_monitor(containers=0)
    fresh = type(monitor)("serve")  # nothing read yet: the first connection is under way
    fresh.host.state = ConnectionState(LinkState.CONNECTING, since=DEMO_NOW - 3)
    fresh.state.link = "connecting"
    fresh.state.link_since = DEMO_NOW - 3
    return [fresh]


def with_journal() -> list[Any]:
    monitor = lab()
    monitor.journal = Journal()
    return [monitor]


SCENARIOS = [
    Scenario("oom-feed", "the OOM feed: one line per kill at the dashboard's widths"),
    Scenario(
        "notifications",
        "a journal path and a burst of three kills: toasts off the Logs pane, folded",
        monitors=with_journal,
        steps=notifications,
    ),
    Scenario("help", "help (?): wrapped descriptions indented, no doubled keys", steps=press("?")),
    Scenario(
        "walkthrough-steps",
        "the walkthrough's step list",
        monitors=lambda: [demo_monitor()],
        steps=walkthrough_list,
    ),
    Scenario(
        "detail-chart",
        "detail after 2 minutes: axis, legend, compose path, health log",
        monitors=lambda: [lab(minutes=2)],
        steps=press("down", "enter"),
    ),
    Scenario("health-traceback", "a starting frontend's traceback in the Health pane"),
    Scenario("containers-table", "name widths, elision, table height"),
    Scenario("light-sparkline", "light theme: the selected row's sparkline", "incident-light"),
    Scenario("theme-feedback", "t says which theme is on", steps=press("t")),
    Scenario(
        "filter-feedback",
        "an applied filter on the Containers pane and the Health pane",
        steps=press("slash", "f", "r", "o", "n", "t", "enter"),
    ),
    Scenario("palette-host", "the palette finds 'host' with one host", steps=palette_host),
    Scenario("restart-feedback", "a confirmed restart shows on screen", steps=restart),
    Scenario("serve-connecting", "first connection: connecting, not STALE", monitors=connecting),
]


async def shoot(scenario: Scenario, folder: Path, suffix: str) -> Path:
    monitors = scenario.monitors()
    app = make_app(
        Settings(theme=scenario.theme, read_only=scenario.read_only),
        monitors,
        clock=lambda: DEMO_NOW,
        theme_dirs=[THEMES],
    )
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause(0.3)
        if scenario.steps is not None:
            await scenario.steps(pilot, monitors)
        await pilot.pause(0.3)
        svg = app.export_screenshot(title=f"{scenario.name} ({suffix})")
    path = folder / f"{scenario.name}-{suffix}.svg"
    path.write_text(svg, encoding="utf-8")
    return path


async def main(folder: Path, suffix: str, only: list[str]) -> None:
    for scenario in SCENARIOS:
        if only and scenario.name not in only:
            continue
        print(await shoot(scenario, folder, suffix))


if __name__ == "__main__":
    Path(sys.argv[1]).mkdir(parents=True, exist_ok=True)
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3:]))

"""The containers table says what it knows: no time-to-limit for a flat container (the same
forecast diagnose and watch use), and no "current" memory for a container that stopped or
whose samples stopped coming."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from incident_console.config import Settings
from incident_console.domain.events import ContainerSample
from incident_console.ui.app import make_app
from incident_console.ui.demo import DEMO_NOW, demo_monitor
from incident_console.ui.widgets.containers import ContainersTable

THEMES = Path(__file__).resolve().parents[1] / "themes"


def _row(table: ContainersTable, name: str) -> dict[str, str]:
    for key in table._keys:
        if str(table.get_cell(key, "name")) == name:
            return {c: str(table.get_cell(key, c)) for c in ("used", "ttl")}
    raise AssertionError(f"no row {name}")


async def test_flat_gets_no_forecast_and_stopped_shows_no_memory() -> None:
    monitor = demo_monitor()
    views = {v.info.name: v for v in monitor.state.containers.values()}
    # db stopped a minute ago; its last sample (300 MiB) is not its memory now.
    db = views["app-db-1"]
    monitor.post(dataclasses.replace(db.info, state="exited", time=DEMO_NOW - 60))
    # proxy runs, but its samples stopped 2 minutes ago (sampler lost it).
    proxy = views["app-proxy-1"].info.id
    views["app-proxy-1"].samples.clear()
    monitor.post(ContainerSample(time=DEMO_NOW - 120, id=proxy, memory_used_bytes=1 << 24,
                                 memory_limit_bytes=1 << 27, cpu_percent=1.0))  # fmt: skip
    app = make_app(Settings(), [monitor], clock=lambda: DEMO_NOW, theme_dirs=[THEMES])
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        table = app.query_one(ContainersTable)
        # A flat (noisy) container: the least-squares slope of noise is no forecast.
        assert _row(table, "app-frontend-1")["ttl"] == "stable"
        assert _row(table, "app-backend-1")["ttl"].endswith("s")  # leaking: seconds away
        assert _row(table, "app-db-1")["used"] == "-"
        assert _row(table, "app-proxy-1")["used"] == "no data"


async def test_a_parent_cgroups_limit_is_marked_shared_not_shown_as_the_containers() -> None:
    """`lab up --host-memory`, a pod, a slice: no limit of its own, its cgroup reports the
    parent's. The figure is the group's: marked *, and the border says what * means."""
    monitor = demo_monitor()
    views = {v.info.name: v for v in monitor.state.containers.values()}
    db = views["app-db-1"]
    assert db.latest is not None and db.info.memory_limit_bytes == db.latest.memory_limit_bytes
    monitor.post(dataclasses.replace(db.info, memory_limit_bytes=0, time=DEMO_NOW - 1))
    monitor.post(dataclasses.replace(db.latest, time=DEMO_NOW - 1, memory_limit_bytes=1 << 31))
    app = make_app(Settings(), [monitor], clock=lambda: DEMO_NOW, theme_dirs=[THEMES])
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        table = app.query_one(ContainersTable)
        assert _row(table, "app-db-1")["used"].endswith("/2.0G*"), _row(table, "app-db-1")
        assert not _row(table, "app-backend-1")["used"].endswith("*")  # its own limit
        assert "* a limit shared with other containers" in str(table.border_subtitle)

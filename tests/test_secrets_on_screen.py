"""A container's command line holds secrets too (--password X, DB_PASSWORD=X): hidden at the
source (inventory) and again on the detail screen, like environment values."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from textual.widgets import Static

from incident_console.config import Settings
from incident_console.sources.inventory import container_info
from incident_console.ui.app import make_app
from incident_console.ui.demo import DEMO_NOW, demo_monitor
from incident_console.ui.screens.detail import ContainerDetailScreen

THEMES = Path(__file__).resolve().parents[1] / "themes"
SECRET = "hunter2-s3cr3t"

INSPECT = {
    "Id": "a" * 64,
    "Name": "/app-backend-1",
    "Path": "gunicorn",
    "Args": ["--workers", "4", "--db-password", SECRET, f"API_TOKEN={SECRET}", "app:wsgi"],
    "State": {"Status": "running"},
    "Config": {"Env": [f"DB_PASSWORD={SECRET}", "WORKERS=4"], "Labels": {}},
    "HostConfig": {"Memory": 268435456},
}


def test_inventory_hides_secrets_in_the_command_line() -> None:
    info = container_info(INSPECT, now=DEMO_NOW)
    text = " ".join(info.command)
    assert SECRET not in text
    assert text.startswith("gunicorn --workers 4 --db-password *** API_TOKEN=*** app:wsgi")
    assert SECRET not in " ".join(info.environment)


async def test_detail_screen_never_shows_a_secret() -> None:
    monitor = demo_monitor()
    view = next(iter(monitor.state.containers.values()))
    # A source that did not redact (an older journal, a fake): the screen must still hide it.
    leaky = dataclasses.replace(
        view.info,
        command=("gunicorn", "--db-password", SECRET),
        environment=(f"DB_PASSWORD={SECRET}", f"MONKEY_TOKEN={SECRET}", "WORKERS=4"),
    )
    monitor.post(leaky)
    app = make_app(Settings(), [monitor], clock=lambda: DEMO_NOW, theme_dirs=[THEMES])
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        app.open_detail(monitor, view.info.id)
        await pilot.pause()
        assert isinstance(app.screen, ContainerDetailScreen)
        shown = " ".join(str(w.render()) for w in app.screen.query(Static))
        assert "WORKERS=4" in shown and "--db-password ***" in shown
        assert SECRET not in shown

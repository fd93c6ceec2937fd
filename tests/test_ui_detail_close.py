"""Closing the console while the container detail is open never crashes it.

The app redraws the pushed screen ten times a second; while the screen closes (popped, or the
app quitting) its widgets are already gone. Seen in CI as NoMatches from the refresh timer.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from incident_console.config import Settings
from incident_console.ui.app import make_app
from incident_console.ui.demo import DEMO_NOW, demo_monitor
from incident_console.ui.screens.detail import ContainerDetailScreen

THEMES = Path(__file__).resolve().parents[1] / "themes"


async def test_quit_and_back_from_detail_while_redrawing() -> None:
    for attempt in range(8):
        monitor = demo_monitor()
        cid = next(iter(monitor.state.containers))
        app = make_app(Settings(), [monitor], clock=lambda: DEMO_NOW, theme_dirs=[THEMES])
        async with app.run_test(size=(160, 45)) as pilot:
            await pilot.pause()
            app.open_detail(monitor, cid)
            await pilot.pause()
            assert isinstance(app.screen, ContainerDetailScreen)
            # Vary the moment relative to the 100 ms refresh tick.
            await asyncio.sleep(0.013 * attempt)
            if attempt % 2:
                await pilot.press("escape")
                await pilot.pause()
                assert not isinstance(app.screen, ContainerDetailScreen)
                await asyncio.sleep(0.15)  # a few ticks after the pop
            # Leaving the context shuts the app down with the screen (maybe) still open;
            # run_test re-raises anything the timer raised.
        assert app.return_code in (None, 0)

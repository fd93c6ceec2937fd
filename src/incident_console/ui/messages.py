"""App-wide messages. Widget-specific ones are nested in the widget that sends them."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from incident_console.domain.events import Event


@dataclass
class HostEventPosted(Message):
    """A monitor published an event (delivered on the app's loop)."""

    host: str
    event: Event

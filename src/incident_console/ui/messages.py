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


@dataclass
class StateTick(Message):
    """Time to look at every HostState again; a burst collapses into one."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StateTick)


@dataclass
class RestartRequested(Message):
    """The user confirmed restarting a container."""

    host: str
    container_id: str
    container: str


@dataclass
class ContainerSelected(Message):
    """The cursor of a containers table moved to a container."""

    host: str
    container_id: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ContainerSelected) and message.host == self.host

"""`CommandClass`: what a command does to a server, and why the classifier thinks so."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CommandClass:
    """What a command does to the server, and why we think so.

    `changes` is False only when every part was recognised as read-only. `never_ends` (a
    follow, a stream, a loop without end) and `interactive` (a terminal session, a shell, a
    prompt) are independent of it: `tail -f` reads only but never ends.
    """

    changes: bool
    reason: str
    never_ends: bool = False
    interactive: bool = False

    @property
    def read_only(self) -> bool:
        return not self.changes

    @property
    def label(self) -> str:
        """One word for a screen: read-only, changes, never-ends, interactive."""
        if self.interactive:
            return "interactive"
        if self.never_ends:
            return "never-ends"
        return "changes" if self.changes else "read-only"

    @property
    def summary(self) -> str:
        """Every property in words: `changes, never ends`, `read-only`."""
        parts = ["changes the server" if self.changes else "read-only"]
        if self.never_ends:
            parts.append("never ends")
        if self.interactive:
            parts.append("interactive")
        return ", ".join(parts)


def read_only(reason: str, *, never_ends: bool = False) -> CommandClass:
    """A read-only result."""
    return CommandClass(False, reason, never_ends=never_ends)


def changes(reason: str, *, never_ends: bool = False, interactive: bool = False) -> CommandClass:
    """A result that changes the server."""
    return CommandClass(True, reason, never_ends=never_ends, interactive=interactive)

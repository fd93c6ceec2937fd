"""Which commands change a server: a deny-by-default classifier over argv and shell text.

A command is read-only only when its argv is recognised from an allowlist of read-only
commands and sub-commands with their flags; everything else changes the server. It lives in
`domain/` (pure, no I/O) rather than in `runbook/` because the monitor's one door
(`HostMonitor.change`) needs it and the monitor must not import the runbook layer.

This module's contract (used by the monitor, the runbook and the importer):

- `classify_argv(argv)` for an argv list, `classify_shell(text)` for shell text (each stage of
  a pipeline or a `;`/`&&`/`||` list, `sudo`/`ssh` wrappers unwrapped): a `CommandClass`.
- `CommandClass.changes` is False only when every part is recognised as read-only.
- `never_ends` (a follow, a stream, an interactive session) and `interactive` (`-it`, a shell)
  tell the runbook to bound the command or make the step manual.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CommandClass:
    """What a command does to the server, and why we think so."""

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


#: Plain commands that only read (any flags), the minimum the monitor itself needs.
_READ_ONLY_PLAIN = frozenset(
    {"cat", "sha256sum", "test", "true", "ls", "stat", "head", "free", "pgrep"}
)


def classify_argv(argv: Sequence[str]) -> CommandClass:
    """Classify one argv (no shell: the first element is the program)."""
    if not argv:
        return CommandClass(True, "empty command")
    program = argv[0].rsplit("/", 1)[-1]
    if program in _READ_ONLY_PLAIN:
        return CommandClass(False, f"{program}: reads only")
    return CommandClass(True, f"{program}: not known to be read-only")


def classify_shell(text: str) -> CommandClass:
    """Classify shell text (a snippet a runbook author wrote)."""
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        return CommandClass(True, f"cannot parse the shell text ({exc})")
    if any(part in {"|", "||", "&&", ";", "&", ">", ">>"} for part in argv):
        return CommandClass(True, "a shell list or redirection: not known to be read-only")
    return classify_argv(argv)

"""What a change to a server is: a command, a file write or a restart, and how it ends.

The vocabulary of the one door (monitor/door.py): :class:`Change` (built by
:meth:`Change.command`, :meth:`Change.write`, :meth:`Change.restart`), :class:`ChangeResult`,
and the refusals (:class:`ReadOnlyError`, :class:`ChangeDeclined`, :class:`NotReadOnlyCommand`),
all :class:`ChangeRefused` and so `PermissionError`: nothing ran.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from incident_console.transport.base import command_line

ChangeKind = Literal["command", "write", "restart"]
#: Asked before a change runs: True lets it through.
Confirm = Callable[["Change"], Awaitable[bool]]

#: How much of a command line a refusal message or a `what` keeps.
WHAT_CHARS = 120


class ChangeRefused(PermissionError):
    """The door did not let a change through. The message is one line naming host and what."""

    def __init__(self, host: str, what: str, reason: str, message: str = "") -> None:
        self.host = host
        self.what = what
        self.reason = reason
        super().__init__(message or f"{host}: {what} refused ({reason})")


class ReadOnlyError(ChangeRefused):
    """A change was asked of a read-only host."""

    def __init__(self, host: str, what: str) -> None:
        super().__init__(host, what, "read-only", f"{host} is read-only: {what} refused")


class ChangeDeclined(ChangeRefused):
    """The caller's confirmation hook said no: nothing ran."""

    def __init__(self, host: str, what: str) -> None:
        super().__init__(host, what, "declined", f"{host}: {what} not confirmed, nothing ran")


class NotReadOnlyCommand(ChangeRefused):
    """A read was asked to run a command the classifier does not call read-only.

    That is a bug of the caller: a command that may change the server goes through the door.
    """

    def __init__(self, host: str, what: str, why: str) -> None:
        super().__init__(
            host, what, "not read-only", f"{host}: {what} is not known to be read-only ({why})"
        )


def one_line(text: str, limit: int = WHAT_CHARS) -> str:
    """`text` on one line, cut to `limit` characters (for messages and the journal's `what`)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class Change:
    """One change to a server. Build it with :meth:`command`, :meth:`write` or :meth:`restart`.

    Attributes:
        kind: command, write or restart.
        why: what asked for it (a runbook step, a key, a watch rule), for the journal.
        argv: the command (kind command).
        timeout_s: the command's deadline.
        path: the file (kind write).
        text: the file's new content (kind write).
        diff: the unified diff the operator saw (kind write).
        container_id: the container (kind restart).
        container: its name, for messages.
        grace_s: seconds the container gets to stop before it is killed.
    """

    kind: ChangeKind
    why: str = ""
    argv: tuple[str, ...] = ()
    timeout_s: float = 60.0
    path: str = ""
    text: str = field(default="", repr=False)
    diff: str = field(default="", repr=False)
    container_id: str = ""
    container: str = ""
    grace_s: int = 10

    @classmethod
    def command(cls, argv: Sequence[str], *, why: str = "", timeout_s: float = 60.0) -> Change:
        """A command that may change the server (any command not known to be read-only)."""
        if not argv:
            raise ValueError("empty argv")
        return cls("command", why=why, argv=tuple(argv), timeout_s=timeout_s)

    @classmethod
    def write(cls, path: str, text: str, *, diff: str = "", why: str = "") -> Change:
        """Write `text` to `path` on the server (atomically: the transport renames over it)."""
        if not path:
            raise ValueError("empty path")
        return cls("write", why=why, path=path, text=text, diff=diff)

    @classmethod
    def restart(
        cls, container_id: str, *, container: str = "", grace_s: int = 10, why: str = ""
    ) -> Change:
        """Restart a container through the docker API (POST /containers/{id}/restart)."""
        if not container_id:
            raise ValueError("empty container id")
        return cls(
            "restart", why=why, container_id=container_id, container=container, grace_s=grace_s
        )

    @property
    def what(self) -> str:
        """The change in one line: the command line, `write PATH`, `restart NAME`."""
        if self.kind == "command":
            return one_line(command_line(self.argv))
        if self.kind == "write":
            return one_line(f"write {self.path}")
        return one_line(f"restart {self.container or self.container_id[:12]}")

    def intent(self) -> dict[str, Any]:
        """The fields of the journal's intent record that say what is asked."""
        record: dict[str, Any] = {"change": self.kind, "what": self.what, "why": self.why}
        if self.kind == "command":
            record["argv"] = list(self.argv)
        elif self.kind == "write":
            data = self.text.encode("utf-8")
            record.update(
                path=self.path,
                diff=self.diff,
                bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
        else:
            record.update(container=self.container, container_id=self.container_id)
        return record


@dataclass(frozen=True, slots=True)
class ChangeResult:
    """What a change that went through did.

    A command that ran and exited non-zero is a result (``ok`` False), not an exception: the
    caller decides. A write or restart that failed raises its error (after journaling it).
    """

    change: Change
    change_id: str
    exit_status: int | None = None
    stdout: str = ""
    stderr: str = ""
    started: float = 0.0
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_status in (None, 0)


def output_digest(stdout: str, stderr: str, keep_lines: int = 20) -> dict[str, Any]:
    """What the journal keeps of a command's output: a hash and the last lines."""
    text = stdout + ("\n" + stderr if stderr else "")
    lines = text.strip().splitlines()
    return {
        "sha256": hashlib.sha256(text.encode("utf-8", "replace")).hexdigest(),
        "lines": len(lines),
        "tail": lines[-keep_lines:],
    }

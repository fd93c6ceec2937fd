"""The one door: every change to a server passes through :meth:`Door.change`.

A change is a command the classifier does not call read-only, a file write (a compose patch, a
backup copy, an undo restore), a container restart or a compose recreate. The door refuses it
on a read-only host, asks the caller's confirmation hook when the caller gives one, and
journals the intent and its outcome (who, when, argv or path and diff, exit status or error).

Read-only must hold by construction: the HostMonitor keeps the transport host to itself (its
sources read through it) and hands everyone else a :class:`HostView`, which can read a file and
nothing more. Commands that only read go through :meth:`Door.read`, which runs nothing the
classifier in `domain/commands.py` does not call read-only (deny by default).

Journal records (kept compatible with the report and `runbook undo`):

- ``kind: change`` with ``phase: intent`` (what was asked: ``change`` = command | write |
  restart, ``what``, ``why``, ``argv`` or ``path`` + ``diff`` + ``sha256`` or ``container``),
  then exactly one ``phase: refused`` (``reason``: read-only | declined | confirmation failed)
  or ``phase: result`` (``ok``, ``exit_status``, ``error``, ``duration_s``), joined by
  ``change_id``;
- as before, ``kind: command`` for every command that ran (reads and changes; a change's has its
  ``change_id``) and ``kind: action`` (``what: restart container``) for a restart.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from incident_console.domain.commands import classify_argv
from incident_console.monitor.changes import (
    Change,
    ChangeDeclined,
    ChangeResult,
    Confirm,
    NotReadOnlyCommand,
    ReadOnlyError,
    one_line,
    output_digest,
)
from incident_console.monitor.journal import Journal, operator
from incident_console.transport.base import (
    CommandResult,
    ConnectionState,
    Host,
    StateListener,
    command_line,
)


def _error_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text.strip() else type(exc).__name__


class HostView:
    """What every caller outside the monitor gets of a host: its name, its link, file reads.

    It has no `run`, no `write_text`, no docker client: a change has no way to the server but
    the door.
    """

    __slots__ = ("_host",)

    def __init__(self, host: Host) -> None:
        self._host = host

    @property
    def name(self) -> str:
        return self._host.name

    @property
    def state(self) -> ConnectionState:
        return self._host.state

    @property
    def is_local(self) -> bool:
        return self._host.is_local

    def on_state(self, listener: StateListener) -> None:
        """Call `listener` with every new ConnectionState of the link."""
        self._host.on_state(listener)

    async def read_text(self, path: str) -> str:
        """Read a text file on the host. Raises FileNotFoundError / PermissionError."""
        return await self._host.read_text(path)

    def __repr__(self) -> str:
        return f"HostView({self._host.name!r})"


class Door:
    """Lets changes through to one host, or not; journals every one of them.

    Args:
        host: the transport host (the door is the only holder of it besides the monitor).
        journal: returns the journal to write to (None: not journaled).
        read_only: refuse every change. Once set it stays set (see :attr:`read_only`).
    """

    def __init__(
        self,
        host: Host,
        journal: Callable[[], Journal | None],
        *,
        read_only: bool = False,
    ) -> None:
        self._host = host
        self._journal = journal
        self._read_only = bool(read_only)

    @property
    def read_only(self) -> bool:
        """Refuse every change. A latch: a read-only door is never opened again."""
        return self._read_only

    @read_only.setter
    def read_only(self, value: bool) -> None:
        if self._read_only and not value:
            raise ReadOnlyError(self._host.name, "leaving read-only mode")
        self._read_only = bool(value)

    # Journal -----------------------------------------------------------------------------

    def _write(self, record: dict[str, Any]) -> None:
        journal = self._journal()
        if journal is not None:
            journal.write({"host": self._host.name, "who": operator(), **record})

    def record_command(
        self,
        argv: Sequence[str],
        result: CommandResult | None,
        *,
        why: str = "",
        error: str = "",
        change_id: str = "",
    ) -> None:
        """Journal a command run on the host: argv, who, when, exit status, output digest."""
        record: dict[str, Any] = {"kind": "command", "argv": list(argv), "why": why}
        if change_id:
            record["change_id"] = change_id
        if result is not None:
            record.update(
                started=result.started,
                duration_s=round(result.duration_s, 3),
                exit_status=result.exit_status,
                output=output_digest(result.stdout, result.stderr),
            )
        if error:
            record["error"] = error
        self._write(record)

    # Reads -------------------------------------------------------------------------------

    async def read(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 60.0,  # noqa: ASYNC109 - a per-command deadline, passed to the host
        why: str = "",
    ) -> CommandResult:
        """Run a command that only reads, journaled. Read-only hosts allow it.

        Raises:
            NotReadOnlyCommand: the classifier does not call `argv` read-only (deny by default):
                it is a change, and goes through :meth:`change`.
        """
        verdict = classify_argv(argv)
        if not verdict.read_only:
            raise NotReadOnlyCommand(
                self._host.name, one_line(command_line(argv) if argv else "?"), verdict.reason
            )
        try:
            result = await self._host.run(argv, timeout=timeout)
        except Exception as exc:
            self.record_command(argv, None, why=why, error=_error_line(exc))
            raise
        self.record_command(argv, result, why=why)
        return result

    # Changes -----------------------------------------------------------------------------

    async def change(
        self,
        change: Change,
        *,
        confirm: Confirm | None = None,
    ) -> ChangeResult:
        """Let `change` through to the server, or refuse it; journal intent and outcome.

        Args:
            change: what to do.
            confirm: asked first (after the read-only check); False refuses the change.

        Raises:
            ReadOnlyError: the host is read-only (nothing ran, nothing was asked).
            ChangeDeclined: `confirm` said no (nothing ran).
            Exception: the write or restart failed, or the command could not be run (a
                TransportError, CommandTimeout): journaled as the result, then raised.
        """
        change_id = uuid.uuid4().hex[:12]
        self._write({"kind": "change", "phase": "intent", "change_id": change_id,
                     **change.intent()})  # fmt: skip
        self._refuse_if_read_only(change, change_id)
        if confirm is not None:
            try:
                yes = await confirm(change)
            except BaseException as exc:  # a closed dialog, a cancelled caller: nothing runs
                self._refused(change, change_id, f"confirmation failed: {_error_line(exc)}")
                raise
            if not yes:
                self._refused(change, change_id, "declined")
                raise ChangeDeclined(self._host.name, change.what)
            # The host may have turned read-only while the operator was reading the dialog.
            self._refuse_if_read_only(change, change_id)
        return await self._perform(change, change_id)

    def _refuse_if_read_only(self, change: Change, change_id: str) -> None:
        if self._read_only:
            self._refused(change, change_id, "read-only")
            raise ReadOnlyError(self._host.name, change.what)

    def _refused(self, change: Change, change_id: str, reason: str) -> None:
        self._write({"kind": "change", "phase": "refused", "change_id": change_id,
                     "change": change.kind, "what": change.what, "reason": reason})  # fmt: skip

    async def _perform(self, change: Change, change_id: str) -> ChangeResult:
        started = time.time()
        t0 = time.monotonic()
        result: CommandResult | None = None
        try:
            if change.kind == "command":
                result = await self._host.run(change.argv, timeout=change.timeout_s)
            elif change.kind == "write":
                await self._host.write_text(change.path, change.text)
            else:
                await self._restart(change)
        except Exception as exc:
            took = round(time.monotonic() - t0, 3)
            error = _error_line(exc)
            self._legacy(change, change_id, None, started, took, error)
            self._write({"kind": "change", "phase": "result", "change_id": change_id,
                         "change": change.kind, "what": change.what, "ok": False,
                         "error": error, "duration_s": took})  # fmt: skip
            raise
        took = round(time.monotonic() - t0, 3)
        self._legacy(change, change_id, result, started, took, "")
        outcome = ChangeResult(
            change,
            change_id,
            exit_status=result.exit_status if result is not None else None,
            stdout=result.stdout if result is not None else "",
            stderr=result.stderr if result is not None else "",
            started=started,
            duration_s=took,
        )
        self._write({"kind": "change", "phase": "result", "change_id": change_id,
                     "change": change.kind, "what": change.what, "ok": outcome.ok,
                     "exit_status": outcome.exit_status, "duration_s": took})  # fmt: skip
        return outcome

    async def _restart(self, change: Change) -> None:
        # The docker SDK blocks: build and call it in worker threads, never on the loop.
        client = await self._host.docker()
        await asyncio.to_thread(
            lambda: client.containers.get(change.container_id).restart(timeout=change.grace_s)
        )

    def _legacy(
        self,
        change: Change,
        change_id: str,
        result: CommandResult | None,
        started: float,
        took: float,
        error: str,
    ) -> None:
        """The records the report and `runbook undo` have always read: command, action."""
        if change.kind == "command":
            self.record_command(
                change.argv, result, why=change.why, error=error, change_id=change_id
            )
        elif change.kind == "restart":
            self._write({"kind": "action", "what": "restart container",
                         "container": change.container or change.container_id[:12],
                         "container_id": change.container_id,
                         "api": "POST /containers/{id}/restart", "started": started,
                         "duration_s": took, "error": error, "why": change.why,
                         "change_id": change_id})  # fmt: skip


async def with_deadline(awaitable: Awaitable[Any], seconds: float) -> bool:
    """Await `awaitable` for at most `seconds`; True when it finished (errors swallowed)."""
    try:
        async with asyncio.timeout(max(0.0, seconds)):
            await awaitable
    except TimeoutError:
        return False
    except Exception:  # noqa: BLE001 - used on the way out, where nothing may fail
        return True
    return True

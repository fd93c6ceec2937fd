"""The incident journal: one append-only JSON-lines file per incident.

Each record is written and flushed to the kernel as it happens, so a console killed with
SIGKILL loses nothing it had recorded; fsync is group-committed within 200 ms so a power cut
loses at most that much, without an fsync per log line. Secrets are redacted before writing.
A full disk or a vanished directory never stops the console: the error is kept in
:attr:`Journal.error` (one line) for the UI to show, and writing resumes when it can.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import re
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import platformdirs

from incident_console.domain.redact import redact_record

#: fsync at most this long after a write (the group commit window).
FSYNC_WINDOW_S = 0.2


def operator() -> str:
    """Who is at the console: local user @ local machine, recorded on every command."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def default_journal_path(host_names: Sequence[str], now: float | None = None) -> Path:
    """Where a new incident's journal goes: the user data dir, named by UTC time and hosts."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    hosts = "-".join(re.sub(r"[^A-Za-z0-9_.-]+", "_", h) for h in host_names)[:80] or "local"
    base = Path(platformdirs.user_data_dir("incident-console")) / "incidents"
    return base / f"{stamp}-{hosts}.jsonl"


class Journal:
    """Append-only JSONL writer, safe against crashes of the console and full disks."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.error: str | None = None
        self.written = 0
        self.lost = 0
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._dirty = False
        self._timer: threading.Timer | None = None
        self._open()

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
            # A full disk can leave a torn last line: end it, or the next record is glued to
            # it and lost to every reader.
            if self._file.tell() > 0 and not _ends_with_newline(self.path):
                self._file.write("\n")
                self._file.flush()
            self.error = None
        except OSError as exc:
            self._file = None
            self.error = f"journal: {exc.strerror or exc} ({self.path})"

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (a 'ts' is added if absent). Never raises on I/O errors."""
        record = redact_record(record)
        record.setdefault("ts", time.time())
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str) + "\n"
        with self._lock:
            if self._file is None:
                self._open()
            if self._file is None:
                self.lost += 1
                return
            try:
                self._file.write(line)
                self._file.flush()
            except OSError as exc:
                self.lost += 1
                self.error = (
                    f"journal: {exc.strerror or exc} ({self.path}); {self.lost} records not written"
                )
                # The partial line (if any) stays; the reader tolerates torn lines.
                self._close_file()
                return
            self.written += 1
            if self.error and self._file is not None:
                self.error = None
            if not self._dirty:
                self._dirty = True
                self._timer = threading.Timer(FSYNC_WINDOW_S, self._sync)
                self._timer.daemon = True
                self._timer.start()

    def _sync(self) -> None:
        # The fsync runs outside the lock: it took 0.6 s on a loaded disk here, and `write`
        # runs on the console's event loop. A duplicate of the descriptor keeps the file open
        # for the fsync even if `close` or a failed write closes ours meanwhile.
        with self._lock:
            self._dirty = False
            if self._file is None:
                return
            try:
                fd = os.dup(self._file.fileno())
            except OSError as exc:
                self.error = f"journal: fsync failed: {exc.strerror or exc} ({self.path})"
                return
        try:
            os.fsync(fd)
        except OSError as exc:
            self.error = f"journal: fsync failed: {exc.strerror or exc} ({self.path})"
        finally:
            os.close(fd)

    def _close_file(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def close(self) -> None:
        """Flush, fsync and close."""
        if self._timer is not None:
            self._timer.cancel()
        self._sync()
        with self._lock:
            self._close_file()


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def read_journal(path: Path) -> list[dict[str, Any]]:
    """All records of a journal. A torn or corrupt line (a crash mid-write) is skipped."""
    records: list[dict[str, Any]] = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                records.append(value)
    return records

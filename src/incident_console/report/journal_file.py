"""Reading a journal file for the report (refusing what is no journal) and writing the report.

A journal is JSON lines, one object with a `kind` per line. A few torn lines (a crash
mid-write, a full disk) are skipped and counted, and the report says so; a file with no
record at all (empty, binary, TOML, any other text) is refused with one line naming the file
and what is wrong, so `report` never writes "the journal is empty" over a wrong path.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from incident_console.report.render import render_report

#: How much of a file is looked at to call it binary.
_SNIFF_BYTES = 8192


class JournalError(ValueError):
    """The file is not an incident journal; the message is one line naming it and why."""


@dataclass(frozen=True, slots=True)
class JournalRead:
    """A journal's records, and how many of its lines could not be read."""

    records: list[dict[str, Any]]
    skipped_lines: int


def _preview(line: str) -> str:
    text = line.strip()
    return text if len(text) <= 40 else text[:39] + "…"


def read_journal_file(path: Path) -> JournalRead:
    """Read a journal, skipping torn lines.

    Raises:
        JournalError: the file is empty, binary, or has no journal record on any line.
        OSError: the file cannot be read.
    """
    data = Path(path).read_bytes()
    if not data.strip():
        raise JournalError(f"{path}: empty file, not an incident journal")
    if b"\0" in data[:_SNIFF_BYTES]:
        raise JournalError(
            f"{path}: not an incident journal (binary file; a journal is JSON lines)"
        )
    text = data.decode("utf-8", errors="replace")
    records: list[dict[str, Any]] = []
    skipped = 0
    first_bad: tuple[int, str] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            value = None
        if isinstance(value, dict) and isinstance(value.get("kind"), str):
            records.append(value)
            continue
        skipped += 1
        if first_bad is None:
            first_bad = (number, line)
    if not records:
        number, line = first_bad or (1, "")
        raise JournalError(
            f"{path}: not an incident journal (line {number}: {_preview(line)!r}): "
            "no line is a JSON record with a 'kind'"
        )
    return JournalRead(records, skipped)


def runbook_followups(names: Sequence[str]) -> list[str]:
    """The "if it persists" lists of the named runbooks (built-in or files), as found."""
    try:  # imported here: the runbook layer is heavier, and a report needs it only for this
        from incident_console.runbook.loader import load_runbook
    except ImportError:  # pragma: no cover - the runbook layer is optional here
        return []
    items: list[str] = []
    for name in names:
        try:
            items += load_runbook(name).followups
        except Exception:  # noqa: BLE001 - a runbook we cannot load has no follow-ups to offer
            continue
    return items


def report_text(
    journal: Path, *, followups: Callable[[Sequence[str]], list[str]] = runbook_followups
) -> str:
    """The postmortem of a journal file, as text.

    Raises:
        JournalError: the file is not a journal.
        OSError: it cannot be read.
    """
    read = read_journal_file(journal)
    names = sorted({str(r["runbook"]) for r in read.records if r.get("runbook")})
    return render_report(read.records, followups=followups(names), skipped_lines=read.skipped_lines)


def report_path_for(journal: Path) -> Path:
    """Where a journal's report goes by default: beside it, `.md` for `.jsonl`."""
    return journal.with_suffix(".md")


def write_report(
    journal: Path,
    out: Path | None = None,
    *,
    followups: Callable[[Sequence[str]], list[str]] = runbook_followups,
) -> Path:
    """Read a journal, render its report and write it atomically. Returns the report's path.

    Raises:
        JournalError: the file is not a journal (nothing is written).
        OSError: the journal cannot be read or the report cannot be written.
    """
    text = report_text(journal, followups=followups)
    target = out or report_path_for(journal)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target

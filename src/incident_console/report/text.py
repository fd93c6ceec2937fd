"""Text helpers of the postmortem: times, counts, Markdown tables, the last redaction pass."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence

from incident_console.domain.redact import MASK, is_secret_name

_NAME_VALUE = re.compile(r"(?<![A-Za-z0-9_.-])([A-Za-z_][A-Za-z0-9_.-]{0,64})=([^\s`|,;&\"']+)")


def redact(text: str) -> str:
    """Hide NAME=value secrets anywhere in the finished Markdown (a last line of defence).

    Records are redacted with the shared rule before rendering; this pass looks at every
    NAME=value on its own (also after "note: ...") and stops values at Markdown's `|` and `.
    """

    def hide(match: re.Match[str]) -> str:
        name, value = match[1], match[2]
        return f"{name}={MASK}" if is_secret_name(name) and value != MASK else match[0]

    return _NAME_VALUE.sub(hide, text)


def utc(t: float | None, fmt: str = "%Y-%m-%d %H:%M:%SZ") -> str:
    """Epoch seconds as UTC text ('?' when unknown)."""
    return "?" if t is None else time.strftime(fmt, time.gmtime(t))


def hms(t: float | None) -> str:
    """Epoch seconds as UTC time of day, the way the tables print it."""
    return utc(t, "%H:%M:%SZ")


def cell(value: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def plural(n: int, word: str) -> str:
    """'1 kill', '2 kills'."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def duration(seconds: float) -> str:
    """A duration as '1 h 02 min', '3 min 05 s' or '40 s'."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"

"""Durations and sizes as people type them ("1h30m", "512M") and as the console prints them."""

from __future__ import annotations

import math
import re

__all__ = ["format_bytes", "format_duration", "parse_duration", "parse_size"]

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*", re.ASCII | re.IGNORECASE)
_BARE_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)\s*", re.ASCII)
# docker's RAMInBytes (go-units): binary units, an optional "i" and "b": 512m, 512M, 512MiB, 1g.
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)\s*", re.ASCII | re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_BYTE_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def parse_duration(text: str) -> float:
    """Seconds in a duration such as "90s", "10m", "2h", "1h30m", "1d" or "30" (seconds).

    Raises:
        ValueError: The text is not such a duration (the message says what is accepted).
    """
    if not isinstance(text, str):
        raise ValueError(f"invalid duration {text!r}: expected text such as 90s, 10m, 1h30m")
    if not text.strip():
        # Empty is a mistake (a variable that expanded to nothing), never "no window at all".
        raise ValueError(
            f"invalid duration {text!r}: empty; use a number with s, m, h or d, e.g. 90s, 10m"
        )
    bare = _BARE_NUMBER.fullmatch(text)
    total = 0.0
    if bare is not None:
        total = float(bare.group(1))
    else:
        position = 0
        for match in _DURATION_PART.finditer(text):
            if match.start() != position:
                break
            total += float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]
            position = match.end()
        if position == 0 or position != len(text):
            raise ValueError(
                f"invalid duration {text!r}: use a number with s, m, h or d, e.g. 90s, 10m, 1h30m"
            )
    if not math.isfinite(total):
        raise ValueError(f"invalid duration {text!r}: too large")
    return total


def format_duration(seconds: float) -> str:
    """Print seconds the way the console shows them: "12 s", "4 m 12 s", "2 h 5 m", "3 d 4 h"."""
    if not isinstance(seconds, int | float) or math.isnan(seconds):
        return "?"
    if math.isinf(seconds):
        return "∞" if seconds > 0 else "-∞"
    sign = "-" if seconds < 0 else ""
    total = round(abs(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        parts = [(days, "d"), (hours, "h")]
    elif hours:
        parts = [(hours, "h"), (minutes, "m")]
    elif minutes:
        parts = [(minutes, "m"), (secs, "s")]
    else:
        return f"{sign}{secs} s"
    return sign + " ".join(
        f"{value} {unit}" for value, unit in parts if value or unit == parts[0][1]
    )


def parse_size(text: str) -> int:
    """Bytes in a size as docker and compose take it: "256m", "512M", "1g", "1.5GiB", "268435456".

    Units are binary (k = 1024), as docker's `--memory` and compose's `mem_limit` read them.

    Raises:
        ValueError: The text is not such a size.
    """
    match = _SIZE.fullmatch(text) if isinstance(text, str) else None
    if match is None or (match.group(3).lower().startswith("i") and not match.group(2)):
        raise ValueError(f"invalid size {text!r}: use bytes or a number with k, m, g, e.g. 512m")
    number, unit = match.group(1), _SIZE_UNITS[match.group(2).lower()]
    if len(number) > 24:
        raise ValueError(f"invalid size {text!r}: too large")
    if "." in number:
        return math.ceil(float(number) * unit)
    return int(number) * unit


def format_bytes(n: float | None) -> str:
    """Print a byte count with binary units: "512 B", "1.5 KiB", "256.0 MiB", "1.2 GiB"."""
    if n is None or not isinstance(n, int | float) or math.isnan(n):
        return "?"
    if math.isinf(n):
        return "∞"
    sign = "-" if n < 0 else ""
    value = float(abs(n))
    if value < 1024:
        return f"{sign}{int(value)} B"
    for unit in _BYTE_UNITS:
        value /= 1024
        if value < 1024 or unit == _BYTE_UNITS[-1]:
            return f"{sign}{value:.1f} {unit}"
    return f"{sign}{value:.1f} PiB"  # pragma: no cover - the loop always returns

"""Durations and sizes in runbooks, on top of domain/durations.py.

Adds what compose files need on the way out: a size written back as `384M`.
"""

from __future__ import annotations

from incident_console.domain.durations import parse_duration as _parse_duration
from incident_console.domain.durations import parse_size as _parse_size


class DurationError(ValueError):
    """Not a duration or a size; the message says what was given."""


def parse_duration(text: str) -> float:
    """Seconds in `text` (`90s`, `30m`, `1h30m`, `45`). Raises DurationError."""
    try:
        return _parse_duration(str(text))
    except ValueError as exc:
        raise DurationError(str(exc)) from None


def parse_size(text: str | int) -> int:
    """Bytes in `text`, docker style: `512M`, `512m`, `1g`, `268435456`. Raises DurationError."""
    if isinstance(text, int):
        return text
    try:
        return _parse_size(str(text))
    except ValueError as exc:
        raise DurationError(str(exc)) from None


def format_size(n: int) -> str:
    """Bytes as compose files write them: whole GiB as `1G`, else MiB rounded up (`384M`)."""
    if n > 0 and n % 1024**3 == 0:
        return f"{n // 1024**3}G"
    return f"{max(1, -(-n // 1024**2))}M"

"""Durations and sizes as people type them and as the console prints them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incident_console.domain.durations import (
    format_bytes,
    format_duration,
    parse_duration,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("10m", 600),
        ("2h", 7200),
        ("1h30m", 5400),
        ("1d", 86400),
        ("30", 30),
        ("1h 30m", 5400),
        ("500ms", 0.5),
        ("1.5h", 5400),
        ("2M", 120),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "x", "1x", "h", "1h30", "-5", "1e3", "m10", "1h-30m"])
def test_parse_duration_rejects_with_a_clear_message(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration .*90s, 10m"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("256m", 256 << 20),
        ("512M", 512 << 20),
        ("1g", 1 << 30),
        ("268435456", 268435456),
        ("1.5GiB", 3 << 29),
        ("512MB", 512 << 20),
        ("512b", 512),
        ("100k", 102400),
    ],
)
def test_parse_size_docker_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["512ib", "m", "1.2.3", "-1", "512 x", "", "9" * 40])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0, 12, 252, 240, 3600, 7500, 90000, -252)] == [
        "0 s",
        "12 s",
        "4 m 12 s",
        "4 m",
        "1 h",
        "2 h 5 m",
        "1 d 1 h",
        "-4 m 12 s",
    ]
    assert format_duration(float("inf")) == "∞"
    assert format_duration(float("nan")) == "?"


def test_format_bytes() -> None:
    assert [format_bytes(n) for n in (0, 512, 1536, 256 << 20, 1.25 * 2**30, -(1 << 20))] == [
        "0 B",
        "512 B",
        "1.5 KiB",
        "256.0 MiB",
        "1.2 GiB",
        "-1.0 MiB",
    ]
    assert format_bytes(None) == "?"


@settings(max_examples=500)
@given(st.text(max_size=40) | st.from_regex(r"\s*\d{1,400}(\.\d{1,5})?\s*[a-zA-Z]{0,3}"))
def test_parsers_raise_only_value_error(text: str) -> None:
    for parse in (parse_duration, parse_size):
        try:
            value = parse(text)
        except ValueError:
            continue
        assert value >= 0


@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**30), 10**30))
def test_formatters_never_raise(value: float) -> None:
    assert format_duration(value)
    assert format_bytes(value)

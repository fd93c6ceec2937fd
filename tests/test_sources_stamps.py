"""Docker log timestamps: the once-a-second shortcut gives what the full parser gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from incident_console.sources.inventory import parse_docker_time
from incident_console.sources.logs import DockerStamps

_stamps = st.builds(
    lambda when, digits, zone: (
        when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{digits}" if digits else "") + zone
    ),
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)),
    st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=9)),
    st.sampled_from(["Z", "+00:00", "+02:00", "-05:30", ""]),
)


@given(st.lists(_stamps, min_size=1, max_size=20))
def test_the_shortcut_agrees_with_the_parser(stamps: list[str]) -> None:
    parser = DockerStamps()
    for stamp in stamps:
        fast, full = parser.parse(stamp), parse_docker_time(stamp)
        assert (fast is None) == (full is None)
        if fast is not None and full is not None:
            assert abs(fast - full) < 1e-6, stamp


def test_lines_of_one_second_and_the_next() -> None:
    parser = DockerStamps()
    base = datetime(2026, 11, 30, 18, 33, 12, tzinfo=UTC)
    for micro in (0, 1, 123456, 999999):
        when = base + timedelta(microseconds=micro)
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"  # docker prints nanoseconds
        assert abs(parser.parse(stamp) - when.timestamp()) < 1e-6  # type: ignore[operator]
    assert parser.parse("2026-11-30T18:33:13.5Z") == base.timestamp() + 1.5
    assert parser.parse("not a time") is None
    assert parser.parse("2026-13-45T99:99:99.1Z") is None

"""The memory trend: leaks with noise and outliers, flat noise, sawtooth restarts, host memory."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incident_console.domain.forecast import Forecast, host_exhaustion, time_to_limit

MIB = 1 << 20
T0 = 1_796_051_236.0


def series(seconds: int, level, noise: float = 0.0, seed: int = 1) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(T0 + s, level(s) + rng.gauss(0, noise)) for s in range(seconds)]


def test_linear_growth_with_noise_and_outliers() -> None:
    # 100 MiB growing 2 MiB/min towards 256 MiB, 3 MiB noise, 10% spikes of +80 MiB.
    points = series(300, lambda s: 100 * MIB + s * 2 * MIB / 60, noise=3 * MIB)
    rng = random.Random(7)
    points = [(t, v + 80 * MIB if rng.random() < 0.1 else v) for t, v in points]
    forecast = time_to_limit(points, 256 * MIB)
    assert forecast.status == "growing"
    assert forecast.slope_bytes_per_s * 60 == pytest.approx(2 * MIB, rel=0.15)
    # At 300 s the level is 110 MiB: 146 MiB to go at 2 MiB/min = 73 min.
    assert forecast.seconds_to_limit == pytest.approx(73 * 60, rel=0.15)
    assert forecast.describe().startswith("limit in 1 h ")


def test_flat_with_noise_is_stable() -> None:
    points = series(300, lambda s: 180 * MIB, noise=4 * MIB, seed=3)
    forecast = time_to_limit(points, 256 * MIB)
    assert forecast.status == "stable"
    assert forecast.seconds_to_limit is None
    assert forecast.describe() == "stable"


def test_sawtooth_uses_the_segment_after_the_restart() -> None:
    # Grew to 250 MiB at 8 MiB/min, was killed, restarted at 60 MiB and grows at 4 MiB/min.
    def level(s: int) -> float:
        return 226 * MIB + s * 8 * MIB / 60 if s < 180 else 60 * MIB + (s - 180) * 4 * MIB / 60

    forecast = time_to_limit(series(300, level, noise=1 * MIB), 256 * MIB)
    assert forecast.status == "growing"
    assert forecast.slope_bytes_per_s * 60 == pytest.approx(4 * MIB, rel=0.15)
    assert forecast.span_s == pytest.approx(119, abs=2)


def test_few_points_or_short_span_is_unknown() -> None:
    assert time_to_limit([], 256 * MIB).status == "unknown"
    assert time_to_limit([(T0, 1.0), (T0 + 1, 2.0)], 256 * MIB).status == "unknown"
    short = series(8, lambda s: s * MIB)
    assert time_to_limit(short, 256 * MIB).describe() == "collecting data"


def test_at_limit_and_shrinking_and_no_limit() -> None:
    at = series(60, lambda s: 255.5 * MIB, noise=0.1 * MIB)
    assert time_to_limit(at, 256 * MIB).status == "at_limit"
    down = series(120, lambda s: 200 * MIB - s * MIB / 6)
    shrinking = time_to_limit(down, 256 * MIB)
    assert shrinking.status == "shrinking"
    assert shrinking.describe() == "-10.0 MiB/min"
    up = series(120, lambda s: 50 * MIB + s * MIB / 5)
    unlimited = time_to_limit(up, 0)
    assert (unlimited.status, unlimited.seconds_to_limit) == ("growing", None)
    assert unlimited.describe() == "+12.0 MiB/min"


def test_slow_growth_beyond_a_day_is_stable() -> None:
    # 1 MiB/hour with 20 GiB of headroom: would take longer than 24 h.
    slow = series(300, lambda s: 2048 * MIB + s * MIB / 3600 * 60)
    assert time_to_limit(slow, 20 * 1024 * MIB).status == "stable"


def test_window_drops_old_samples() -> None:
    # An old steep climb is outside the 300 s window; the recent part is flat.
    def level(s: int) -> float:
        return s * MIB if s < 200 else 200 * MIB

    assert time_to_limit(series(600, level), 256 * MIB, window_s=300).status == "stable"


def test_many_points_are_resampled() -> None:
    points = series(3000, lambda s: 10 * MIB + s * 1000.0, noise=MIB)
    forecast = time_to_limit(points, 10_000 * MIB, window_s=3600)
    assert forecast.slope_bytes_per_s == pytest.approx(1000, rel=0.1)


def test_host_exhaustion() -> None:
    # Available + swap free falls from 2 GiB by 20 MiB/min: about 96 min left after 5 min.
    falling = series(300, lambda s: 2048 * MIB - s * 20 * MIB / 60, noise=5 * MIB)
    forecast = host_exhaustion(falling, total_bytes=8192 * MIB)
    assert forecast.status == "growing"
    assert forecast.seconds_to_limit == pytest.approx(1948 / 20 * 60, rel=0.1)
    assert forecast.level_bytes == pytest.approx(1948 * MIB, rel=0.02)
    steady = series(300, lambda s: 3000 * MIB, noise=20 * MIB)
    assert host_exhaustion(steady, total_bytes=8192 * MIB).status == "stable"
    empty = series(60, lambda s: 50 * MIB)
    assert host_exhaustion(empty, total_bytes=8192 * MIB).status == "at_limit"


def test_describe_forms() -> None:
    assert Forecast("growing", 1.0, 252.0).describe() == "limit in 4 m 12 s"
    assert Forecast("at_limit").describe() == "at limit"


_FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**20), 10**20)


@settings(max_examples=300)
@given(st.lists(st.tuples(_FLOATS, _FLOATS), max_size=200), _FLOATS, _FLOATS)
def test_forecast_never_raises(points: list[tuple[float, float]], limit: float, window: float):
    forecast = time_to_limit(points, limit, window_s=window)
    assert forecast.status in {"stable", "growing", "shrinking", "at_limit", "unknown"}
    forecast.describe()
    host = host_exhaustion(points, window_s=window, total_bytes=limit)
    host.describe()

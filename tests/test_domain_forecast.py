"""The memory trend: leaks with noise and outliers, flat noise, sawtooth restarts, host memory."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incident_console.domain.forecast import STATUSES, Forecast, host_exhaustion, time_to_limit

MIB = 1 << 20
T0 = 1_796_051_236.0


def series(seconds: int, level, noise: float = 0.0, seed: int = 1) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(T0 + s, level(s) + rng.gauss(0, noise)) for s in range(seconds)]


def test_linear_growth_with_noise_and_outliers() -> None:
    # 100 MiB growing 4 MiB/min towards 256 MiB, 3 MiB noise, 10% spikes of +80 MiB.
    points = series(300, lambda s: 100 * MIB + s * 4 * MIB / 60, noise=3 * MIB)
    rng = random.Random(7)
    points = [(t, v + 80 * MIB if rng.random() < 0.1 else v) for t, v in points]
    forecast = time_to_limit(points, 256 * MIB)
    assert forecast.status == "growing" and forecast.significant
    assert forecast.slope_bytes_per_s * 60 == pytest.approx(4 * MIB, rel=0.15)
    # At 300 s the level is 120 MiB: 136 MiB to go at 4 MiB/min = 34 min.
    assert forecast.seconds_to_limit == pytest.approx(34 * 60, rel=0.15)
    assert forecast.describe().startswith("limit in 3")


def test_a_real_leak_of_one_mib_a_second() -> None:
    points = series(180, lambda s: 100 * MIB + s * MIB, noise=2 * MIB)
    forecast = time_to_limit(points, 512 * MIB)
    assert forecast.limit_in_sight
    assert forecast.slope_bytes_per_s == pytest.approx(MIB, rel=0.05)
    # 280 MiB used now, 232 MiB to go at 1 MiB/s.
    assert forecast.seconds_to_limit == pytest.approx(232, rel=0.05)


def test_flat_with_noise_is_stable() -> None:
    for seed in range(20):
        points = series(300, lambda s: 180 * MIB, noise=4 * MIB, seed=seed)
        forecast = time_to_limit(points, 256 * MIB)
        assert forecast.status == "stable", (seed, forecast)
        assert forecast.seconds_to_limit is None and not forecast.significant
        assert forecast.describe() == "stable"


def test_a_tiny_step_is_not_a_trend() -> None:
    # redis at 15% growing its arena once, 4.9 -> 5.9 MB, anywhere in the window: the old
    # forecast said "limit in 8m59s".
    for at in (60, 120, 150, 160, 240):
        points = series(300, lambda s, at=at: 4.9e6 if s < at else 5.9e6)
        forecast = time_to_limit(points, 40e6)
        assert forecast.status == "stable", (at, forecast)
        assert forecast.seconds_to_limit is None


def test_two_values_fifteen_seconds_after_start_are_too_little_data() -> None:
    # The `watch --dry-run` page "redis: memory limit in 4 m 54 s", 15 s after its start.
    points = series(15, lambda s: 4.9e6 if s < 7 else 5.9e6)
    forecast = time_to_limit(points, 40e6)
    assert forecast.status == "too_little_data"
    assert forecast.describe() == "too little data"
    assert "a trend needs 2 m" in forecast.reason
    assert not forecast.significant and forecast.seconds_to_limit is None


def test_worker_recycles_sawtooth_is_stable_but_a_leak_under_it_is_seen() -> None:
    # 4 workers each growing 0.2 MiB/s, recycled every 200 s (staggered): 40 MiB teeth.
    def saw(s: int) -> float:
        return 200 * MIB + sum(((s + 50 * w) % 200) * 0.2 * MIB for w in range(4))

    flat = time_to_limit(series(300, saw, noise=MIB), 768 * MIB)
    assert flat.status == "stable"
    leaking = time_to_limit(series(300, lambda s: saw(s) + s * 0.3 * MIB, noise=MIB), 768 * MIB)
    assert leaking.limit_in_sight
    assert leaking.slope_bytes_per_s * 60 == pytest.approx(18 * MIB, rel=0.25)


def test_sawtooth_uses_the_segment_after_the_restart() -> None:
    # Grew to 250 MiB at 8 MiB/min, was killed, restarted at 60 MiB and grows at 40 MiB/min.
    def level(s: int) -> float:
        return 226 * MIB + s * 8 * MIB / 60 if s < 100 else 60 * MIB + (s - 100) * 40 * MIB / 60

    forecast = time_to_limit(series(300, level, noise=1 * MIB), 256 * MIB)
    assert forecast.limit_in_sight
    assert forecast.slope_bytes_per_s * 60 == pytest.approx(40 * MIB, rel=0.15)
    assert forecast.span_s == pytest.approx(199, abs=2)
    # Soon after the restart there is too little to go on, and the reason says why.
    early = time_to_limit(series(160, level, noise=1 * MIB), 256 * MIB)
    assert early.status == "too_little_data"
    assert "since the last drop" in early.reason


def test_few_points_or_short_span_is_too_little_data() -> None:
    assert time_to_limit([], 256 * MIB).status == "too_little_data"
    assert time_to_limit([(T0, 1.0), (T0 + 1, 2.0)], 256 * MIB).status == "too_little_data"
    short = series(100, lambda s: s * MIB)
    assert time_to_limit(short, 256 * MIB).describe() == "too little data"


def test_time_left_is_from_the_level_seen_never_zero_below_the_limit() -> None:
    # 87% of the limit and climbing fast, then 94%: a time at both, never 0 s, never "-".
    for share in (0.87, 0.94):
        top = share * 512 * MIB
        points = series(150, lambda s, top=top: top - (149 - s) * MIB / 2, noise=MIB / 4)
        forecast = time_to_limit(points, 512 * MIB)
        assert forecast.limit_in_sight, (share, forecast)
        assert forecast.seconds_to_limit is not None
        assert forecast.seconds_to_limit == pytest.approx((1 - share) * 1024, rel=0.1)
        assert forecast.describe() != "limit in 0 s"


def test_at_limit_is_an_observation_and_shrinking_and_no_limit() -> None:
    at = series(5, lambda s: 255.5 * MIB, noise=0.1 * MIB)
    assert time_to_limit(at, 256 * MIB).status == "at_limit"
    down = series(200, lambda s: 200 * MIB - s * MIB / 6)
    shrinking = time_to_limit(down, 256 * MIB)
    assert shrinking.status == "shrinking"
    assert shrinking.describe() == "-10.0 MiB/min"
    up = series(200, lambda s: 50 * MIB + s * MIB / 5)
    unlimited = time_to_limit(up, 0)
    assert (unlimited.status, unlimited.seconds_to_limit) == ("growing", None)
    assert unlimited.describe() == "+12.0 MiB/min"


def test_growth_beyond_the_horizon_gives_a_rate_not_a_time() -> None:
    # A real staircase (1 MB a minute) with 250 MB to go: hours away, from 5 minutes of data.
    stair = time_to_limit(series(300, lambda s: 4.9e6 + (s // 60) * 1e6), 256 * MIB)
    assert stair.status == "growing" and stair.seconds_to_limit is None
    assert not stair.limit_in_sight
    assert stair.describe().endswith("limit not within 59 m")
    slow = series(300, lambda s: 2048 * MIB + s * MIB / 3600 * 60)
    assert not time_to_limit(slow, 20 * 1024 * MIB).limit_in_sight


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
    # Available + swap free falls from 2 GiB by 100 MiB/min: about 18 min left after 5 min.
    falling = series(300, lambda s: 2048 * MIB - s * 100 * MIB / 60, noise=5 * MIB)
    forecast = host_exhaustion(falling, total_bytes=8192 * MIB)
    assert forecast.limit_in_sight
    assert forecast.seconds_to_limit == pytest.approx(1548 / 100 * 60, rel=0.1)
    assert forecast.level_bytes == pytest.approx(1548 * MIB, rel=0.02)
    assert "available memory falling" in forecast.reason
    steady = series(300, lambda s: 3000 * MIB, noise=20 * MIB)
    assert host_exhaustion(steady, total_bytes=8192 * MIB).status == "stable"
    empty = series(60, lambda s: 50 * MIB)
    assert host_exhaustion(empty, total_bytes=8192 * MIB).status == "at_limit"


def test_host_at_three_percent_used_has_no_exhaustion_time() -> None:
    # 24 GiB host, 3% used, available wandering down 200 MiB over 5 minutes: the old pane
    # said "out of memory in ~2h02m"; it is not within what 5 minutes can tell.
    total = 24 * 1024 * MIB
    wander = series(300, lambda s: 0.97 * total - s * 200 * MIB / 300, noise=30 * MIB)
    forecast = host_exhaustion(wander, total_bytes=total)
    assert forecast.seconds_to_limit is None
    assert not forecast.limit_in_sight
    assert host_exhaustion(wander[:30], total_bytes=total).status == "too_little_data"


def test_describe_forms() -> None:
    assert Forecast("growing", 1.0, 252.0).describe() == "limit in 4 m 12 s"
    assert Forecast("growing", 1.0, 0.4).describe() == "limit in 1 s"
    assert Forecast("at_limit").describe() == "at limit"
    doc = Forecast("stable", 0.0, None, 1.0, 300.0, "no significant trend").to_json()
    assert doc["status"] == "stable" and doc["reason"] == "no significant trend"


_FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**20), 10**20)


@settings(max_examples=300)
@given(st.lists(st.tuples(_FLOATS, _FLOATS), max_size=200), _FLOATS, _FLOATS)
def test_forecast_never_raises(points: list[tuple[float, float]], limit: float, window: float):
    forecast = time_to_limit(points, limit, window_s=window)
    assert forecast.status in STATUSES
    forecast.describe()
    host = host_exhaustion(points, window_s=window, total_bytes=limit)
    host.describe()

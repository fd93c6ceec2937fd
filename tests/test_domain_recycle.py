"""max-requests from the measured growth per request: the arithmetic, on fake frames."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from incident_console.domain.recycle import (
    MAX_REQUESTS_RANGE,
    advise_max_requests,
    request_rate,
    worker_growth,
)

MIB = 1024 * 1024


def _lab(**changes: object) -> dict[str, object]:
    # The lab: 4 workers at 8 req/s, each growing 2 MiB/s (1 MiB per request); proposed 2
    # workers in 256 MiB, master 20 MiB, workers boot at 20 MiB, 10 MiB of page cache.
    base: dict[str, object] = {
        "limit_bytes": 256 * MIB,
        "workers": 2,
        "master_bytes": 20 * MIB,
        "baseline_bytes": 20 * MIB,
        "growth_bytes_per_s": 2.0 * MIB,
        "requests_per_s": 8.0,
        "current_workers": 4,
        "overhead_bytes": 10 * MIB,
    }
    base.update(changes)
    return base


def test_request_rate_from_access_line_times() -> None:
    assert request_rate([100.0 + i * 0.125 for i in range(81)]) == 8.0  # 80 gaps in 10 s
    assert request_rate([100.0, 101.0, 102.0]) is None  # too few lines
    assert request_rate([100.0 + i * 0.1 for i in range(20)]) is None  # under 5 s
    assert request_rate([]) is None
    assert request_rate([math.nan, *[float(i) for i in range(11)]]) == 1.0


def test_worker_growth_pools_each_pid_and_survives_kills() -> None:
    # Worker 11 grows 2 MiB/s and is killed at t=15; worker 13 replaces it at 20 MiB.
    frames = []
    for t in range(0, 31, 5):
        workers = {12: 20 * MIB + 2 * MIB * t}
        if t <= 15:
            workers[11] = 30 * MIB + 2 * MIB * t
        else:
            workers[13] = 20 * MIB + 2 * MIB * (t - 20) if t >= 20 else 20 * MIB
        frames.append((1000.0 + t, workers))
    growth = worker_growth(frames)
    assert growth is not None and abs(growth - 2 * MIB) < 0.3 * MIB  # the kill is no drop


def test_worker_growth_needs_frames_spanning_some_seconds() -> None:
    assert worker_growth([(0.0, {1: MIB}), (5.0, {1: 2 * MIB})]) is None  # one pair, 5 s
    assert worker_growth([(0.0, {1: MIB}), (5.0, {2: 2 * MIB}), (10.0, {3: MIB})]) is None
    assert worker_growth([]) is None


def test_lab_numbers_give_a_recycling_short_of_the_limit() -> None:
    advice = advise_max_requests(**_lab())  # type: ignore[arg-type]
    assert advice.growth_per_request == 1.0 * MIB
    # (256 / 1.2 - 20 - 10) / 2 - 20 = 71.7 MiB each; / (1 MiB x 1.1) = 65.2 -> 65.
    assert advice.max_requests == 65 and advice.jitter == 6
    assert (advice.max_requests + advice.jitter) * MIB <= 71.7 * MIB
    assert "grow ~1.0 MiB per request at 8.0 req/s over 4 workers" in advice.why
    assert "2 workers in 256.0 MiB" in advice.why and "71.7 MiB each" in advice.why
    assert "recycle after 65 (+ up to 6 jitter)" in advice.why


def test_bigger_leak_or_smaller_limit_recycles_sooner() -> None:
    lab = advise_max_requests(**_lab()).max_requests  # type: ignore[arg-type]
    leakier = advise_max_requests(**_lab(growth_bytes_per_s=4.0 * MIB)).max_requests  # type: ignore[arg-type]
    roomier = advise_max_requests(**_lab(limit_bytes=512 * MIB)).max_requests  # type: ignore[arg-type]
    assert leakier < lab < roomier


def test_clamped_to_the_sane_range_and_says_so() -> None:
    low, high = MAX_REQUESTS_RANGE
    tiny = advise_max_requests(**_lab(limit_bytes=96 * MIB))  # type: ignore[arg-type]
    assert tiny.max_requests == low and "raise the limit" in tiny.why
    slow = advise_max_requests(**_lab(growth_bytes_per_s=4096.0, limit_bytes=4096 * MIB))  # type: ignore[arg-type]
    assert slow.max_requests == high and "at most" in slow.why


def test_unmeasured_keeps_the_fallback_and_says_why() -> None:
    no_rate = advise_max_requests(**_lab(requests_per_s=None))  # type: ignore[arg-type]
    assert (no_rate.max_requests, no_rate.jitter) == (1000, 50)
    assert no_rate.growth_per_request is None and "access-log" in no_rate.why
    no_growth = advise_max_requests(**_lab(growth_bytes_per_s=None))  # type: ignore[arg-type]
    assert no_growth.max_requests == 1000 and "too few worker RSS samples" in no_growth.why
    flat = advise_max_requests(**_lab(growth_bytes_per_s=10.0))  # type: ignore[arg-type]
    assert flat.max_requests == 1000 and "do not grow measurably" in flat.why
    no_limit = advise_max_requests(**_lab(limit_bytes=0))  # type: ignore[arg-type]
    assert no_limit.max_requests == 1000 and no_limit.growth_per_request == MIB


@given(
    limit=st.integers(0, 1 << 36),
    workers=st.integers(0, 64),
    growth=st.none() | st.floats(-1e9, 1e9),
    rate=st.none() | st.floats(0, 1e5),
    current=st.integers(0, 64),
)
def test_always_in_range(
    limit: int, workers: int, growth: float | None, rate: float | None, current: int
) -> None:
    advice = advise_max_requests(**_lab(  # type: ignore[arg-type]
        limit_bytes=limit, workers=workers, growth_bytes_per_s=growth, requests_per_s=rate,
        current_workers=current,
    ))  # fmt: skip
    low, high = MAX_REQUESTS_RANGE
    assert low <= advice.max_requests <= max(high, 1000) and advice.jitter >= 1
    assert advice.why

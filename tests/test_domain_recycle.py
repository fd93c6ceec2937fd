"""The growth per request and the fix proposal: the arithmetic, on the lab's numbers."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from incident_console.domain.advice import (
    JITTER_SHARE,
    MAX_REQUESTS_RANGE,
    FixEvidence,
    propose_fix,
)
from incident_console.domain.recycle import Interval, growth_per_request

MIB = 1024 * 1024

#: The lab after `lab load`: 4 workers booted at 25 MiB, master 29 MiB, 256m, 1 MiB a request.
LAB = FixEvidence(
    limit_bytes=256 * MIB,
    current_workers=4,
    master_bytes=29 * MIB,
    master_how="the container's main process",
    baseline_bytes=25 * MIB,
    overhead_bytes=0,
    peak_bytes=130 * MIB,
    peak_how="7 kill line(s), largest 130.0 MiB",
    per_request=1.0 * MIB,
    growth="~1.0 MiB per request (400 requests over 50s of samples)",
)


def _busy(start: float, n: int, per_request: float = MIB, requests: int = 40) -> list[Interval]:
    return [
        Interval(start + 5 * i, start + 5 * i + 5, int(requests * per_request), requests)
        for i in range(n)
    ]


def test_growth_per_request_pools_intervals_with_requests() -> None:
    est, why = growth_per_request(_busy(0, 10))
    assert why == "" and est is not None
    assert est.per_request == MIB and est.requests == 400 and est.seconds == 50
    assert "~1.0 MiB per request" in est.describe() and "400 requests" in est.describe()


def test_idle_intervals_change_nothing() -> None:
    """The figure does not depend on whether load runs now: idle intervals (health checks
    aside, no request) carry no weight, however many there are."""
    busy = _busy(0, 10)
    idle = [Interval(100 + 5 * i, 105 + 5 * i, 0, 0) for i in range(200)]
    noisy_idle = [Interval(2000 + 5 * i, 2005 + 5 * i, 4096 * (i % 3 - 1), 0) for i in range(50)]
    alone, _ = growth_per_request(busy)
    mixed, _ = growth_per_request([*busy, *idle, *noisy_idle])
    assert alone == mixed


def test_too_little_is_no_estimate_and_says_why() -> None:
    est, why = growth_per_request([])
    assert est is None and "no request" in why
    est, why = growth_per_request(_busy(0, 1, requests=10))
    assert est is None and "only 10 requests" in why
    est, why = growth_per_request(_busy(0, 10, per_request=0))
    assert est is None and "nothing that recycling would give back" in why


def test_spread_is_the_uncertainty_and_the_cautious_side_is_high() -> None:
    mixed = [*_busy(0, 5, 0.8 * MIB), *_busy(100, 5, 1.2 * MIB)]
    est, _ = growth_per_request(mixed)
    assert est is not None
    assert est.low < est.per_request < est.high
    assert abs(est.per_request - MIB) < 0.01 * MIB
    assert "819.2 KiB-1.2 MiB" in est.describe()  # the range is shown


def test_the_lab_fix_holds_under_load() -> None:
    p = propose_fix(LAB)
    assert p.workers == 2 and p.limit_bytes == 256 * MIB
    assert p.max_requests is not None and p.jitter is not None
    peak = LAB.baseline_bytes + (p.max_requests + p.jitter) * LAB.per_request  # type: ignore[operator]
    total = p.workers * peak + LAB.master_bytes
    assert total <= 256 * MIB / 1.2  # within the limit with 20% margin
    assert MAX_REQUESTS_RANGE[0] <= p.max_requests <= 80  # well before the 130 MiB kills
    assert "half of the 4 seen" in p.why_workers and "peaked at 130.0 MiB" in p.why_workers
    assert "workers grow ~1.0 MiB per request" in p.why_max_requests
    assert f"recycle after {p.max_requests}" in p.why_max_requests
    assert "holds the fix" in p.why_limit and "% of 256.0 MiB" in p.why_limit


def test_no_growth_measured_declines_instead_of_the_seeds_defaults() -> None:
    idle = replace(LAB, per_request=None, growth="no request was served while sampled")
    p = propose_fix(idle)
    assert p.workers is None and p.max_requests is None and p.jitter is None
    assert "run `lab load` or wait for traffic" in p.why_max_requests
    assert "1000" not in p.why_max_requests and "seed" not in p.why_max_requests
    assert p.limit_bytes == 256 * MIB and "kept" in p.why_limit  # the limit in effect stays


def test_a_limit_too_small_is_raised_and_the_workers_reduced() -> None:
    tight = replace(LAB, limit_bytes=96 * MIB, per_request=2 * MIB)
    p = propose_fix(tight)
    assert p.workers == 1 and p.limit_bytes is not None and p.limit_bytes > 96 * MIB
    assert "raised to" in p.why_limit
    assert "then 1 so that each lives 20+ requests" in p.why_workers


def test_operator_values_are_kept_and_the_rest_follows() -> None:
    one = propose_fix(LAB, workers=1)
    two = propose_fix(LAB)
    assert one.workers == 1 and one.max_requests > two.max_requests  # type: ignore[operator]
    bigger = propose_fix(LAB, limit_bytes=512 * MIB)
    assert bigger.limit_bytes == 512 * MIB and "set by the operator" in bigger.why_limit
    assert bigger.max_requests > two.max_requests  # type: ignore[operator]


@given(
    limit=st.integers(0, 4096),
    workers=st.integers(1, 16),
    master=st.integers(5, 300),
    base=st.integers(5, 300),
    other=st.integers(0, 100),
    kib=st.integers(4, 20_000),
    peak=st.integers(0, 2000),
)
def test_a_proposal_always_holds_its_own_arithmetic(
    limit: int, workers: int, master: int, base: int, other: int, kib: int, peak: int
) -> None:
    e = replace(
        LAB,
        limit_bytes=limit * MIB,
        current_workers=workers,
        master_bytes=master * MIB,
        baseline_bytes=base * MIB,
        overhead_bytes=other * MIB,
        peak_bytes=peak * MIB,
        per_request=kib * 1024.0,
    )
    p = propose_fix(e)
    assert p.workers is not None and p.max_requests is not None and p.jitter is not None
    assert p.limit_bytes is not None and 1 <= p.workers <= max(workers // 2, 1)
    assert MAX_REQUESTS_RANGE[0] <= p.max_requests <= MAX_REQUESTS_RANGE[1]
    assert p.jitter <= max(round(p.max_requests * JITTER_SHARE), 1)
    worst = base * MIB + (p.max_requests + p.jitter) * kib * 1024.0
    need = p.workers * worst + (master + other) * MIB
    if p.max_requests > MAX_REQUESTS_RANGE[0]:
        # Unless even the fewest requests do not fit, the limit holds it with its 20% margin.
        assert need <= p.limit_bytes / 1.2 + 1, p
        assert "raise mem_limit" not in p.holds

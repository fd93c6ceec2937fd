"""How much memory a gunicorn worker keeps per request, from intervals of samples.

`--max-requests N` restarts a worker after N requests, which gives back what it kept; the right
N comes from the memory a worker keeps per request. It is measured over the whole window the
console has seen, interval by interval, never from the last seconds alone:

- an interval is two consecutive process frames of one container with the same workers in
  both (a kill or a recycle in between starts over: its memory went back);
- its growth is the sum of the workers' RSS changes, its requests the access-log lines
  (one per request served, health checks left out) logged in it;
- intervals without a request say nothing about growth per request and are left out, so an
  idle minute neither dilutes nor inflates the figure: the result does not depend on whether
  load runs at the moment the question is asked;
- growth per request = the sum of the growth over the sum of the requests; its uncertainty is
  the spread of the same ratio over chunks of consecutive intervals (at least `CHUNK_REQUESTS`
  requests each), and a proposal is sized on the upper quartile of that spread.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from incident_console.domain.durations import format_bytes

__all__ = ["MIN_REQUESTS", "GrowthEstimate", "Interval", "growth_per_request"]

#: Fewer requests than this behind an estimate is too little to size a fix on.
MIN_REQUESTS = 50
#: Requests per chunk when measuring the spread.
CHUNK_REQUESTS = 15
#: Below this (4 KiB a request) a worker keeps nothing recycling would give back.
MIN_PER_REQUEST = 4 * 1024


@dataclass(frozen=True, slots=True)
class Interval:
    """Two consecutive process frames of one container with the same workers in both.

    Attributes:
        start: epoch seconds of the first frame.
        end: epoch seconds of the second frame.
        growth_bytes: the workers' summed RSS change between them.
        requests: access-log lines (requests served) logged in (start, end].
    """

    start: float
    end: float
    growth_bytes: int
    requests: int


@dataclass(frozen=True, slots=True)
class GrowthEstimate:
    """Bytes a worker keeps per request, with the evidence behind it.

    Attributes:
        per_request: the pooled figure (sum of growth / sum of requests).
        low: the lower quartile over chunks (== per_request with fewer than 3 chunks).
        high: the upper quartile over chunks: what a cautious proposal is sized on.
        requests: the requests behind it.
        seconds: the seconds of intervals that had requests.
        intervals: how many intervals had requests.
    """

    per_request: float
    low: float
    high: float
    requests: int
    seconds: float
    intervals: int

    def describe(self) -> str:
        """'~1.0 MiB per request (0.9-1.1 MiB, 412 requests over 5m10s of samples)'."""
        low, high = format_bytes(self.low), format_bytes(self.high)
        spread = f"{low}-{high}, " if low != high else ""
        minutes, seconds = divmod(round(self.seconds), 60)
        span = f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
        return (
            f"~{format_bytes(self.per_request)} per request ({spread}{self.requests} requests "
            f"over {span} of samples)"
        )


def growth_per_request(
    intervals: Iterable[Interval],
) -> tuple[GrowthEstimate | None, str]:
    """The growth per request over every interval that had requests, or None and why not.

    Returns:
        (estimate, '') or (None, a reason in words: no requests, too few, no growth).
    """
    busy = sorted(
        (i for i in intervals if i.requests > 0 and math.isfinite(i.growth_bytes)),
        key=lambda i: i.start,
    )
    requests = sum(i.requests for i in busy)
    if not busy:
        return None, "no request was served while the workers' memory was sampled"
    if requests < MIN_REQUESTS:
        return None, f"only {requests} requests seen while the workers' memory was sampled"
    pooled = sum(i.growth_bytes for i in busy) / requests
    seconds = sum(i.end - i.start for i in busy)
    if pooled < MIN_PER_REQUEST:
        return None, (
            f"the workers kept {format_bytes(max(pooled, 0.0))} per request over {requests} "
            "requests: nothing that recycling would give back"
        )
    ratios: list[float] = []
    growth, count = 0, 0
    for interval in busy:
        growth += interval.growth_bytes
        count += interval.requests
        if count >= CHUNK_REQUESTS:
            ratios.append(growth / count)
            growth, count = 0, 0
    low = high = pooled
    if len(ratios) >= 3:
        q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
        low, high = min(q1, pooled), max(q3, pooled)
    return GrowthEstimate(pooled, max(low, 0.0), high, requests, seconds, len(busy)), ""

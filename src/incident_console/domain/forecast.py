"""How long until a container hits its memory limit, or the host runs out: a trend, if any.

A forecast is shown only when the data carry one. Memory samples are noisy (GC, request
bursts), carry outliers (a one-second spike), step (redis growing its arena by 1 MB) and saw
down when a worker is killed or recycled; a straight line through a few of them "predicts" an
out-of-memory at 15% used. So:

- only the segment after the last big drop counts (the growth since the last restart or kill);
- at least `MIN_SPAN_S` of it, else the answer is "too little data" (said, not guessed);
- the slope is Theil-Sen's (the median of all pairwise slopes, over at most `MAX_POINTS` bin
  medians), with Sen's confidence interval: when it holds zero, the answer is "stable";
- the rise over the segment must also stand out of the noise (`NOISE_K` robust sigmas of the
  residuals) and be a visible share of the scale: a single step is not a trend;
- the time to the limit is from the level seen now (never "0 s" below the limit), and only
  within a horizon of `HORIZON_FACTOR` times the data it is based on: beyond it the rate is
  given, not a time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from incident_console.domain.durations import format_bytes, format_duration

__all__ = [
    "HORIZON_FACTOR",
    "MAX_POINTS",
    "MIN_SPAN_S",
    "Forecast",
    "host_exhaustion",
    "time_to_limit",
]

#: Bin medians the slope is computed over (all pairs: 1770 slopes, about half a millisecond).
MAX_POINTS = 60
#: A trend needs this much data after the last drop (restart, kill) ...
MIN_SPAN_S = 120.0
#: ... and at least this many samples in it.
MIN_POINTS = 12
#: A time to the limit is given only up to this many times the span of data behind it ...
HORIZON_FACTOR = 12.0
#: ... and never beyond a day.
HORIZON_MAX_S = 24 * 3600.0
#: A fall of more than this share of the scale (the limit, or the highest level seen) between
#: two samples is a restart or a kill: the trend starts again after it.
DROP_SHARE = 0.2
#: The rise over the span must be this many robust sigmas of the residuals ...
NOISE_K = 3.0
#: ... and this share of the scale (the limit; for the host, all of its memory).
MIN_RISE_SHARE = 0.005
#: Within this share of the scale from the limit is "at limit" (an observation, no trend).
AT_LIMIT_SHARE = 0.02
#: Two-sided 95% for Sen's confidence interval of the slope.
Z_95 = 1.96

STATUSES = ("too_little_data", "stable", "growing", "shrinking", "at_limit")


@dataclass(frozen=True, slots=True)
class Forecast:
    """The trend of a memory series and what it means.

    Attributes:
        status: too_little_data, stable, growing, shrinking or at_limit. Only growing and
            shrinking are significant trends.
        slope_bytes_per_s: Theil-Sen growth of the used memory (for the host: of consumption);
            0 when there is too little data.
        seconds_to_limit: Growing, with a limit within the horizon: the time until it at this
            rate, from the level seen now. None otherwise.
        level_bytes: The fitted current level (for the host: available bytes).
        span_s: Seconds of data the trend is based on (after the last drop).
        reason: Why the status is what it is, in a few words (shown by diagnose).
        horizon_s: How far ahead this data may be extrapolated (growing beyond it: the limit is
            not in sight, `seconds_to_limit` is None).
    """

    status: str
    slope_bytes_per_s: float = 0.0
    seconds_to_limit: float | None = None
    level_bytes: float | None = None
    span_s: float = 0.0
    reason: str = ""
    horizon_s: float | None = None

    @property
    def significant(self) -> bool:
        """A trend stands out of the noise over enough time (growing or shrinking)."""
        return self.status in ("growing", "shrinking")

    @property
    def limit_in_sight(self) -> bool:
        """Growing significantly and the limit is within the horizon: worth a warning."""
        return self.status == "growing" and self.seconds_to_limit is not None

    def describe(self) -> str:
        """One short phrase: "stable", "limit in 4 m 12 s", "+12.0 MiB/min", "at limit"."""
        if self.status == "too_little_data":
            return "too little data"
        if self.status == "at_limit":
            return "at limit"
        if self.status == "stable":
            return "stable"
        if self.limit_in_sight and self.seconds_to_limit is not None:
            return f"limit in {format_duration(math.ceil(self.seconds_to_limit))}"
        per_minute = self.slope_bytes_per_s * 60
        sign = "+" if per_minute >= 0 else "-"
        rate = f"{sign}{format_bytes(abs(per_minute))}/min"
        if self.status == "growing" and self.horizon_s is not None:
            return f"{rate}, limit not within {format_duration(self.horizon_s)}"
        return rate

    def to_json(self) -> dict[str, Any]:
        """The forecast as `diagnose --json` prints it."""
        return {
            "status": self.status,
            "summary": self.describe(),
            "reason": self.reason,
            "seconds_to_limit": (
                None if self.seconds_to_limit is None else round(self.seconds_to_limit, 1)
            ),
            "slope_bytes_per_min": round(self.slope_bytes_per_s * 60),
            "span_s": round(self.span_s, 1),
        }


@dataclass(frozen=True, slots=True)
class _Fit:
    slope: float
    low: float  # Sen's 95% interval of the slope
    high: float
    level: float
    noise: float


def _clean(points: Sequence[tuple[float, float]], window_s: float) -> list[tuple[float, float]]:
    finite: list[tuple[float, float]] = []
    for point in points:
        try:
            t, v = float(point[0]), float(point[1])
        except (TypeError, ValueError, IndexError, OverflowError):
            continue
        # Beyond 1e15 (s or bytes) nothing is real, and products of such numbers overflow.
        if math.isfinite(t) and math.isfinite(v) and abs(t) < 1e15 and abs(v) < 1e15:
            finite.append((t, v))
    finite.sort()
    if not finite:
        return []
    if math.isfinite(window_s) and window_s > 0:
        start = finite[-1][0] - window_s
        finite = [p for p in finite if p[0] >= start]
    return finite


def _median(values: Sequence[float]) -> float:
    """The median of a few floats, without statistics.median's generality (it is hot here)."""
    ordered = sorted(values)
    n = len(ordered)
    middle = n // 2
    return ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _after_last_drop(points: list[tuple[float, float]], scale: float) -> list[tuple[float, float]]:
    # Medians of five samples on each side: a spike of one or two samples is not a restart.
    threshold = DROP_SHARE * scale
    values = [v for _, v in points]
    if not values or max(values) - min(values) <= threshold:
        return points  # medians lie between the extremes: no drop can be this deep
    for i in range(len(values) - 2, 0, -1):
        before = _median(values[max(i - 5, 0) : i])
        after = _median(values[i : i + 5])
        if before - after > threshold:
            return points[i:]
    return points


def _resample(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    n = len(points)
    if n <= MAX_POINTS:
        return points
    # Medians of equal-count bins: keeps the shape, drops single-sample spikes.
    out = []
    for b in range(MAX_POINTS):
        chunk = points[b * n // MAX_POINTS : (b + 1) * n // MAX_POINTS]
        if chunk:
            out.append((_median([p[0] for p in chunk]), _median([p[1] for p in chunk])))
    return out


def _fit(points: list[tuple[float, float]]) -> _Fit | None:
    """Theil-Sen over all pairs, with Sen's (1968) distribution-free interval of the slope."""
    n = len(points)
    slopes = sorted(
        (points[j][1] - points[i][1]) / (points[j][0] - points[i][0])
        for i in range(n)
        for j in range(i + 1, n)
        if points[j][0] > points[i][0]
    )
    count = len(slopes)
    if count < 3:
        return None
    slope = _median(slopes)
    # Kendall's S has variance n(n-1)(2n+5)/18 (ties only narrow it: this errs wide).
    reach = Z_95 * math.sqrt(n * (n - 1) * (2 * n + 5) / 18)
    low = slopes[max(0, math.floor((count - reach) / 2))]
    high = slopes[min(count - 1, math.ceil((count + reach) / 2))]
    t_last = points[-1][0]
    # Intercept at the last sample time (not at t=0: epoch times would cost precision).
    level = _median([v - slope * (t - t_last) for t, v in points])
    noise = 1.4826 * _median([abs(v - (level + slope * (t - t_last))) for t, v in points])
    if not all(math.isfinite(x) for x in (slope, low, high, level, noise)):
        return None
    return _Fit(slope=slope, low=low, high=high, level=level, noise=noise)


def _forecast(
    points: list[tuple[float, float]], limit: float | None, scale: float, what: str
) -> Forecast:
    """Trend of `points` (larger = more used) towards `limit` (None: no limit)."""
    segment = _after_last_drop(points, scale)
    after = " since the last drop" if len(segment) < len(points) else ""
    span = segment[-1][0] - segment[0][0] if segment else 0.0
    if len(segment) >= 3:
        now = _median([v for _, v in segment[-3:]])
        if limit is not None and limit - now <= AT_LIMIT_SHARE * scale:
            share = f"{AT_LIMIT_SHARE:.0%}"
            return Forecast("at_limit", 0.0, None, now, span, f"{what} within {share} of the limit")
    if span < MIN_SPAN_S or len(segment) < MIN_POINTS:
        return Forecast(
            "too_little_data",
            span_s=span,
            reason=f"{format_duration(span)} of samples{after}; a trend needs "
            f"{format_duration(MIN_SPAN_S)}",
        )
    fit = _fit(_resample(segment))
    if fit is None:
        return Forecast("too_little_data", span_s=span, reason="samples too close in time")
    now = _median([v for _, v in segment[-3:]])
    rise = fit.slope * span
    if fit.low <= 0 <= fit.high:
        return Forecast(
            "stable", fit.slope, None, fit.level, span,
            f"no significant trend over {format_duration(span)}{after}",
        )  # fmt: skip
    floor = max(NOISE_K * fit.noise, MIN_RISE_SHARE * scale)
    if abs(rise) < floor:
        return Forecast(
            "stable", fit.slope, None, fit.level, span,
            f"{format_bytes(abs(rise))} change over {format_duration(span)} is within the "
            f"noise ({format_bytes(floor)})",
        )  # fmt: skip
    if fit.slope < 0:
        return Forecast("shrinking", fit.slope, None, fit.level, span, f"{what} falling")
    if limit is None:
        return Forecast("growing", fit.slope, None, fit.level, span, f"{what} growing, no limit")
    horizon = min(HORIZON_MAX_S, HORIZON_FACTOR * span)
    horizon = horizon // 60 * 60 if horizon >= 60 else horizon  # "within 59 m", not "59 m 48 s"
    # From the level seen now, not the fitted one: a fit above the limit is not "0 s" left.
    seconds = max(limit - now, 0.0) / fit.slope
    if seconds > horizon:
        return Forecast(
            "growing", fit.slope, None, fit.level, span,
            f"at this rate the limit is {format_duration(seconds)} away, beyond what "
            f"{format_duration(span)} of data can tell",
            horizon,
        )  # fmt: skip
    return Forecast(
        "growing", fit.slope, seconds, fit.level, span,
        f"{what} growing {format_bytes(fit.slope * 60)}/min over {format_duration(span)}",
        horizon,
    )  # fmt: skip


def time_to_limit(
    points: Sequence[tuple[float, float]], limit: float, *, window_s: float = 300
) -> Forecast:
    """Forecast a container's memory against its limit. Never raises.

    Args:
        points: (epoch seconds, used bytes) samples, in any order; non-finite ones are ignored.
        limit: The memory limit in bytes; 0, negative or non-finite means no limit (then only
            the rate is reported).
        window_s: How far back from the newest sample to look.

    Returns:
        A `Forecast`; "too_little_data" with less than `MIN_SPAN_S` of usable data.
    """
    data = _clean(points, window_s)
    if not data:
        return Forecast("too_little_data", reason="no samples")
    try:
        has_limit = math.isfinite(limit) and 0 < limit < 1e15
    except TypeError:
        has_limit = False
    peak = max(v for _, v in data)
    scale = float(limit) if has_limit else max(peak, 1.0)
    return _forecast(data, float(limit) if has_limit else None, scale, "memory")


def host_exhaustion(
    points: Sequence[tuple[float, float]],
    *,
    window_s: float = 300,
    total_bytes: float | None = None,
) -> Forecast:
    """Forecast when the host runs out of memory. Never raises.

    Args:
        points: (epoch seconds, MemAvailable + SwapFree bytes) samples.
        window_s: How far back from the newest sample to look.
        total_bytes: MemTotal + SwapTotal if known (the scale for "a big jump", "at limit" and
            the smallest change that counts); otherwise the highest availability seen.

    Returns:
        A `Forecast` of consumption: "growing" with `seconds_to_limit` = time until nothing is
        available; `slope_bytes_per_s` is the rate at which availability falls; `level_bytes`
        the fitted available bytes now.
    """
    data = _clean(points, window_s)
    if not data:
        return Forecast("too_little_data", reason="no samples")
    highest = max(v for _, v in data)
    scale = highest
    if (
        isinstance(total_bytes, int | float)
        and math.isfinite(total_bytes)
        and 0 < total_bytes < 1e15
    ):
        scale = max(float(total_bytes), highest)
    scale = max(scale, 1.0)
    # Consumption = -available: it grows towards the limit 0.
    consumed = [(t, -v) for t, v in data]
    result = _forecast(consumed, 0.0, scale, "available memory")
    level = None if result.level_bytes is None else -result.level_bytes
    reason = result.reason.replace("available memory growing", "available memory falling", 1)
    if result.status == "shrinking":
        reason = "available memory rising"
    elif result.status == "at_limit":
        reason = f"under {AT_LIMIT_SHARE:.0%} of memory available"
    return Forecast(
        result.status,
        result.slope_bytes_per_s,
        result.seconds_to_limit,
        level,
        result.span_s,
        reason,
        result.horizon_s,
    )

"""How long until a container hits its memory limit, or the host runs out: a robust trend.

Memory samples are noisy (GC, request bursts), carry outliers (a one-second spike), and saw
down when a worker is killed or recycled. So: keep the recent window, keep only the segment
after the last big drop (the growth that matters is the one since the last restart), resample
to at most `MAX_POINTS`, and take the Theil–Sen slope (median of pairwise slopes) over pairs
half a window apart: O(n) pairs, robust to a third of the points being outliers.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from incident_console.domain.durations import format_bytes, format_duration

__all__ = ["MAX_POINTS", "Forecast", "host_exhaustion", "time_to_limit"]

MAX_POINTS = 120
MIN_SPAN_S = 10.0
HORIZON_S = 24 * 3600.0
# A fall of more than this share of the scale (the limit, or the highest level seen) between
# two samples is a restart or a kill: the trend starts again after it.
DROP_SHARE = 0.2
# A trend smaller than this share of the level over the window is not one ...
FLAT_SHARE = 0.005
# ... nor one smaller than this share of the noise (robust sigma of the residuals).
FLAT_NOISE = 0.5
AT_LIMIT_SHARE = 0.02


@dataclass(frozen=True, slots=True)
class Forecast:
    """The trend of a memory series and what it means.

    Attributes:
        status: stable, growing, shrinking, at_limit or unknown (too little data).
        slope_bytes_per_s: Growth of the used memory (for the host: of consumption).
        seconds_to_limit: When growing, the time until the limit at this rate (None otherwise,
            or beyond 24 h, which counts as stable).
        level_bytes: The fitted current level (for the host: available bytes).
        span_s: Seconds of data the trend is based on.
    """

    status: str
    slope_bytes_per_s: float = 0.0
    seconds_to_limit: float | None = None
    level_bytes: float | None = None
    span_s: float = 0.0

    def describe(self) -> str:
        """One short phrase: "stable", "limit in 4 m 12 s", "+12.0 MiB/min", "at limit"."""
        if self.status == "unknown":
            return "collecting data"
        if self.status == "at_limit":
            return "at limit"
        if self.status == "stable":
            return "stable"
        if self.status == "growing" and self.seconds_to_limit is not None:
            return f"limit in {format_duration(self.seconds_to_limit)}"
        per_minute = self.slope_bytes_per_s * 60
        sign = "+" if per_minute >= 0 else "-"
        return f"{sign}{format_bytes(abs(per_minute))}/min"


@dataclass(frozen=True, slots=True)
class _Fit:
    slope: float
    level: float
    span: float
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


def _median_small(values: list[float]) -> float:
    """statistics.median of a handful of floats, without its generality (called 600 times a
    forecast, it was most of the forecast's cost)."""
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
        before = _median_small(values[max(i - 5, 0) : i])
        after = _median_small(values[i : i + 5])
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
            out.append((_median_small([p[0] for p in chunk]), _median_small([p[1] for p in chunk])))
    return out


def _fit(points: list[tuple[float, float]]) -> _Fit | None:
    span = points[-1][0] - points[0][0] if points else 0.0
    if len(points) < 3 or span < MIN_SPAN_S:
        return None
    n = len(points)
    slopes = []
    for gap in {max(n // 2, 1), max(n // 3, 1)}:
        for i in range(n - gap):
            (t0, v0), (t1, v1) = points[i], points[i + gap]
            if t1 > t0:
                slopes.append((v1 - v0) / (t1 - t0))
    if not slopes:
        return None
    slope = statistics.median(slopes)
    t_last = points[-1][0]
    # Intercept at the last sample time (not at t=0: epoch times would cost precision).
    level = statistics.median(v - slope * (t - t_last) for t, v in points)
    residuals = [v - (level + slope * (t - t_last)) for t, v in points]
    noise = 1.4826 * statistics.median(abs(r) for r in residuals)
    if not all(math.isfinite(x) for x in (slope, level, noise)):
        return None
    return _Fit(slope=slope, level=level, span=span, noise=noise)


def _forecast(
    points: list[tuple[float, float]], limit: float | None, scale: float, flat_level: float
) -> Forecast:
    """Trend of `points` (larger = more used) towards `limit` (None: no limit)."""
    recent = _resample(_after_last_drop(points, scale))
    fit = _fit(recent)
    if fit is None:
        return Forecast(status="unknown", span_s=recent[-1][0] - recent[0][0] if recent else 0.0)
    last = statistics.median(v for _, v in recent[-3:])
    span = fit.span
    if limit is not None and limit - last <= AT_LIMIT_SHARE * scale:
        return Forecast("at_limit", fit.slope, 0.0, fit.level, span)
    trend = abs(fit.slope) * span
    if trend < max(FLAT_SHARE * abs(flat_level), FLAT_NOISE * fit.noise):
        return Forecast("stable", fit.slope, None, fit.level, span)
    if fit.slope < 0:
        return Forecast("shrinking", fit.slope, None, fit.level, span)
    if limit is None:
        return Forecast("growing", fit.slope, None, fit.level, span)
    seconds = max(limit - fit.level, 0.0) / fit.slope
    if seconds > HORIZON_S:
        return Forecast("stable", fit.slope, None, fit.level, span)
    return Forecast("growing", fit.slope, seconds, fit.level, span)


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
        A `Forecast`; status "unknown" with less than 10 s of usable data.
    """
    data = _clean(points, window_s)
    if not data:
        return Forecast(status="unknown")
    try:
        has_limit = math.isfinite(limit) and 0 < limit < 1e15
    except TypeError:
        has_limit = False
    peak = max(v for _, v in data)
    scale = float(limit) if has_limit else max(peak, 1.0)
    return _forecast(
        data, float(limit) if has_limit else None, scale, statistics.median(v for _, v in data)
    )


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
        total_bytes: MemTotal + SwapTotal if known (the scale for "a big jump" and "at limit");
            otherwise the highest availability seen.

    Returns:
        A `Forecast` of consumption: "growing" with `seconds_to_limit` = time until nothing is
        available; `slope_bytes_per_s` is the rate at which availability falls; `level_bytes`
        the fitted available bytes now.
    """
    data = _clean(points, window_s)
    if not data:
        return Forecast(status="unknown")
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
    result = _forecast(consumed, 0.0, scale, scale)
    level = None if result.level_bytes is None else -result.level_bytes
    return Forecast(
        result.status, result.slope_bytes_per_s, result.seconds_to_limit, level, result.span_s
    )

"""What the containers table's rows say and in which order: pure functions, no widget.

The order is worst first and stable: it reads the severity (a recent OOM kill, unhealthy, not
running) and the memory share in sticky bands, then the name and id, so rows that tie and
jitter never trade places under the cursor. The "To limit" cell shows a time only for a
significant trend with the limit in sight (see domain.forecast), otherwise what there is.
"""

from __future__ import annotations

import math

from incident_console.domain.forecast import MIN_SPAN_S, Forecast
from incident_console.monitor.state import ContainerView
from incident_console.ui import format as fmt

__all__ = [
    "OOM_MARK_S",
    "ORDER_BAND",
    "ORDER_MARGIN",
    "forecast_cell",
    "memory_band",
    "memory_share",
    "severity",
]

#: A kill this recent marks its row (and ranks it first).
OOM_MARK_S = 600


def forecast_cell(forecast: Forecast | None) -> str:
    """What the "To limit" cell says about a forecast, in at most 8 cells."""
    if forecast is None:
        return "-"  # no limit: nothing to reach
    if forecast.status == "too_little_data":
        return f"<{MIN_SPAN_S / 60:.0f}m data"  # a trend needs this much, since a drop
    if forecast.status == "at_limit":
        return "at limit"
    if forecast.status == "shrinking":
        return "falling"
    if forecast.status == "growing":
        if forecast.seconds_to_limit is not None:
            return fmt.duration(math.ceil(forecast.seconds_to_limit))
        # Growing, but the limit is beyond what the data can tell: a calm word, not a number
        # (">31m" reads as "31m" at a glance). diagnose gives the rate.
        return "not soon"
    return "stable"


#: The order reads memory in bands of this share of the limit ...
ORDER_BAND = 0.10
#: ... and a row changes band only once it is this far past the band's edge: two rows at 15%
#: that jitter by a percent keep their places (they used to swap every 2 s under the cursor).
ORDER_MARGIN = 0.025


def memory_share(view: ContainerView) -> float:
    """Used / limit of the newest sample (0 without a limit or a sample)."""
    latest = view.latest
    if latest and fmt.has_limit(latest.memory_limit_bytes):
        return latest.memory_used_bytes / latest.memory_limit_bytes
    return 0.0


def severity(view: ContainerView, now: float) -> int:
    """How bad a container is, worst highest: recent OOM (4), unhealthy (2), not running (1)."""
    rank = 0
    if view.last_oom is not None and now - view.last_oom < OOM_MARK_S:
        rank += 4
    if view.info.health == "unhealthy":
        rank += 2
    if view.info.state not in ("running", ""):
        rank += 1
    return rank


def memory_band(share: float, previous: int | None) -> int:
    """The band of `share`, sticky: it leaves `previous` only past the margin."""
    band = max(0, math.floor(share / ORDER_BAND))
    if previous is None or band == previous:
        return band
    low, high = previous * ORDER_BAND, (previous + 1) * ORDER_BAND
    if low - ORDER_MARGIN <= share < high + ORDER_MARGIN:
        return previous
    return band

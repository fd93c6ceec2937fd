"""What the containers table's rows say, how wide its columns are and in which order the rows
come: pure functions, no widget.

The order is worst first and stable: it reads the severity (a recent OOM kill, unhealthy, not
running) and the memory share in sticky bands, then the name and id, so rows that tie and
jitter never trade places under the cursor. The "To limit" cell shows a time only for a
significant trend with the limit in sight (see domain.forecast), otherwise what there is.
"""

from __future__ import annotations

import math

from rich.cells import cell_len

from incident_console.domain.forecast import MIN_SPAN_S, Forecast
from incident_console.monitor.state import ContainerView
from incident_console.ui import format as fmt

__all__ = [
    "COLUMNS",
    "COLUMN_INDEX",
    "DATA_COLUMNS",
    "MAX_DATA_WIDTH",
    "OOM_MARK_S",
    "ROW_WIDTH",
    "SPARK_COLUMN",
    "SPARK_WIDTH",
    "column_widths",
    "ORDER_BAND",
    "ORDER_MARGIN",
    "forecast_cell",
    "memory_band",
    "memory_share",
    "severity",
]

#: Samples in a row's sparkline.
SPARK_WIDTH = 10

#: (key, label, width): fixed widths, so a row never jumps as its numbers change; the name
#: and service columns are as wide as their longest entry (these are their least widths).
COLUMNS = (
    ("oom", "!", 4),  # "OOM" killed lately, "↑" grew most before a shared or host-wide kill
    ("name", "Container", 9),
    ("service", "Service", 7),
    ("state", "State", 10),  # "restarting"
    ("health", "Health", 9),
    ("spark", "Memory", SPARK_WIDTH),
    ("used", "Used/Limit", 11),
    ("pct", "%", 4),
    ("ttl", "To limit", 8),
    ("cpu", "CPU", 4),
    ("restarts", "Restarts", 10),  # "12 (140oom)"
)
#: After a Used/Limit figure that is a parent cgroup's limit, shared by a group of containers.
SHARED_MARK = "*"
COLUMN_INDEX = {key: index for index, (key, _, _) in enumerate(COLUMNS)}
#: A cell is its width plus one space each side.
ROW_WIDTH = sum(width + 2 for _, _, width in COLUMNS)
#: The columns sized from the data, and the most they take (a name past this is elided).
DATA_COLUMNS = ("name", "service")
MAX_DATA_WIDTH = {"name": 48, "service": 20}
SPARK_COLUMN = COLUMN_INDEX["spark"]


def column_widths(names: list[str], services: list[str], room: int) -> tuple[int, ...]:
    """Every column's width: the fixed ones, the name and service as wide as their longest
    entry (at most MAX_DATA_WIDTH), the name narrowed to fit `room` cells if need be (0: no
    limit known yet)."""
    base = {key: width for key, _, width in COLUMNS}
    longest = {"name": names, "service": services}
    for key in DATA_COLUMNS:
        widest = max((cell_len(value) for value in longest[key]), default=0)
        base[key] = max(base[key], min(widest, MAX_DATA_WIDTH[key]))
    if room > 0:
        over = sum(width + 2 for width in base.values()) - room
        if over > 0:
            floor = {key: width for key, _, width in COLUMNS}
            base["name"] = max(floor["name"] + 3, base["name"] - over)  # 12: still readable
    return tuple(base[key] for key, _, _ in COLUMNS)


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

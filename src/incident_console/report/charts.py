"""Memory charts for the postmortem, drawn by plotext as plain text (no colour codes).

Each chart is its own plotext figure object (never the module's global figure), with a fixed
size, so the text depends on the data alone and the same journal draws the same chart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from plotext._figure import _figure_class as Figure

from incident_console.domain.durations import format_bytes

#: Fixed so the text never depends on the terminal the report was made in.
CHART_WIDTH = 78
CHART_HEIGHT = 16
MIB = 1024 * 1024

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def memory_chart(
    series: Mapping[str, Sequence[tuple[float, int, int]]],
    origin: float,
) -> str:
    """A memory-over-time chart: one line per service, its limit as a horizontal line.

    Args:
        series: per service, samples of (epoch time, used bytes, limit bytes or 0).
        origin: the epoch time shown as minute 0, the same for every chart so they align.

    Returns:
        The chart as text lines without colour codes, or '' when there is nothing to draw.
    """
    series = {name: points for name, points in series.items() if points}
    if not series:
        return ""
    figure = Figure()
    figure.plotsize(CHART_WIDTH, CHART_HEIGHT)
    figure.theme("clear")
    limits: set[int] = set()
    for name in sorted(series):
        points = series[name]
        xs = [round((t - origin) / 60.0, 3) for t, _, _ in points]
        ys = [round(used / MIB, 1) for _, used, _ in points]
        if len(xs) == 1:  # plotext draws no line through one point: show it as a dot
            figure.scatter(xs, ys, label=name, marker="dot")
        else:
            figure.plot(xs, ys, label=name, marker="braille")
        limits.update(limit for _, _, limit in points if limit)
    for limit in sorted(limits):
        figure.hline(round(limit / MIB, 1))
    figure.xlabel("minutes")
    figure.ylabel("MiB")
    text = _ANSI.sub("", figure.build())
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    legend = ", ".join(format_bytes(limit) for limit in sorted(limits))
    if legend:
        lines.append(f"(horizontal line: memory limit {legend})")
    return "\n".join(lines)

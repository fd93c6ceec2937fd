"""How numbers and world-supplied text become cells: sizes, durations, sparklines, clean text.

Text from the world (container names, log lines, probe bodies, env) is cleaned of escapes and
control characters and put in ``Content``/``Text`` built from plain text, never parsed as
markup: ``[bold red]x[/]`` shows as typed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

from rich.cells import cell_len
from textual.content import Content
from textual.widgets import Static

from incident_console.domain.memory import is_limit
from incident_console.domain.text import MAX_LINE, sanitize

# CSI, OSC, and other ESC sequences, then any C0/C1 control left (tab kept).
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)

BLOCKS = "▁▂▃▄▅▆▇█"
PLAIN = "_.-:=+*#"


def clean(text: str) -> str:
    """`text` without terminal escape sequences or control characters."""
    # The domain sanitizer knows every escape sequence; the regex is a second net for the
    # newline it keeps (a cell or a log row is one line). Printable ASCII has none of that.
    if text.isascii() and text.isprintable() and len(text) <= MAX_LINE:
        return text
    return _ESCAPES.sub("", sanitize(text)).replace("\n", " ")


def clean_lines(text: str) -> list[str]:
    """`text` cut into its lines, each cleaned as :func:`clean` cleans one line."""
    return [clean(line) for line in text.splitlines()]


def elide_middle(text: str, width: int) -> str:
    """`text` in at most `width` cells, cut in the middle: both ends of a name say most
    ("icbench…_frontend_1": the project and the service's number)."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = (width - 1) // 2
    tail = width - 1 - head
    return text[:head] + "…" + text[len(text) - tail :]


def size(n: int | float | None) -> str:
    """Bytes in the short form `docker stats` uses: 412M, 1.5G."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "K", "M", "G", "T"):
        if abs(value) < 1024 or unit == "T":
            if unit in ("B", "K", "M"):
                return f"{value:.0f}{unit}"
            return f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}T"  # pragma: no cover


def duration(seconds: float | None) -> str:
    """A short duration: 45s, 12m, 3h05m, 2d."""
    if seconds is None:
        return "-"
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s" if s < 600 else f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600}h"


def clock(epoch: float) -> str:
    """hh:mm:ss in local time."""
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def has_limit(limit: int) -> bool:
    """Docker reports 'no limit' as 0 or as a huge number: domain/memory.py says which."""
    return is_limit(limit)


def sparkline(values: Sequence[float], width: int, top: float, glyphs: str = BLOCKS) -> str:
    """A one-line sparkline of the last `width` values, scaled to `top` (the limit)."""
    if not values or width <= 0:
        return ""
    recent = list(values)[-width:]
    scale = top if top > 0 else max(recent) or 1
    last = len(glyphs) - 1
    return "".join(glyphs[min(last, max(0, int(v / scale * last + 0.5)))] for v in recent)


def update_static(widget: Static, content: Content) -> None:
    """`widget.update(content)` unless it already shows exactly that (text and styles).

    An update repaints the widget; the panes are redrawn up to 10 times a second while log
    lines stream in, mostly with nothing new to show. It lays the whole screen out again only
    when the widget's height can have changed: its height is ``auto`` and it has a different
    number of lines, or a line that wraps (the host pane's numbers change every second, its
    shape almost never).
    """
    key = (content.plain, tuple(content.spans))
    if getattr(widget, "_shown_key", None) == key:
        return
    widget._shown_key = key  # type: ignore[attr-defined]
    lines = content.plain.split("\n")
    width = widget.content_region.width
    wraps = width <= 0 or any(cell_len(line) > width for line in lines)
    shape = (len(lines), wraps)
    layout = bool(widget.styles.height is None or widget.styles.height.is_auto) and (
        wraps or getattr(widget, "_shown_shape", None) != shape
    )
    widget._shown_shape = shape  # type: ignore[attr-defined]
    widget.update(content, layout=layout)

"""What the console pops up: OOM kills folded per container, long paths broken at '/'.

A burst of kills of one container used to stack a toast per kill over the screen; here the
kills of one container within :data:`FOLD_S` replace each other's toast with one that counts
them ("3 OOM kills of backend in 20 s"). Toasts are narrow (the Host pane's width, where the
app's CSS puts them): a path is broken at its slashes, never inside a name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from textual.app import App
from textual.notifications import Notification, Notify

from incident_console.domain.durations import format_duration
from incident_console.domain.events import OomKill
from incident_console.domain.oom_scope import scope_tag
from incident_console.ui import format as fmt

#: Kills of one container this close together (by the kernel's stamps) share one toast.
FOLD_S = 60.0
#: At most this many containers of one host have a toast of their own at once.
MAX_KILL_TOASTS = 2
#: The key of the toast that gathers the other containers' kills.
OTHERS = "\x00others"
#: How long a kill's toast stays.
KILL_TOAST_S = 15.0
#: The text width inside a toast (the Toast CSS width in app.tcss less its padding and edge).
TOAST_TEXT_WIDTH = 44


def break_path(text: str, width: int = TOAST_TEXT_WIDTH) -> str:
    """`text` with every word longer than `width` broken after a '/' (a path), so that a
    toast wraps it between directories rather than in the middle of a name."""
    out: list[str] = []
    for word in text.split(" "):
        if len(word) <= width or "/" not in word:
            out.append(word)
            continue
        lines = [""]
        for part in re.findall(r"[^/]*/|[^/]+$", word):
            if lines[-1] and len(lines[-1]) + len(part) > width:
                lines.append("")
            lines[-1] += part
        out.append("\n".join(lines))
    return " ".join(out)


@dataclass
class _Burst:
    first: float
    last: float
    count: int
    notification: Notification | None = field(default=None)
    names: list[str] = field(default_factory=list)


class KillToasts:
    """The app's toasts for live OOM kills, one per container and burst."""

    def __init__(self, app: App[Any]) -> None:
        self.app = app
        self._bursts: dict[tuple[str, str], _Burst] = {}

    def show(self, host: str, who: str, about: str, kill: OomKill, also: str = "") -> str:
        """Pop up `kill` (or fold it into its container's toast); returns the message.

        Past MAX_KILL_TOASTS containers with a toast up on one host (an engine where several
        stacks are being killed), the others' kills share one toast for the host: the stack
        of toasts would otherwise grow down over the Logs pane. `also` is one more line for
        the container's toast (the likely leak of its service).
        """
        key = (host, who)
        burst = self._bursts.get(key)
        if burst is None or kill.time - burst.first > FOLD_S:
            shown = [
                b
                for (h, w), b in self._bursts.items()
                if h == host
                and w != OTHERS
                and b.notification is not None
                and b.notification in self.app._notifications
            ]
            if len(shown) >= MAX_KILL_TOASTS:
                key = (host, OTHERS)
                burst = self._bursts.get(key)
        if burst is not None and kill.time - burst.first <= FOLD_S:
            burst.count += 1
            burst.last = max(burst.last, kill.time)
            old = burst.notification
            # Textual has no public call to take one toast down; the app's own is this one.
            if old is not None and old in self.app._notifications:
                self.app._unnotify(old)
        else:
            burst = _Burst(first=kill.time, last=kill.time, count=1)
            self._bursts[key] = burst
        if who not in burst.names:
            burst.names.append(who)
        if key[1] == OTHERS:
            message = others_message(host, burst.names, burst.count, burst.last - burst.first)
        else:
            message = kill_message(host, who, about, kill, burst.count, burst.last - burst.first)
            if also:
                message += f"\n{also}"
        title = "OOM kill" if burst.count == 1 else f"{burst.count} OOM kills"
        notification = Notification(message, title, "error", KILL_TOAST_S, markup=False)
        burst.notification = notification
        # Added now, not posted: the next kill of the burst is often handled before a posted
        # Notify would be, and could not take down a toast that is not up yet.
        self.app._on_notify(Notify(notification))
        return message


def others_message(host: str, names: list[str], count: int, span_s: float) -> str:
    """The toast of the kills beyond MAX_KILL_TOASTS containers: how many, of which."""
    which = ", ".join(fmt.clean(n) for n in names[:3]) + (" ..." if len(names) > 3 else "")
    during = f" in {format_duration(span_s)}" if count > 1 else ""
    return f"{fmt.clean(host)}: {count} more OOM kill{'s' if count > 1 else ''}{during}: {which}"


def kill_message(
    host: str, who: str, about: str, kill: OomKill, count: int = 1, span_s: float = 0.0
) -> str:
    """A toast's words for a kill, or for the `count` kills of one container in `span_s`."""
    last = (
        f"{fmt.clean(kill.process)} pid {kill.pid} rss {fmt.size(kill.anon_rss_bytes)}"
        if kill.pid
        else f"{fmt.clean(kill.process)} (pid unknown)"
    )
    where = f"[{scope_tag(kill)}]"
    name = f"{fmt.clean(who)} ({fmt.clean(about)})"
    if count == 1:
        return f"{fmt.clean(host)}: {name} {last} {where}"
    return (
        f"{fmt.clean(host)}: {count} OOM kills of {name} in {format_duration(span_s)}"
        f" {where}\nlast: {last}"
    )

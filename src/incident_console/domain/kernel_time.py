"""Split the timestamp prefix off a kernel log line, whatever printed it.

Handled prefixes (each optional, none required):

- ``dmesg``: ``[  363.560209] text`` (seconds since boot; with a ``[ T123]`` caller id too)
- ``dmesg -r``: ``<4>[  363.560209] text``; ``dmesg -x``: ``kern  :err   : [  363.5] text``
- ``dmesg --time-format iso``: ``2026-11-30T15:07:16,560209+00:00 text``
- ``dmesg -T``: ``[Thu Nov  6 12:19:15 2025] text`` (read as UTC: the server's zone is unknown)
- ``/dev/kmsg``: ``6,339,1262558,-;text`` (microseconds since boot)
- ``journalctl -k -o short-iso|short-iso-precise``: ``2026-11-30T15:07:16+0000 host kernel: text``
- ``journalctl -k -o short-unix``: ``1796051236.560209 host kernel: text``
- ``journalctl -k`` (short, short-precise) and syslog: ``Nov 30 15:07:16[.123456] host kernel:
  text`` (no year: the time is unknown unless the caller says the year), often with dmesg's
  own ``[ 514.68] `` inside: with the boot time known, that stamp gives the time
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

__all__ = ["KernelClock", "split_dmesg_line"]

_F = re.ASCII
_PRIORITY = re.compile(r"<\d{1,3}>")
_DECODED = re.compile(r"[a-z]{2,8} *:[a-z]{2,8} *: ")
_MONOTONIC = re.compile(r"\[ *(?P<secs>\d{1,12}(?:\.\d{1,9})?)\]")
_CALLER = re.compile(r" ?\[ *[TC]\d{1,9}\]")
_CTIME = re.compile(r"\[(?P<stamp>[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4})\]")
_ISO = re.compile(
    r"(?P<stamp>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?)(?= |$)"
)
_UNIX = re.compile(r"(?P<secs>\d{9,11}\.\d{1,9})(?= )")
_SYSLOG = re.compile(r"(?P<stamp>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)(?P<frac>\.\d{1,9})?(?= )")
# A bare "kernel: " (syslog lines pasted without their stamp and host).
_BARE_KERNEL = re.compile(r"kernel: ")
_KMSG = re.compile(r"\d{1,3},\d{1,20},(?P<usec>\d{1,20}),[^;]{0,16};")
# journalctl adds "<hostname> kernel: "; dmesg never does.
_JOURNAL_ID = re.compile(r" *\S{1,255} kernel: ")


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _since_boot(seconds: float, boot_time: float | None) -> float | None:
    if boot_time is None:
        return None
    try:
        return _finite(float(boot_time) + seconds)
    except (TypeError, ValueError, OverflowError):
        return None


def _iso_time(stamp: str) -> float | None:
    # Python parses "," fractions but only up to 6 digits: trim nanoseconds.
    match = re.match(r"([^.,]*)(?:[.,](\d+))?(.*)", stamp)
    if match is None:  # pragma: no cover - the pattern always matches
        return None
    head, frac, zone = match.groups()
    text = head + ("." + frac[:6].ljust(6, "0") if frac else "") + zone
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return _finite(parsed.timestamp())
    except (ValueError, OverflowError, OSError):
        return None


def _strip_journal_id(rest: str) -> str:
    return _split_journal_id(rest)[1]


def _split_journal_id(rest: str) -> tuple[float | None, str]:
    """(dmesg's inner since-boot stamp or None, the message) of what follows a stamp."""
    match = _JOURNAL_ID.match(rest)
    if match is None:
        return None, rest.lstrip(" ")
    rest = rest[match.end() :]
    # Syslog and some journald setups keep dmesg's own "[ 123.4] " inside the message.
    inner = _MONOTONIC.match(rest)
    if inner is None:
        return None, rest.lstrip(" ")
    rest = rest[inner.end() :]
    if c := _CALLER.match(rest):
        rest = rest[c.end() :]
    return float(inner["secs"]), rest.lstrip(" ")


def _syslog_time(stamp: str, frac: str | None, year: int | None) -> float | None:
    if year is None:
        return None
    try:
        parsed = datetime.strptime(f"{year} {stamp}", "%Y %b %d %H:%M:%S").replace(tzinfo=UTC)
        return _finite(parsed.timestamp() + (float(frac) if frac else 0.0))
    except (ValueError, OverflowError, OSError):
        return None


def split_dmesg_line(
    line: str, boot_time: float | None, year: int | None = None
) -> tuple[float | None, str]:
    """Split a kernel log line into (epoch seconds or None, message text). Never raises.

    Args:
        line: One line as printed by dmesg, journalctl -k or read from /dev/kmsg.
        boot_time: The host's boot time in epoch seconds (``btime`` of /proc/stat), used for
            since-boot stamps; None leaves those times unknown.
        year: The year of yearless syslog / journalctl short stamps (read as UTC); None
            leaves them unknown, unless dmesg's inner stamp and `boot_time` give the time.

    Returns:
        The time (None when the line has none, or it cannot be turned into epoch seconds) and
        the message without any prefix.
    """
    if not isinstance(line, str):
        return None, ""
    text = line.rstrip("\r\n")
    if m := _KMSG.match(text):
        return _since_boot(int(m["usec"]) / 1e6, boot_time), text[m.end() :]
    if m := _PRIORITY.match(text):
        text = text[m.end() :]
    if m := _DECODED.match(text):
        text = text[m.end() :]
    if m := _MONOTONIC.match(text):
        rest = text[m.end() :]
        if c := _CALLER.match(rest):
            rest = rest[c.end() :]
        return _since_boot(float(m["secs"]), boot_time), rest.lstrip(" ")
    if m := _CTIME.match(text):
        try:
            parsed = datetime.strptime(m["stamp"], "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC)
            stamp: float | None = _finite(parsed.timestamp())
        except (ValueError, OverflowError, OSError):
            stamp = None
        return stamp, text[m.end() :].lstrip(" ")
    if m := _ISO.match(text):
        return _iso_time(m["stamp"]), _strip_journal_id(text[m.end() :])
    if m := _UNIX.match(text):
        return _finite(float(m["secs"])), _strip_journal_id(text[m.end() :])
    if m := _SYSLOG.match(text):
        inner, rest = _split_journal_id(text[m.end() :])
        if inner is not None and boot_time is not None:
            return _since_boot(inner, boot_time), rest
        return _syslog_time(m["stamp"], m["frac"], year), rest
    if m := _BARE_KERNEL.match(text):
        return None, text[m.end() :]
    return None, text


class KernelClock:
    """Kernel log stamps against the wall clock: which lines are live, and the kernel's drift.

    `dmesg` turns the kernel's own clock into wall time from the boot time, and the two drift
    apart as the machine runs (measured here: 0.8 s behind after an hour). So a stamp cannot
    tell a kill that just happened from one printed a second before the console started.
    What can: `dmesg --follow` and `journalctl -f` print their history in one burst, then wait.
    The first pause after the first line (or a quiet stream) ends the replay; every later
    line arrived as it was printed, so its arrival time minus its stamp measures the drift
    (plus a little latency: the smallest of the recent ones is kept), and every later stamp is
    corrected by it. A kill is live when its corrected time is after the replay's last line.
    """

    #: The replay is printed without a pause; a pause this long means the history is done.
    QUIET_S = 0.5
    #: A line this much older than its arrival is history, not a live line that drifted.
    MAX_DRIFT_S = 30.0
    #: How many recent live lines the drift estimate is the minimum of (drift moves slowly).
    WINDOW = 64

    def __init__(self, started: float) -> None:
        self.offset: float | None = None
        #: Arrival of the replay's last line (None while the replay goes on).
        self.replay_end: float | None = None
        self._started = started
        self._last_arrival: float | None = None
        self._lags: list[float] = []

    @property
    def live(self) -> bool:
        """True once the history is replayed: lines arrive as the kernel prints them."""
        return self.replay_end is not None

    def tick(self, now: float) -> None:
        """Nothing arrived for a while: the replay, if any, is over."""
        last = self._last_arrival if self._last_arrival is not None else self._started
        if not self.live and now - last >= self.QUIET_S:
            self.replay_end = last

    def observe(self, stamp: float | None, arrival: float) -> float:
        """The wall time of a line stamped `stamp` that arrived at `arrival`."""
        last = self._last_arrival
        if not self.live and last is not None and arrival - last >= self.QUIET_S:
            self.replay_end = last
        self._last_arrival = arrival
        if stamp is None:
            return arrival
        if self.live and arrival - stamp > self.MAX_DRIFT_S:
            # Far older than any drift: the replay had only paused (a slow link). Not live.
            self.replay_end = None
        elif self.live:
            self._lags.append(arrival - stamp)
            del self._lags[: -self.WINDOW]
            self.offset = min(self._lags)
        return stamp + (self.offset or 0.0)

    def is_live(self, when: float) -> bool:
        """True when something the kernel printed at wall time `when` was seen live."""
        return self.replay_end is not None and when > self.replay_end

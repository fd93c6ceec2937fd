"""A bounded load generator for the lab: concurrent GETs from this machine, loopback only.

Each of `concurrency` threads fires on a shared tick, so every tick sends a burst of concurrent
requests: gunicorn's sync workers each take one, and the burst spreads over all workers (the
memory then grows in every worker, as in the seed's incident, not in one).
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(slots=True)
class LoadStats:
    """What the load did so far.

    Attributes:
        elapsed_s: seconds since the load started.
        sent: requests sent.
        outcomes: count per outcome: an HTTP status ('200', '502') or an error kind ('timeout').
        in_flight: requests sent and not answered yet.
    """

    elapsed_s: float = 0.0
    sent: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0

    @property
    def ok(self) -> int:
        """Requests answered 2xx."""
        return sum(n for k, n in self.outcomes.items() if k.startswith("2"))

    @property
    def failed(self) -> int:
        """Requests not answered 2xx."""
        return self.sent - self.ok - self.in_flight

    def describe(self) -> str:
        """One progress line: 't=12s sent=48 ok=46 failed=2 (502:2)'."""
        bad = ", ".join(
            f"{k}:{n}" for k, n in sorted(self.outcomes.items()) if not k.startswith("2")
        )
        tail = f" ({bad})" if bad else ""
        return f"t={self.elapsed_s:.0f}s sent={self.sent} ok={self.ok} failed={self.failed}{tail}"


def _outcome(url: str, timeout: float) -> str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            resp.read()
            return str(resp.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)
    except TimeoutError:
        return "timeout"
    except urllib.error.URLError as exc:
        return "timeout" if isinstance(exc.reason, TimeoutError) else "refused"
    except OSError:
        return "error"


def run_load(
    url: str,
    duration_s: float,
    rate: float,
    concurrency: int,
    progress: Callable[[LoadStats], None] | None = None,
    stop: threading.Event | None = None,
    request_timeout_s: float = 20.0,
) -> LoadStats:
    """Send GET `url` about `rate` times a second for `duration_s` seconds, then stop.

    Args:
        url: a loopback URL (anything else is refused: the lab never loads a real server).
        duration_s: how long to run.
        rate: requests per second over all threads.
        concurrency: threads (bursts of this many concurrent requests).
        progress: called about once a second with a snapshot, from the calling thread.
        stop: set it to end the load early.
        request_timeout_s: per-request timeout.

    Returns:
        The final stats.

    Raises:
        ValueError: the URL is not loopback, or rate/concurrency are not positive.
    """
    if urlsplit(url).hostname not in _LOOPBACK:
        raise ValueError(f"lab load only targets loopback URLs, not {url}")
    if rate <= 0 or concurrency <= 0 or duration_s <= 0:
        raise ValueError("lab load needs a positive duration, rate and concurrency")
    stop = stop or threading.Event()
    stats = LoadStats()
    lock = threading.Lock()
    period = concurrency / rate
    t0 = time.monotonic()
    deadline = t0 + duration_s

    def worker() -> None:
        tick = 0
        while not stop.is_set():
            due = t0 + tick * period
            if due >= deadline:
                return
            if stop.wait(max(0.0, due - time.monotonic())):
                return
            with lock:
                stats.sent += 1
                stats.in_flight += 1
            outcome = _outcome(url, request_timeout_s)
            with lock:
                stats.in_flight -= 1
                stats.outcomes[outcome] += 1
            # A slow answer skips the ticks it missed: the load stays bounded.
            tick = max(tick + 1, int((time.monotonic() - t0) / period) + 1)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    try:
        next_report = t0 + 1.0
        while any(t.is_alive() for t in threads):
            time.sleep(0.1)
            if progress is not None and time.monotonic() >= next_report:
                next_report += 1.0
                progress(_snapshot(stats, lock, t0))
    finally:
        stop.set()
        for t in threads:
            t.join()
    return _snapshot(stats, lock, t0)


def _snapshot(stats: LoadStats, lock: threading.Lock, t0: float) -> LoadStats:
    with lock:
        return LoadStats(
            elapsed_s=time.monotonic() - t0,
            sent=stats.sent,
            outcomes=Counter(stats.outcomes),
            in_flight=stats.in_flight,
        )

"""A bounded load generator for the lab: concurrent GETs from this machine, loopback only.

Each of `concurrency` threads fires on a shared tick, so every tick sends a burst of concurrent
requests: gunicorn's sync workers each take one, and the burst spreads over all workers (the
memory then grows in every worker, as in the seed's incident, not in one).
"""

from __future__ import annotations

import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True, slots=True)
class LabRoute:
    """One route of the lab's backend and what a request of it really keeps.

    Attributes:
        name: the short name a mix uses ('items').
        route: the route as the console names it ('GET /api/v1/users/{id}').
        keeps: what one request keeps in its worker, in units of the lab's leak size
            (LAB_LEAK_KIB): the backend's own KEEPS table (stack/app.py.txt) says the same.
    """

    name: str
    route: str
    keeps: float

    def keeps_kib(self, leak_kib: int) -> float:
        """KiB one request keeps with the lab's leak size `leak_kib`."""
        return self.keeps * leak_kib

    def path(self, rng: random.Random) -> str:
        """A request path of this route (a fresh id or uuid where the route has one)."""
        path = self.route.split(" ", 1)[1]
        path = path.replace("{id}", str(rng.randint(1, 99_999)))
        return path.replace("{uuid}", str(uuid.UUID(int=rng.getrandbits(128), version=4)))


#: The backend's routes (the truth the leak estimate is checked against).
LAB_ROUTES: tuple[LabRoute, ...] = (
    LabRoute("items", "GET /api/v1/items", 1.0),
    LabRoute("reports", "GET /api/v1/reports/{uuid}", 4.0),
    LabRoute("users", "GET /api/v1/users/{id}", 0.25),
    LabRoute("orders", "GET /api/v1/orders", 0.0),
    LabRoute("health", "GET /api/v1/health", 0.0),
)
#: Named mixes for `lab load --mix`: route name -> weight.
MIXES: dict[str, dict[str, float]] = {
    # The incident as it always was: only the leaking endpoint.
    "items": {"items": 1.0},
    # A busy route that keeps nothing, a rare one that keeps a lot, one that keeps a little.
    "mixed": {"orders": 55.0, "items": 25.0, "users": 15.0, "reports": 3.0, "health": 2.0},
}


def parse_mix(text: str) -> list[tuple[LabRoute, float]]:
    """'mixed', or 'orders=55,items=25': the routes to load and their weights.

    Raises:
        ValueError: an unknown mix or route, or a weight that is not a positive number.
    """
    routes = {r.name: r for r in LAB_ROUTES}
    if text in MIXES:
        weights = MIXES[text]
    else:
        weights = {}
        for part in text.split(","):
            name, sep, value = part.strip().partition("=")
            if not sep:
                raise ValueError(
                    f"bad mix {text!r}: use {' or '.join(MIXES)}, or name=weight,... "
                    f"with names {', '.join(routes)}"
                )
            try:
                weights[name.strip()] = float(value)
            except ValueError:
                raise ValueError(f"bad weight in mix: {part.strip()!r}") from None
    out = []
    for name, weight in weights.items():
        if name not in routes:
            raise ValueError(f"no lab route {name!r} (routes: {', '.join(routes)})")
        if not weight > 0:
            raise ValueError(f"mix weight of {name} must be positive, not {weight:g}")
        out.append((routes[name], weight))
    return out


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
    #: Requests sent per lab route name (a mixed load).
    routes: Counter[str] = field(default_factory=Counter)

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
    mix: Sequence[tuple[LabRoute, float]] = (),
    leak: bool = True,
    seed: int = 0,
) -> LoadStats:
    """Send GET `url` about `rate` times a second for `duration_s` seconds, then stop.

    With a `mix`, `url` is the base (the frontend's root) and each request goes to one of the
    mix's routes, drawn by weight.

    Args:
        url: a loopback URL (anything else is refused: the lab never loads a real server).
        duration_s: how long to run.
        rate: requests per second over all threads.
        concurrency: threads (bursts of this many concurrent requests).
        progress: called about once a second with a snapshot, from the calling thread.
        stop: set it to end the load early.
        request_timeout_s: per-request timeout.
        mix: routes and their weights (empty: `url` itself, every time).
        leak: False adds `lab_leak=off` to every request: the backend then keeps nothing.
        seed: the draws' seed (a load is the same load when run again).

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

    base = url.rstrip("/")
    names = [route.name for route, _w in mix]
    weights = [w for _r, w in mix]

    def pick(rng: random.Random) -> tuple[str, str]:
        if not mix:
            target = url
            name = ""
        else:
            route = mix[names.index(rng.choices(names, weights)[0])][0]
            target, name = base + route.path(rng), route.name
        if not leak:
            target += ("&" if "?" in target else "?") + "lab_leak=off"
        return target, name

    def worker(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        tick = 0
        while not stop.is_set():
            due = t0 + tick * period
            if due >= deadline:
                return
            if stop.wait(max(0.0, due - time.monotonic())):
                return
            target, name = pick(rng)
            with lock:
                stats.sent += 1
                stats.in_flight += 1
                if name:
                    stats.routes[name] += 1
            outcome = _outcome(target, request_timeout_s)
            with lock:
                stats.in_flight -= 1
                stats.outcomes[outcome] += 1
            # A slow answer skips the ticks it missed: the load stays bounded.
            tick = max(tick + 1, int((time.monotonic() - t0) / period) + 1)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
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
            routes=Counter(stats.routes),
        )

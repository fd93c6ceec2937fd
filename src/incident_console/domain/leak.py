"""Which request leaks: memory kept per request for each route, from RSS samples and requests.

Pure, no I/O. The inputs are what the console already has: each worker's RSS every few seconds
(a *unit*: one worker pid, or a whole container when its log names no worker) and the
requests its access log shows, each with the unit that served it and its route.

The model, per interval of one unit (consecutive samples at least `min_interval_s` apart):

    growth = b0 * seconds + sum over routes r of  b_r * requests_r

with b_r >= 0 (a request cannot keep less than nothing) and b0 free: growth that no request
explains (a cache filling with time, or memory given back). It is fitted by non-negative least
squares (:mod:`incident_console.domain.nnls`) over every interval in the window. A drop of the
RSS (a worker recycled, or killed and replaced under the same key) ends one stretch and starts
another: the interval across it is left out, since its memory went back.

A worker's first requests of a route raise its RSS once and for all without keeping anything:
glibc raises its mmap threshold when a large block is freed, so the next block of that size
comes from the heap, whose top it then keeps (measured here: a worker freeing 1 MiB and 4 MiB
blocks grew 1 MiB at its second 1 MiB request and 3 MiB at its second 4 MiB one, then never
again). Each unit's first WARM_UP_REQUESTS of each route are therefore a column of their own
(non-negative, never named): a high-water mark that is not a leak must not be read as one,
and a route is named only on what its later requests keep.

Per route the result is the estimate, its standard error (from the residuals, over the
routes the fit kept) and the requests it rests on. A route is *named* only when its estimate
is well above its error and above `MIN_BYTES_PER_REQUEST`, it rests on enough requests, and
the fit explains the growth (R^2). Otherwise the answer is "not enough data", or "no route
keeps memory measurably", never a number that is noise.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import operator
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from incident_console.domain.durations import format_bytes, format_duration
from incident_console.domain.nnls import inverse_diagonal, nnls_gram

__all__ = [
    "LeakReport",
    "leak_followup",
    "Request",
    "RouteEstimate",
    "estimate_leaks",
]

#: Intervals shorter than this are merged with the next samples (log stamps and samples are
#: never exactly aligned; over a short interval a request counted on the wrong side of a
#: sample is a large error, over 15 s a small one).
MIN_INTERVAL_S = 15.0
#: Fewer intervals than this, or a window shorter than MIN_WINDOW_S: not enough data.
MIN_INTERVALS = 8
MIN_WINDOW_S = 60.0
#: A route is named only with this many requests behind it.
MIN_ROUTE_REQUESTS = 5
#: ... and an estimate this many standard errors above zero ...
MIN_SIGMAS = 3.0
#: ... and at least this much a request (below it, recycling gives back nothing worth it).
MIN_BYTES_PER_REQUEST = 32 * 1024
#: The fit must explain this share of the growth's variance before any route is named.
MIN_R2 = 0.5
#: An RSS fall of more than this share, or more than DROP_BYTES, is a recycle or a kill.
DROP_SHARE = 0.2
DROP_BYTES = 32 * 1024 * 1024
#: A unit's first requests of each route: their growth is the allocator's warm-up (see the
#: module docstring), fitted apart from what the route keeps per request.
WARM_UP_REQUESTS = 2


class Request(NamedTuple):
    """One request served (a tuple: a 30-minute window holds tens of thousands).

    Attributes:
        time: epoch seconds it was logged (the response was sent: what it kept is kept).
        unit: the key of the worker (or container) that served it, as in the samples.
        route: 'GET /api/v1/items'.
    """

    time: float
    unit: str
    route: str


@dataclass(frozen=True, slots=True)
class RouteEstimate:
    """What one route keeps.

    Attributes:
        route: 'GET /api/v1/items'.
        requests: requests of it inside the fitted intervals (its warm-up ones included).
        bytes_per_request: the fit's figure (0.0: the fit found nothing).
        stderr_bytes: its standard error.
        share: its part of the growth the fit explains (0..1).
        named: True when it is reported as keeping memory (see the module docstring).
    """

    route: str
    requests: int
    bytes_per_request: float
    stderr_bytes: float
    share: float
    named: bool

    def describe(self) -> str:
        """'GET /api/v1/items ~1.0 MiB/request (±12 KiB, 412 requests)'."""
        return (
            f"{self.route} ~{format_bytes(round(self.bytes_per_request))}/request "
            f"(±{format_bytes(round(self.stderr_bytes))}, {self.requests} requests)"
        )

    def to_json(self) -> dict[str, Any]:
        """The route's entry in `diagnose --json`."""
        return {
            "route": self.route,
            "requests": self.requests,
            "bytes_per_request": round(self.bytes_per_request),
            "stderr_bytes": round(self.stderr_bytes),
            "share": round(self.share, 4),
            "named": self.named,
        }


@dataclass(frozen=True, slots=True)
class LeakReport:
    """The estimator's answer for one service (container).

    Attributes:
        status: 'leak' (routes named), 'none' (no route keeps memory measurably) or
            'not_enough_data'.
        reason: one line: why not enough data, or what the fit rests on.
        routes: every route seen, worst first (named ones by their share of the growth); of a
            route with only warm-up requests, what they grew by (never named).
        intercept_bytes_per_s: growth no request explains, per second of a unit.
        r2: the fit's R^2 (0 when there was no fit).
        intervals: intervals fitted.
        requests: requests inside them.
        window_s: seconds from the first fitted interval's start to the last one's end.
        units: 'worker pid' or 'container': what the growth was measured on.
    """

    status: str
    reason: str
    routes: tuple[RouteEstimate, ...] = ()
    intercept_bytes_per_s: float = 0.0
    r2: float = 0.0
    intervals: int = 0
    requests: int = 0
    window_s: float = 0.0
    units: str = ""
    log_format: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def named(self) -> tuple[RouteEstimate, ...]:
        """The routes named as keeping memory, worst first."""
        return tuple(r for r in self.routes if r.named)

    @property
    def worst(self) -> RouteEstimate | None:
        """The likely leak: the named route with the largest share of the growth."""
        named = self.named
        return named[0] if named else None

    def evidence(self) -> str:
        """'412 requests in 6 min, fit 0.96'."""
        return f"{self.requests} requests in {format_duration(self.window_s)}, fit {self.r2:.2f}"

    def describe(self) -> str:
        """'likely leak: GET /api/v1/items, ~1.0 MiB/request (412 requests in 6 min, fit 0.96)'."""
        worst = self.worst
        if worst is None:
            return f"no likely leak: {self.reason}"
        others = len(self.named) - 1
        more = f"; {others} more route(s) keep memory" if others else ""
        return (
            f"likely leak: {worst.route}, ~{format_bytes(round(worst.bytes_per_request))}"
            f"/request ({worst.requests} of {self.evidence()}{more})"
        )

    def to_json(self) -> dict[str, Any]:
        """The `diagnose --json` document of the estimate."""
        worst = self.worst
        return {
            "status": self.status,
            "reason": self.reason,
            "likely_leak": worst.route if worst else None,
            "summary": self.describe(),
            "routes": [r.to_json() for r in self.routes],
            "intercept_bytes_per_s": round(self.intercept_bytes_per_s, 1),
            "r2": round(self.r2, 4),
            "intervals": self.intervals,
            "requests": self.requests,
            "window_s": round(self.window_s, 1),
            "units": self.units,
            "log_format": self.log_format,
        }


def _gram(
    columns: Sequence[Sequence[float]], y: Sequence[float]
) -> tuple[list[list[float]], list[float]]:
    """G = X'X and c = X'y from X's columns (sum(map(mul)) runs in C: the rows are many, the
    columns few). A column with few non-zero rows (a warm-up one: a unit's first requests of
    a route fall in one or two intervals) is multiplied on those rows only."""
    n, rows = len(columns), len(y)
    nonzero = [[k for k, x in enumerate(col) if x] for col in columns]
    sparse = [len(nz) * 8 < rows for nz in nonzero]
    g = [[0.0] * n for _ in range(n)]
    for i in range(n):
        col_i = columns[i]
        for j in range(i, n):
            col_j = columns[j]
            if sparse[i] or sparse[j]:
                few = nonzero[i] if len(nonzero[i]) <= len(nonzero[j]) else nonzero[j]
                value = sum(col_i[k] * col_j[k] for k in few)
            else:
                value = sum(map(operator.mul, col_i, col_j))
            g[i][j] = g[j][i] = float(value)
    return g, [float(sum(map(operator.mul, col, y))) for col in columns]


def _stretches(samples: Sequence[tuple[float, int]]) -> list[list[tuple[float, int]]]:
    """Cut a unit's samples where its RSS fell like a recycle or a kill."""
    out: list[list[tuple[float, int]]] = []
    current: list[tuple[float, int]] = []
    for t, rss in sorted(samples):
        if current:
            before = current[-1][1]
            if before - rss > min(DROP_BYTES, DROP_SHARE * before):
                out.append(current)
                current = []
        current.append((t, rss))
    if current:
        out.append(current)
    return out


def _intervals(
    stretch: Sequence[tuple[float, int]], min_interval_s: float
) -> list[tuple[float, float, int]]:
    """(start, end, growth) of consecutive samples at least `min_interval_s` apart."""
    out = []
    start_t, start_rss = stretch[0]
    for t, rss in stretch[1:]:
        if t - start_t >= min_interval_s:
            out.append((start_t, t, rss - start_rss))
            start_t, start_rss = t, rss
    return out


def _warm_up_keys(reqs: Sequence[tuple[float, str]]) -> list[tuple[str, int]]:
    """(route, ordinal) of each of a unit's requests in time order: 1, 2, ... for the unit's
    first WARM_UP_REQUESTS of that route (each its own column: the step comes at one of them,
    not spread over them), 0 for every later one."""
    seen: dict[str, int] = defaultdict(int)
    keys = []
    for _t, route in reqs:
        seen[route] += 1
        n = seen[route]
        keys.append((route, n if n <= WARM_UP_REQUESTS else 0))
    return keys


def estimate_leaks(
    samples: Mapping[str, Sequence[tuple[float, int]]],
    requests: Sequence[tuple[float, str | None, str]],
    *,
    min_interval_s: float = MIN_INTERVAL_S,
    units: str = "worker pid",
    log_format: str = "",
) -> LeakReport:
    """Fit the memory each route keeps per request.

    Args:
        samples: unit key -> (epoch seconds, RSS bytes) samples.
        requests: the requests served (:class:`Request`, or plain (time, unit, route) tuples;
            their unit keys as in `samples`; others, and None, are ignored).
        min_interval_s: the shortest interval fitted.
        units: what a unit is ('worker pid', 'container'), said in the result.
        log_format: the access log's format name, said in the result.
    """

    def decline(reason: str, **kw: Any) -> LeakReport:
        return LeakReport("not_enough_data", reason, units=units, log_format=log_format, **kw)

    by_unit: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for when, unit, route in requests:  # Request tuples, or plain (time, unit, route) ones
        if unit is not None and unit in samples:
            by_unit[unit].append((when, route))
    if not samples:
        return decline("no worker memory samples yet")
    if not by_unit:
        return decline("no requests logged by the sampled workers yet")
    # start, end, growth, counts by (route, warm-up ordinal or 0)
    rows: list[tuple[float, float, float, dict[tuple[str, int], int]]] = []
    for unit, unit_samples in samples.items():
        reqs = sorted(by_unit.get(unit, ()))
        times = [t for t, _ in reqs]
        keys = _warm_up_keys(reqs)
        for stretch in _stretches(unit_samples):
            for start, end, growth in _intervals(stretch, min_interval_s):
                lo = bisect.bisect_right(times, start)
                hi = bisect.bisect_right(times, end)
                counts: dict[tuple[str, int], int] = defaultdict(int)
                for key in keys[lo:hi]:
                    counts[key] += 1
                rows.append((start, end, float(growth), counts))
    served = sum(sum(r[3].values()) for r in rows)
    if len(rows) < MIN_INTERVALS:
        return decline(f"{len(rows)} intervals of {MIN_INTERVALS} needed", intervals=len(rows))
    window = max(r[1] for r in rows) - min(r[0] for r in rows)
    if window < MIN_WINDOW_S:
        return decline(
            f"{format_duration(window)} of samples, {format_duration(MIN_WINDOW_S)} needed",
            intervals=len(rows),
            window_s=window,
        )
    if not served:
        return decline("no request fell between two samples yet", intervals=len(rows))
    keys = sorted({key for r in rows for key in r[3]})
    route_names = sorted({route for route, _n in keys})
    col = {key: i + 1 for i, key in enumerate(keys)}  # column 0: seconds
    n_cols = len(keys) + 1
    columns = [[0.0] * len(rows) for _ in range(n_cols)]
    y = [0.0] * len(rows)
    for k, (start, end, dy, counts) in enumerate(rows):
        columns[0][k] = end - start
        y[k] = dy
        for key, n in counts.items():
            columns[col[key]][k] = float(n)
    counted = {key: round(sum(columns[col[key]])) for key in keys}
    totals = {route: counted.get((route, 0), 0) for route in route_names}  # after warm-up
    seen: dict[str, int] = defaultdict(int)  # warm-up included
    first_col: dict[str, int] = {}  # the route's first column: its steady one, else ordinal 1
    for key in keys:  # sorted: (route, 0) before (route, 1), (route, 2)
        seen[key[0]] += counted[key]
        first_col.setdefault(key[0], col[key])
    gram, xty = _gram(columns, y)
    # Columns scaled to unit norm: the tolerances of the solve then mean the same for a
    # column of seconds and one of request counts.
    norms = [math.sqrt(gram[i][i]) or 1.0 for i in range(n_cols)]
    g = [[gram[i][j] / (norms[i] * norms[j]) for j in range(n_cols)] for i in range(n_cols)]
    c = [xty[i] / norms[i] for i in range(n_cols)]
    scaled = nnls_gram(g, c, free=(0,))
    beta = [scaled[i] / norms[i] for i in range(n_cols)]
    fitted = [0.0] * len(rows)
    for i in range(n_cols):
        if beta[i]:
            b, column = beta[i], columns[i]
            fitted = [f + b * x for f, x in zip(fitted, column, strict=True)]
    sse = sum((a - f) ** 2 for a, f in zip(y, fitted, strict=True))
    mean = sum(y) / len(y)
    sst = sum((a - mean) ** 2 for a in y)
    r2 = max(0.0, 1.0 - sse / sst) if sst > 0 else 0.0
    active = [i for i in range(n_cols) if i == 0 or beta[i] > 0.0]
    dof = max(len(rows) - len(active), 1)
    s2 = sse / dof
    variance = dict(zip(active, inverse_diagonal(gram, active), strict=True))
    steady = {route: col.get((route, 0)) for route in route_names}
    contributions = {
        route: beta[i] * totals[route] if i is not None else 0.0 for route, i in steady.items()
    }
    warm_up = sum(beta[col[key]] * counted[key] for key in keys if key[1])  # ordinals
    unexplained = max(0.0, beta[0] * sum(r[1] - r[0] for r in rows))
    explained = sum(contributions.values()) + warm_up + unexplained
    estimates = []
    for route in route_names:
        # Only warm-up requests of it (a rare route): what they grew by, never named.
        i = first_col[route]
        var = variance.get(i)
        if var is None:  # a route the fit set to 0: its marginal error
            var = 1.0 / gram[i][i] if gram[i][i] > 0 else math.inf
        se = math.sqrt(max(s2 * var, 0.0))
        named = (
            steady[route] is not None
            and totals[route] >= MIN_ROUTE_REQUESTS
            and beta[i] >= MIN_BYTES_PER_REQUEST
            and beta[i] > MIN_SIGMAS * se
        )
        share = contributions[route] / explained if explained > 0 else 0.0
        estimates.append(RouteEstimate(route, seen[route], beta[i], se, share, named))
    estimates.sort(key=lambda e: (not e.named, -e.share, -e.bytes_per_request, e.route))
    base = LeakReport(
        "leak",
        "",
        routes=tuple(estimates),
        intercept_bytes_per_s=beta[0],
        r2=r2,
        intervals=len(rows),
        requests=served,
        window_s=window,
        units=units,
        log_format=log_format,
    )
    evidence = f"{served} requests in {format_duration(window)}, fit {r2:.2f}"
    if not any(e.named for e in estimates):
        return dataclasses.replace(
            base, status="none", reason=f"no route keeps memory measurably ({evidence})"
        )
    if r2 < MIN_R2:
        return dataclasses.replace(
            base,
            status="not_enough_data",
            reason=f"the fit explains too little of the growth (R² {r2:.2f} < {MIN_R2}; {evidence})",
            routes=tuple(dataclasses.replace(e, named=False) for e in estimates),
        )
    return dataclasses.replace(base, reason=evidence)


def leak_followup(route: str, bytes_per_request: float) -> str:
    """The follow-up for a named route: recycling bounds the leak, it does not fix it."""
    return (
        f"Find what {route} keeps: each request leaves about "
        f"{format_bytes(round(bytes_per_request))} in its worker (a cache, a list or a pool "
        "that grows per request, measured by the console per route); recycling with "
        "--max-requests only bounds it."
    )

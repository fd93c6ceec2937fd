"""The leak estimator's cost per update: `python benchmarks/leak_bench.py [--json FILE]`.

The case the issue sizes it for: 30 minutes of samples (every 5 s) of 4 workers and 50 routes,
20 requests a second (36,000 requests in the window), refitted every 5 s by the monitor. Pure
CPU on this machine, no server involved. Figures (each beside its baseline, as run.py prints):

  1. one update of the estimator alone (domain.leak.estimate_leaks over the whole window)
  2. one update as the monitor runs it (monitor.leaks.LeakTracker: frames and log lines kept
     as events, turned into series, fitted), fed through its own observe()
  3. the baseline: the pooled growth per request the runbook had (domain.recycle), over the
     same intervals: one number for all routes
  4. the share of one core the updates take at one every 5 s
and whether the answer was right (the leaking routes named, within 25%).
"""

from __future__ import annotations

import argparse
import bisect
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src")]

from incident_console.domain.events import ContainerProcesses, LogLine, ProcessRss  # noqa: E402
from incident_console.domain.leak import Request, estimate_leaks  # noqa: E402
from incident_console.domain.recycle import Interval, growth_per_request  # noqa: E402
from incident_console.monitor.leaks import LeakTracker  # noqa: E402
from incident_console.monitor.state import HostState  # noqa: E402

KiB = 1024
WINDOW_S = 1800.0
STEP_S = 5.0
WORKERS = 4
ROUTES = 50
RATE = 20.0
UPDATE_EVERY_S = 5.0
CID = "c" * 64


def workload(
    seed: int = 1,
) -> tuple[dict[str, list[tuple[float, int]]], list[Request], dict[str, int]]:
    """Samples and requests: 50 routes, three of which keep memory, with 256 KiB of noise."""
    rng = random.Random(seed)
    names = [f"GET /api/v1/r{i:02d}/{{id}}" for i in range(ROUTES)]
    keeps = dict.fromkeys(names, 0)
    keeps[names[3]], keeps[names[17]], keeps[names[40]] = 1024 * KiB, 4096 * KiB, 256 * KiB
    weights = [1.0 / (1 + i) for i in range(ROUTES)]  # a few busy routes, a long tail
    samples: dict[str, list[tuple[float, int]]] = {}
    requests: list[Request] = []
    per_worker = RATE / WORKERS * STEP_S
    for w in range(WORKERS):
        unit, rss, t = str(7 + w), 40 << 20, 0.0
        points = [(t, rss)]
        while t < WINDOW_S:
            for _ in range(rng.randint(0, round(2 * per_worker))):
                route = rng.choices(names, weights)[0]
                rss += keeps[route]
                requests.append(Request(t + rng.random() * STEP_S, unit, route))
            t += STEP_S
            points.append((t, rss + rng.randint(-256 * KiB, 256 * KiB)))
        samples[unit] = points
    return samples, requests, keeps


def timed(fn: Any, runs: int) -> tuple[float, Any]:
    """Median CPU seconds of `runs` calls, and the last result.

    CPU time, not wall time: this machine's cores are shared, and a wall clock would count
    the time other work held the core.
    """
    times, out = [], None
    for _ in range(runs):
        t0 = time.process_time()
        out = fn()
        times.append(time.process_time() - t0)
    return statistics.median(times), out


def tracker_fed(
    samples: dict[str, list[tuple[float, int]]], requests: list[Request]
) -> LeakTracker:
    """A tracker that has seen the window as the monitor would hand it over (events)."""
    tracker = LeakTracker(HostState(name="bench"), every_s=1e12)  # updates timed by hand
    frames: dict[float, list[ProcessRss]] = {}
    for unit, points in samples.items():
        for t, rss in points:
            frames.setdefault(t, []).append(
                ProcessRss(int(unit) + 1000, "gunicorn", rss, int(unit))
            )
    lines = sorted(requests, key=lambda r: r.time)
    k = 0
    for t in sorted(frames):
        tracker.observe(ContainerProcesses(time=t, id=CID, processes=tuple(frames[t])))
        while k < len(lines) and lines[k].time <= t + STEP_S:
            r = lines[k]
            method, path = r.route.split(" ", 1)
            text = f'10.0.0.2 - - [x] "{method} {path.replace("{id}", str(k))} HTTP/1.1" 200 9 "-" "-" <{r.unit}>'
            tracker.observe(LogLine(time=r.time, id=CID, container="bench", text=text))
            k += 1
    return tracker


def run(runs: int) -> dict[str, Any]:
    samples, requests, keeps = workload()
    r: dict[str, Any] = {
        "window_min": WINDOW_S / 60,
        "routes": ROUTES,
        "workers": WORKERS,
        "samples": sum(len(p) for p in samples.values()),
        "requests": len(requests),
    }
    est_s, report = timed(lambda: estimate_leaks(samples, requests), runs)
    r["estimator_update_ms"] = est_s * 1000
    tracker = tracker_fed(samples, requests)
    track_s, tracked = timed(lambda: tracker.estimate(CID, WINDOW_S + STEP_S), runs)
    r["tracker_update_ms"] = track_s * 1000

    # Baseline: one pooled figure over the same intervals (what max-requests was sized on).
    intervals = []
    for unit, points in samples.items():
        times = sorted(q.time for q in requests if q.unit == unit)
        for (t0, a), (t1, b) in zip(points, points[1:], strict=False):
            n = bisect.bisect_right(times, t1) - bisect.bisect_right(times, t0)
            intervals.append(Interval(t0, t1, b - a, n))
    base_s, pooled = timed(lambda: growth_per_request(intervals), runs)
    r["baseline_pooled_update_ms"] = base_s * 1000
    r["tracker_to_pooled_ratio"] = track_s / base_s if base_s else None
    r["core_share_at_one_update_per_5s_pct"] = track_s / UPDATE_EVERY_S * 100
    r["pooled_figure_kib"] = pooled[0].per_request / KiB if pooled[0] else None

    got = {e.route: e.bytes_per_request for e in tracked.routes} if tracked else {}
    leaking = {k: v for k, v in keeps.items() if v}
    r["named"] = [e.route for e in tracked.named] if tracked else []
    r["answer_right"] = bool(
        tracked is not None
        and set(r["named"]) == set(leaking)
        and all(abs(got[k] - v) <= 0.25 * v for k, v in leaking.items())
    )
    r["estimates_kib"] = {k: round(got.get(k, 0) / KiB) for k in leaking}
    r["estimator_status"] = report.status
    return r


def table(r: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = []

    def add(name: str, key: str, fmt: str = "{:.1f}") -> None:
        if r.get(key) is not None:
            rows.append((name, fmt.format(r[key])))

    rows.append(("workload", f"{r['window_min']:.0f} min x {r['routes']} routes x "
                 f"{r['workers']} workers: {r['samples']} samples, {r['requests']} requests"))  # fmt: skip
    add("estimator alone: CPU ms per update", "estimator_update_ms")
    add("as the monitor runs it: CPU ms per update", "tracker_update_ms")
    add("baseline, pooled growth per request: CPU ms", "baseline_pooled_update_ms", "{:.2f}")
    add("ours / pooled baseline", "tracker_to_pooled_ratio", "{:.0f}x")
    add("share of a core at one update per 5 s, %", "core_share_at_one_update_per_5s_pct", "{:.2f}")
    add("pooled figure (one for all routes), KiB", "pooled_figure_kib", "{:.0f}")
    rows.append(("per-route estimates, KiB (truth 1024/4096/256)", str(r["estimates_kib"])))
    rows.append(("leaking routes named, within 25%", "yes" if r["answer_right"] else "NO"))
    width = max(len(a) for a, _ in rows)
    return "\n".join(f"{a:<{width}}  {b}" for a, b in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description="the leak estimator's cost per update")
    parser.add_argument("--runs", type=int, default=5, help="updates timed (the median is shown)")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    args = parser.parse_args()
    r = run(args.runs)
    print(table(r))
    if args.json:
        args.json.write_text(json.dumps(r, indent=2, default=str) + "\n")
    return 0 if r["answer_right"] else 1


if __name__ == "__main__":
    sys.exit(main())

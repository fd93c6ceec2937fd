"""Which request leaks, on the real lab over a real sshd: the mixed load's leaking routes named
first, within 25% of what the backend really keeps, the busy route near zero; with the leak
switched off no route is named. And the lab's model agrees with its backend's own table."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from fixtures_lab import require_docker
from fixtures_sshd import SshdServer, ssh_target
from incident_console.domain.leak import LeakReport
from incident_console.lab.lab import Lab
from incident_console.lab.load import LAB_ROUTES, LoadStats, parse_mix, run_load
from incident_console.monitor.host_monitor import HostMonitor
from incident_console.transport.targets import open_host

KiB = 1024
#: The issue's bounds: within 3 minutes, within 25%, the busy route under 5% of the worst.
DEADLINE_S = 180.0
TOLERANCE = 0.25
BUSY_SHARE = 0.05
#: The load: 6 requests a second of the mixed routes; diagnose watches this long.
RATE = 6.0
SAMPLE_S = 110


def _backend_module(leak_kib: int) -> ModuleType:
    text = (resources.files("incident_console.lab") / "stack" / "app.py.txt").read_text()
    old = os.environ.get("LAB_LEAK_KIB")
    os.environ["LAB_LEAK_KIB"] = str(leak_kib)
    try:
        spec = importlib.util.spec_from_loader("lab_backend", loader=None)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        os.environ["LAB_WORK_MS"] = "0"
        exec(compile(text, "app.py.txt", "exec"), module.__dict__)  # noqa: S102 - our own file
        return module
    finally:
        os.environ.pop("LAB_WORK_MS", None)
        if old is None:
            os.environ.pop("LAB_LEAK_KIB", None)
        else:
            os.environ["LAB_LEAK_KIB"] = old


def test_lab_model_is_what_the_backend_keeps() -> None:
    import random

    backend = _backend_module(leak_kib=512)
    rng = random.Random(1)
    for route in LAB_ROUTES:
        for query, expect in (("", route.keeps_kib(512) * KiB), ("lab_leak=off", 0)):
            before = sum(len(b) for b in backend._kept)
            status: list[str] = []
            body = backend.app(
                {"PATH_INFO": route.path(rng), "QUERY_STRING": query},
                lambda s, _h, status=status: status.append(s),
            )
            assert status == ["200 OK"], route
            assert json.loads(body[0])["pid"] == os.getpid()
            assert sum(len(b) for b in backend._kept) - before == expect, (route, query)


def test_mix_parsing() -> None:
    assert [r.name for r, _ in parse_mix("mixed")][:2] == ["orders", "items"]
    assert [(r.name, w) for r, w in parse_mix("items=3,health=1")] == [
        ("items", 3.0),
        ("health", 1.0),
    ]
    for bad in ("nope", "items=0", "ghost=1", "items=x"):
        with pytest.raises(ValueError):
            parse_mix(bad)


@pytest.fixture(scope="module")
def leak_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A lab of our own (the shared one's incident must not see this load)."""
    require_docker()
    project = f"ilk{os.getpid()}"
    lab = Lab(project, tmp_path_factory.mktemp("leaklab") / project)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


def _truth(lab: Lab) -> dict[str, float]:
    return {r.route: r.keeps_kib(lab.settings.leak_kib) * KiB for r in LAB_ROUTES}


async def _watch(
    sshd: SshdServer, lab: Lab, *, leak: bool, seconds: float
) -> tuple[LeakReport | None, dict[str, Any], LoadStats, float]:
    """Load the lab; meanwhile the console's monitor and `diagnose --json` watch it over SSH."""
    stop = threading.Event()
    loaded: list[LoadStats] = []
    mix = parse_mix("mixed")
    t0 = time.monotonic()
    loader = threading.Thread(
        target=lambda: loaded.append(
            run_load(lab.frontend_url, seconds + 60, RATE, 8, stop=stop, mix=mix, leak=leak)
        ),
        daemon=True,
    )
    loader.start()
    diagnose = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "incident_console", "diagnose", *ssh_target(sshd),
        "--json", "--project", lab.project, "--sample", str(int(seconds)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    monitor = HostMonitor(
        open_host(sshd.target, **sshd.host_options()),  # type: ignore[arg-type]
        read_only=True,
    )
    await monitor.start()
    try:
        out, err = await asyncio.wait_for(diagnose.communicate(), timeout=DEADLINE_S + 60)
        elapsed = time.monotonic() - t0
        backend = lab.backend_container_id()
        report = monitor.state.leaks.get(backend)
    finally:
        await monitor.stop(deadline_s=30)
        stop.set()
        loader.join(30)
    assert diagnose.returncode in (0, 1), err.decode()[-2000:]
    doc = json.loads(out)
    return report, doc, loaded[0] if loaded else LoadStats(), elapsed


def _routes(leak: dict[str, Any] | None) -> list[dict[str, Any]]:
    assert leak is not None, "diagnose --json has no leak estimate for the backend"
    return list(leak["routes"])


def _check_named(routes: list[tuple[str, float, bool]], truth: dict[str, float], who: str) -> None:
    leaking = {r for r, kept in truth.items() if kept > 0}
    named = [r for r, _b, is_named in routes if is_named]
    assert set(named) == leaking, f"{who}: named {named}, leaking {sorted(leaking)}"
    assert [r for r, _b, _n in routes[: len(leaking)]] == named, f"{who}: leaking ones first"
    got = {r: b for r, b, _n in routes}
    for route in leaking:
        assert abs(got[route] - truth[route]) <= TOLERANCE * truth[route], (who, route, got[route])
    worst = max(got.values())
    assert got["GET /api/v1/orders"] < BUSY_SHARE * worst, (who, got)


@pytest.mark.docker
@pytest.mark.sshd
@pytest.mark.lab
@pytest.mark.slow
async def test_mixed_load_names_the_leaking_routes(sshd: SshdServer, leak_lab: Lab) -> None:
    status = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "incident_console", "lab", "status",
        "--project", leak_lab.project, "--dir", str(leak_lab.directory),
        stdout=subprocess.PIPE,
    )  # fmt: skip
    said = (await asyncio.wait_for(status.communicate(), 60))[0].decode()
    assert "GET /api/v1/items 1024 KiB" in said  # what the lab says it keeps
    truth = _truth(leak_lab)
    report, doc, load, elapsed = await _watch(sshd, leak_lab, leak=True, seconds=SAMPLE_S)
    # What was seen, for the log of a run (pytest -s): the figures beside the truth.
    print(f"\nmixed load: {elapsed:.0f} s, {load.describe()}, routes {dict(load.routes)}")
    for r in report.routes if report else ():
        print(f"  console: {r.describe()} named={r.named} truth {truth[r.route] / KiB:g} KiB")
    assert elapsed < DEADLINE_S, f"took {elapsed:.0f} s"
    assert load.sent == 0 or load.routes["orders"] > load.routes["items"]

    # The console's detail reads this report (monitor.state.leaks).
    assert report is not None and report.status == "leak", report and report.reason
    assert (
        report.units == "worker pid"
    )  # the log's %(p)s matched the sampler's pid in the container
    _check_named([(r.route, r.bytes_per_request, r.named) for r in report.routes], truth, "console")
    assert report.worst is not None and report.worst.route == "GET /api/v1/items"

    backend = next(c for c in doc["containers"] if c["service"] == "backend")
    routes = _routes(backend["leak"])
    _check_named(
        [(r["route"], r["bytes_per_request"], r["named"]) for r in routes], truth, "diagnose"
    )
    assert backend["leak"]["likely_leak"] == "GET /api/v1/items"
    summaries = [f["summary"] for f in doc["findings"]]
    # "~1.0 MiB/request", or "~1020.8 KiB/request" for an estimate just under the MiB (seen).
    said = [
        m for s in summaries
        if (m := re.search(r"likely leak: GET /api/v1/items, ~([\d.]+) (KiB|MiB)/request", s))
    ]  # fmt: skip
    assert said, summaries
    kib = float(said[0].group(1)) * (1024 if said[0].group(2) == "MiB" else 1)
    assert 0.9 * 1024 <= kib <= 1.1 * 1024, said[0].group(0)

    # The detail's routes table shows the console's report, the likely leak first.
    from textual.app import App, ComposeResult

    from incident_console.ui.widgets.routes import RoutesTable

    class Detail(App[None]):
        def compose(self) -> ComposeResult:
            yield RoutesTable()

    async with Detail().run_test() as pilot:
        table = pilot.app.query_one(RoutesTable)
        table.show(report)
        await pilot.pause()
        first = [str(c) for c in table.get_row_at(0)]
        assert "GET /api/v1/items" in first[0] and first[0].startswith("!")
        assert str(table.border_title).startswith("Routes: likely leak GET /api/v1/items")


@pytest.mark.docker
@pytest.mark.sshd
@pytest.mark.lab
@pytest.mark.slow
async def test_leak_off_names_no_route(sshd: SshdServer, leak_lab: Lab) -> None:
    report, doc, _load, _elapsed = await _watch(sshd, leak_lab, leak=False, seconds=100)
    assert report is not None and report.status != "leak", report and report.reason
    assert report.worst is None and not report.named
    backend = next(c for c in doc["containers"] if c["service"] == "backend")
    leak = backend["leak"]
    assert leak is not None and leak["likely_leak"] is None, leak
    assert not [r for r in leak["routes"] if r["named"]]
    assert not [f for f in doc["findings"] if "likely leak" in f["summary"]]
    # Some requests were seen and fitted: the answer rests on them, not on an absence of data.
    # Without a leak the workers' RSS is noise (allocator warm-up, a busy machine's scheduling):
    # the fit then says either that no route keeps memory, or, where a route's noise reached
    # 3 sigma, that the fit explains too little of the growth to name it (seen in CI, R² 0.37).
    assert leak["requests"] > 100, leak["reason"]
    assert leak["status"] == "none" or (
        leak["status"] == "not_enough_data" and "explains too little" in leak["reason"]
    ), leak["reason"]
    print(f"leak off: {leak['status']}: {leak['reason']}")


def test_paths_of_routes(tmp_path: Path) -> None:
    import random

    rng = random.Random(2)
    for route in LAB_ROUTES:
        path = route.path(rng)
        assert path.startswith("/api/v1/")
        assert "{" not in path

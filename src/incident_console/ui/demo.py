"""A data source with no server behind it: RecordingMonitor, and a fixed demo incident.

Tests fill a RecordingMonitor's HostState and post events to it; snapshot tests use
:func:`demo_monitor` with a fixed clock so every screenshot is the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from incident_console.domain.events import (
    ContainerEvent,
    ContainerInfo,
    ContainerProcesses,
    ContainerSample,
    Event,
    HealthChange,
    HostMemory,
    LinkChange,
    LogLine,
    LogSignal,
    OomConstraint,
    OomKill,
    ProbeResult,
    ProcessRss,
    SourceStatus,
)
from incident_console.domain.leak import LeakReport, RouteEstimate
from incident_console.monitor.changes import (
    Change,
    ChangeDeclined,
    ChangeResult,
    Confirm,
    ReadOnlyError,
)
from incident_console.monitor.state import HostState
from incident_console.transport.base import ConnectionState, LinkState

MiB = 1024 * 1024
#: 2024-03-14 03:12:00 UTC: the demo incident's "now".
DEMO_NOW = 1710385920.0


@dataclass
class NamedHost:
    """A host that is only a name and a link state (no transport behind it)."""

    name: str
    state: ConnectionState = field(
        default_factory=lambda: ConnectionState(LinkState.CONNECTED, since=DEMO_NOW)
    )


class RecordingMonitor:
    """A MonitorLike with no server: its state is filled by posting events to it, and the
    changes it is asked for (restarts, runbook steps) are recorded, never carried out."""

    def __init__(self, name: str = "local", *, read_only: bool = False) -> None:
        self.host = NamedHost(name)
        self.state = HostState(name=name, link="connected", link_since=DEMO_NOW)
        self.read_only = read_only
        self.restarted: list[str] = []
        self.changes: list[Change] = []
        self.followed: list[list[str] | None] = []
        self.started = False
        self.stopped = False
        self._subscribers: list[Callable[[Event], None]] = []

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call `callback` with every event posted."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def post(self, event: Event) -> None:
        """Apply `event` to the state and publish it, as HostMonitor.record does."""
        self.state.apply(event)
        for callback in list(self._subscribers):
            callback(event)

    def set_link(self, link: ConnectionState) -> None:
        """Change the link state (header and stale panes follow)."""
        self.host.state = link
        self.post(LinkChange(time=link.since, state=link.state.value, reason=link.reason))

    async def start(self) -> None:
        self.started = True

    async def stop(self, deadline_s: float | None = None) -> bool:
        self.stopped = True
        return True

    async def change(self, change: Change, *, confirm: Confirm | None = None) -> ChangeResult:
        """The door's contract without a server: refuse read-only, ask, then record it."""
        if self.read_only:
            raise ReadOnlyError(self.host.name, change.what)
        if confirm is not None and not await confirm(change):
            raise ChangeDeclined(self.host.name, change.what)
        if change.kind == "restart":
            self.restarted.append(change.container_id)
        self.changes.append(change)
        return ChangeResult(change, f"fake{len(self.changes)}")

    def follow_logs(self, container_ids: Iterable[str] | None) -> None:
        self.followed.append(None if container_ids is None else list(container_ids))


def _cid(name: str) -> str:
    return (name.encode().hex() * 8)[:64]


def _demo_leak() -> LeakReport:
    """What the estimator says of the demo's backend: one route keeps about 1 MiB a request."""
    return LeakReport(
        "leak",
        "412 requests in 6 m, fit 0.96",
        routes=(
            RouteEstimate("GET /api/v1/items", 412, 1.0 * MiB, 21 * 1024, 0.93, True),
            RouteEstimate("GET /api/v1/orders", 1530, 2 * 1024, 3 * 1024, 0.02, False),
            RouteEstimate("GET /api/v1/health", 120, 0.0, 9 * 1024, 0.0, False),
        ),
        r2=0.96,
        intervals=96,
        requests=2062,
        window_s=360.0,
        units="worker pid",
        log_format="gunicorn with worker pid (%(p)s)",
    )


def demo_monitor(
    name: str = "prod", *, now: float = DEMO_NOW, read_only: bool = False, containers: int = 5
) -> RecordingMonitor:
    """A host in the middle of the incident: a leaking backend near its limit, two OOM kills."""
    monitor = RecordingMonitor(name, read_only=read_only)
    monitor.host.state = ConnectionState(LinkState.CONNECTED, since=now - 600)
    post = monitor.post
    post(SourceStatus(time=now - 600, source="stats", method="awk-sampler"))
    post(SourceStatus(time=now - 600, source="kernel_log", method="dmesg"))
    specs = [
        ("app-backend-1", "backend", 512, 470, 4, "unhealthy"),
        ("app-frontend-1", "frontend", 256, 80, 0, "healthy"),
        ("app-db-1", "db", 1024, 300, 0, "healthy"),
        ("app-redis-1", "redis", 0, 12, 0, ""),
        ("app-proxy-1", "proxy", 128, 20, 0, "healthy"),
    ]
    for i in range(5, containers):
        specs.append((f"app-worker-{i}", f"worker{i}", 256, 40 + i, 0, "healthy"))
    for name_, service, limit_mib, used_mib, restarts, health in specs:
        cid = _cid(name_)
        post(
            ContainerInfo(
                time=now - 3600,
                id=cid,
                name=name_,
                image=f"app/{service}:1.4",
                state="running",
                health=health,
                failing_streak=3 if health == "unhealthy" else 0,
                last_probe_output="curl: (28) Operation timed out" if health == "unhealthy" else "",
                restarts=restarts,
                started_at=now - 900,
                created_at=now - 3600,
                memory_limit_bytes=limit_mib * MiB,
                restart_policy="unless-stopped",
                project="app",
                service=service,
                working_dir="/srv/app",
                config_files=("/srv/app/docker-compose.prod.yml",),
                environment=("GUNICORN_WORKERS=4", "DB_PASSWORD=***", "TZ=UTC"),
                command=("gunicorn", "app:app", "-w", "4"),
            )
        )
        # Three minutes of samples: enough for a forecast to call a trend (or "stable").
        for t in range(180):
            growth = (t / 179) if service == "backend" else 0.5 + 0.5 * ((t * 7) % 10) / 10
            used = int(used_mib * MiB * (0.6 + 0.4 * growth))
            post(
                ContainerSample(
                    time=now - 179 + t,
                    id=cid,
                    memory_used_bytes=used,
                    memory_limit_bytes=limit_mib * MiB if limit_mib else 2**63,
                    cpu_percent=35.0 if service == "backend" else 1.5,
                )
            )
    backend = _cid("app-backend-1")
    post(
        ContainerProcesses(
            time=now - 5,
            id=backend,
            processes=(
                ProcessRss(1, "gunicorn: master", 28 * MiB),
                ProcessRss(7, "gunicorn: worker", 180 * MiB),
                ProcessRss(8, "gunicorn: worker", 120 * MiB),
                ProcessRss(9, "gunicorn: worker", 95 * MiB),
                ProcessRss(10, "gunicorn: worker", 47 * MiB),
            ),
        )
    )
    monitor.state.leaks[backend] = _demo_leak()
    post(
        HealthChange(
            time=now - 240,
            id=backend,
            name="app-backend-1",
            service="backend",
            old="healthy",
            new="unhealthy",
            failing_streak=3,
            output="curl: (28) Operation timed out",
        )
    )
    post(
        ContainerEvent(
            time=now - 1800, id=backend, name="app-backend-1", service="backend", action="create"
        )
    )
    post(
        ContainerEvent(
            time=now - 60, id=backend, name="app-backend-1", service="backend", action="restart"
        )
    )
    for k, (dt, pid, rss) in enumerate(((-80, 7066, 402), (-30, 7076, 410))):
        post(
            OomKill(
                time=now + dt,
                pid=pid,
                process="gunicorn",
                constraint=OomConstraint.LIMIT,
                anon_rss_bytes=rss * MiB,
                container_id=backend,
                container="app-backend-1",
                service="backend",
                memcg=f"/docker/{backend}",
                source="dmesg",
                raw=(f"Memory cgroup out of memory: Killed process {pid} (gunicorn) #{k}",),
            )
        )
    lines = [
        ("[INFO] Booting worker with pid: 7077", LogSignal.WORKER_BOOT),
        ("GET /api/v1/items 200 0.412s", None),
        ("[bold red]x[/]", None),
        (
            "[ERROR] Worker (pid:7076) was sent SIGKILL! Perhaps out of memory?",
            LogSignal.WORKER_KILLED,
        ),
        ("GET /api/v1/health 200 0.003s", None),
        ("[CRITICAL] WORKER TIMEOUT (pid:7070)", LogSignal.WORKER_TIMEOUT),
        ("Traceback (most recent call last):", LogSignal.TRACEBACK),
        ("GET /api/v1/items 200 0.398s", None),
    ]
    for i, (text, signal) in enumerate(lines):
        post(
            LogLine(
                time=now - 40 + i * 4,
                id=backend,
                container="app-backend-1",
                text=text,
                signal=signal,
            )
        )
    post(
        HostMemory(
            time=now,
            total_bytes=5939 * MiB,
            available_bytes=420 * MiB,
            swap_total_bytes=0,
            swap_free_bytes=0,
            psi_some_avg10=12.5,
            psi_full_avg10=4.25,
        )
    )
    post(
        ProbeResult(
            time=now - 2,
            url="https://app.example.com/api/v1/health",
            status=504,
            latency_ms=30000.0,
        )
    )
    post(ProbeResult(time=now - 2, url="https://app.example.com/", status=200, latency_ms=41.0))
    return monitor


#: What a frontend printed while its backend was not up yet.
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/usr/bin/gunicorn", line 33, in <module>\n'
    "    sys.exit(load_entry_point('gunicorn', 'console_scripts', 'gunicorn')())\n"
    '  File "/usr/lib/python3/dist-packages/gunicorn/app/base.py", line 72, in run\n'
    "    Arbiter(self).run()\n"
    "urllib.error.URLError: <urlopen error [Errno 111] Connection refused>\n"
)


def lab_monitor(
    name: str = "prod", *, now: float = DEMO_NOW, minutes: float = 3.0, read_only: bool = False
) -> RecordingMonitor:
    """The demo host with a lab's stack beside it: long compose names (icbench31926_*), a
    frontend starting with a traceback, `minutes` of samples, a kill that docker reported as
    seven "oom" events."""
    monitor = demo_monitor(name, now=now, read_only=read_only)
    for container, service, limit, used, health, output in (
        ("icbench31926_backend_1", "backend", 256, 230, "unhealthy", "curl: (28) timed out"),
        ("icbench31926_frontend_1", "frontend", 128, 40, "starting", TRACEBACK),
        ("icbench31926_loadgen_1", "loadgen", 64, 10, "", ""),
    ):
        ident = _cid(container)
        monitor.post(
            ContainerInfo(
                time=now - 3600,
                id=ident,
                name=container,
                image=f"icbench/{service}:lab",
                state="running",
                health=health,
                last_probe_output=output,
                started_at=now - 120,
                created_at=now - 3600,
                memory_limit_bytes=limit * MiB,
                project="icbench31926",
                service=service,
                working_dir="/root/.local/share/incident-console/lab/icbench31926",
                config_files=(
                    "/root/.local/share/incident-console/lab/icbench31926/docker-compose.yml",
                ),
            )
        )
        count = int(minutes * 60)
        for t in range(count):
            share = 0.5 + 0.5 * t / max(1, count - 1) if service == "backend" else 0.8
            monitor.post(
                ContainerSample(
                    time=now - count + 1 + t,
                    id=ident,
                    memory_used_bytes=int(used * MiB * share),
                    memory_limit_bytes=limit * MiB,
                    cpu_percent=20.0,
                )
            )
    backend = _cid("icbench31926_backend_1")
    monitor.post(
        HealthChange(
            time=now - 50,
            id=_cid("icbench31926_frontend_1"),
            name="icbench31926_frontend_1",
            service="frontend",
            old="",
            new="starting",
            output=TRACEBACK,
        )
    )
    monitor.post(
        OomKill(
            time=now - 20,
            pid=31337,
            process="gunicorn",
            constraint=OomConstraint.LIMIT,
            anon_rss_bytes=231 * MiB,
            container_id=backend,
            container="icbench31926_backend_1",
            service="backend",
            source="dmesg",
        )
    )
    # docker sends one "oom" event per process the kernel looked at: seven for one kill.
    for _ in range(7):
        monitor.post(
            ContainerEvent(
                time=now - 20,
                id=backend,
                name="icbench31926_backend_1",
                service="backend",
                action="oom",
            )
        )
    return monitor

"""`incident-console lab`: the seed's incident, reproduced on the local docker engine."""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import click

from incident_console.cli import fail
from incident_console.commands.lab_server import server_group
from incident_console.lab.model import mib_text

_project = click.option(
    "--project", default="icl", show_default=True, help="Compose project name of the lab."
)
_directory = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the lab's files (default: <user data dir>/lab/<project>).",
)


@click.group("lab")
def lab_group() -> None:
    """Reproduce the incident: a compose stack whose gunicorn workers leak until OOM-killed.

    Offline: the image is imported from a tiny rootfs and the host's /usr is mounted read-only.
    """


@lab_group.command("up")
@_project
@_directory
@click.option("--mem-limit", default="256m", show_default=True, help="Backend memory limit.")
@click.option(
    "--workers",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="GUNICORN_WORKERS default written into the compose file.",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Frontend port on 127.0.0.1 (default: a free one).",
)
@click.option(
    "--extra",
    default=0,
    show_default=True,
    type=click.IntRange(0, 500),
    help="Extra idle containers (a sleep each, 16m limit).",
)
@click.option(
    "--no-limits",
    is_flag=True,
    help="No container memory limit (the seed's server before the fix); two compose files.",
)
@click.option(
    "--host-memory",
    metavar="SIZE",
    default="",
    help="Every container under one cgroup parent with this limit, standing for the server's "
    "RAM (implies --no-limits; needs root).",
)
@click.option(
    "--db-memory",
    metavar="SIZE",
    default="",
    help="What the db stand-in holds resident, like PostgreSQL's shared buffers "
    "(default: 256m with --host-memory, else nothing).",
)
def lab_up(
    project: str,
    directory: Path | None,
    mem_limit: str,
    workers: int,
    port: int | None,
    extra: int,
    no_limits: bool,
    host_memory: str,
    db_memory: str,
) -> None:
    """Start the lab and wait (60 s at most) until the backend is healthy."""
    from incident_console.lab.lab import Lab, LabError

    limits = not (no_limits or host_memory)
    db = db_memory or ("256m" if host_memory else "")
    try:
        lab = Lab(project, directory, mem_limit, workers, port, extra, limits=limits,
                  host_memory=host_memory, db_memory=db)  # fmt: skip
        result = lab.up(progress=click.echo)
    except LabError as exc:
        fail(str(exc))
        return
    bound = f"memory limit {mem_limit}" if limits else "no container limits"
    click.echo(
        f"backend healthy after {result.seconds_to_healthy:.1f} s ({bound}, {workers} workers)"
    )
    if host_memory:
        click.echo(f"host memory:    {host_memory} ({lab.host_memory_cgroup.limit_file})")
    if db:
        click.echo(f"db resident:    {db}")
    names = " ".join(f"-f {p.name}" for p in lab.compose_files)
    click.echo(f"compose files:  {names}")
    click.echo(f"frontend:       {lab.frontend_url}")
    click.echo(f"backend health: {lab.health_url}")
    click.echo(f"backend direct: {lab.backend_url}api/v1/health")
    click.echo(f"files:          {lab.directory}")
    click.echo(f"next: incident-console lab load --project {project}")


@lab_group.command("status")
@_project
@_directory
def lab_status(project: str, directory: Path | None) -> None:
    """Containers, state, health and the memory limit in effect."""
    from incident_console.lab.lab import Lab, LabError
    from incident_console.lab.oom import KernelLogUnavailable

    try:
        lab = Lab.existing(project, directory)
        rows = lab.status()
    except LabError as exc:
        fail(str(exc))
        return
    if not rows:
        click.echo(f"lab {project!r}: no containers (run `incident-console lab up`)")
        return
    click.echo(f"{'SERVICE':<10} {'NAME':<28} {'STATE':<11} {'HEALTH':<10} {'LIMIT':>9} RESTARTS")
    for c in rows:
        click.echo(
            f"{c.service:<10} {c.name:<28} {c.state:<11} {c.health or '-':<10} "
            f"{mib_text(c.memory_limit):>9} {c.restarts}"
        )
    if lab.settings.host_memory:
        cgroup = lab.host_memory_cgroup
        usage = cgroup.usage()
        used = mib_text(usage.used_bytes) if usage.used_bytes is not None else "unknown"
        limit = mib_text(usage.limit_bytes) if usage.limit_bytes is not None else "none"
        try:
            found = lab.oom_kills()
            by = Counter(k.service or "?" for k in found)
            kills = f"{len(found)} OOM kill(s) in the kernel log" + (
                f" ({', '.join(f'{s} {n}' for s, n in sorted(by.items()))})" if by else ""
            )
        except (LabError, KernelLogUnavailable) as exc:
            kills = f"OOM kills unknown ({exc})"
        click.echo(f"host memory: {used} of {limit} used (cgroup {cgroup.cgroup_parent}); {kills}")
    click.echo(f"compose files: {' '.join(f'-f {p.name}' for p in lab.compose_files)}")
    click.echo(f"frontend: {lab.frontend_url}")
    click.echo(f"backend health: {lab.health_url}")
    from incident_console.lab.load import LAB_ROUTES

    # The truth a leak estimate is checked against (the backend's own KEEPS table).
    keeps = ", ".join(f"{r.route} {r.keeps_kib(lab.settings.leak_kib):g} KiB" for r in LAB_ROUTES)
    click.echo(f"kept per request: {keeps}")


@lab_group.command("load")
@_project
@_directory
@click.option(
    "--duration",
    default=180.0,
    show_default=True,
    type=click.FloatRange(1, 3600),
    help="Seconds to run before stopping by itself.",
)
@click.option(
    "--rate",
    default=4.0,
    show_default=True,
    type=click.FloatRange(0.1, 200),
    help="Requests per second (through the frontend's loopback port).",
)
@click.option("--until-oom", is_flag=True, help="Stop at the first kernel OOM kill in the backend.")
@click.option(
    "--server",
    is_flag=True,
    help="Load the stack in the lab server (VM); --dir is then the server's folder.",
)
@click.option(
    "--mix",
    default="items",
    show_default=True,
    help="Routes to load: 'items' (the leaking one), 'mixed' (busy, rare, small leaks), "
    "or weights such as 'orders=55,items=25,users=15,reports=3'.",
)
@click.option(
    "--leak/--no-leak",
    default=True,
    show_default=True,
    help="--no-leak: the same requests, and the backend keeps nothing.",
)
def lab_load(
    project: str,
    directory: Path | None,
    duration: float,
    rate: float,
    until_oom: bool,
    server: bool,
    mix: str,
    leak: bool,
) -> None:
    """Load the leaking endpoint until a worker is OOM-killed (with the defaults: ~1 min)."""
    from incident_console.lab.lab import Lab, LabError
    from incident_console.lab.load import LoadStats, parse_mix, run_load
    from incident_console.lab.oom import KernelLogUnavailable

    try:
        routes = parse_mix(mix)
    except ValueError as exc:
        fail(f"--mix: {exc}")
        return
    try:
        if server:
            from incident_console.lab.server import LabServer

            # The frontend is forwarded to this machine's loopback; the kernel's kill lines
            # are read in the VM (as root: deploy may not read them).
            lab = LabServer(directory).lab()
        else:
            lab = Lab.existing(project, directory)
        known = {k.lines[-1] for k in lab.oom_kills()}
    except (LabError, KernelLogUnavailable) as exc:
        fail(str(exc))
        return
    stop = threading.Event()
    t0 = time.monotonic()

    checking = threading.Lock()

    def check(stats: LoadStats) -> None:
        try:
            used = lab.backend_memory_bytes()
        except (LabError, subprocess.TimeoutExpired) as exc:
            # A server out of memory answers slowly or not at all: say so, keep loading.
            click.echo(f"{stats.describe()} (backend memory unknown: {exc})")
        else:
            mem = f" backend {mib_text(used)}" if used is not None else ""
            click.echo(stats.describe() + mem)
        try:
            kills = lab.oom_kills()
        except (LabError, KernelLogUnavailable, subprocess.TimeoutExpired):
            return
        for kill in kills:
            if kill.lines[-1] not in known:
                known.add(kill.lines[-1])
                where = f" in {kill.service}" if kill.service else ""
                click.echo(
                    f"OOM kill after {time.monotonic() - t0:.0f} s: {kill.task} pid {kill.pid}"
                    + where
                )
                for line in kill.summary:
                    click.echo(f"  {line}")
                if until_oom:
                    stop.set()

    def check_then_release(stats: LoadStats) -> None:
        try:
            check(stats)
        finally:
            checking.release()

    def progress(stats: LoadStats) -> None:
        # The load paces its requests from this thread: the checks (several docker commands,
        # seconds each on a lab server's emulated CPU) run beside it, one at a time.
        if checking.acquire(blocking=False):
            threading.Thread(target=check_then_release, args=(stats,), daemon=True).start()

    try:
        if mix == "items" and leak:
            click.echo(f"loading {lab.leak_url} at {rate:g}/s for {duration:g} s")
            final = lab.load(duration_s=duration, rate=rate, progress=progress, stop=stop)
        else:
            weights = ", ".join(f"{r.name} {w:g}" for r, w in routes)
            off = "; leak off (lab_leak=off)" if not leak else ""
            click.echo(
                f"loading {lab.frontend_url} ({weights}) at {rate:g}/s for {duration:g} s{off}"
            )
            final = run_load(
                lab.frontend_url,
                duration,
                rate,
                max(4, 2 * lab.settings.workers),
                progress=progress,
                stop=stop,
                mix=routes,
                leak=leak,
            )
    except (LabError, ValueError) as exc:
        fail(str(exc))
        return
    with checking:  # the last check's lines come before the summary
        pass
    click.echo(f"done: {final.describe()}")


@lab_group.command("down")
@_project
@_directory
def lab_down(project: str, directory: Path | None) -> None:
    """Remove the lab's containers, network, volumes and files."""
    from incident_console.lab.lab import Lab, LabError

    try:
        Lab(project, directory).down()
    except LabError as exc:
        fail(str(exc))
        return
    click.echo(f"lab {project!r} removed")


lab_group.add_command(server_group)

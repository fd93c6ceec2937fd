"""`incident-console lab`: the seed's incident, reproduced on the local docker engine."""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import click


def fail(message: str) -> None:
    """cli.fail, imported late: cli.py imports this module, and a cycle hides its types."""
    from incident_console.cli import fail as cli_fail

    cli_fail(message)


_project = click.option(
    "--project", default="icl", show_default=True, help="Compose project name of the lab."
)
_directory = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the lab's files (default: <user data dir>/lab/<project>).",
)


def _mib(n: int) -> str:
    return f"{n / 1048576:.0f} MiB" if n else "none"


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
            f"{_mib(c.memory_limit):>9} {c.restarts}"
        )
    if lab.settings.host_memory:
        cgroup = lab.host_memory_cgroup
        usage = cgroup.usage()
        used = _mib(usage.used_bytes) if usage.used_bytes is not None else "unknown"
        limit = _mib(usage.limit_bytes) if usage.limit_bytes is not None else "none"
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
            mem = f" backend {_mib(used)}" if used is not None else ""
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


# -- the lab server: the stack in a VM ------------------------------------------------------

_server_dir = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the server's run files (default: <user data dir>/lab-server).",
)


@lab_group.group("server")
def server_group() -> None:
    """Today's compose server in a VM (qemu): Debian 13, cgroup v2, docker 26, compose v2.

    The image is built once with debootstrap (needs root) and cached; each run boots a
    throwaway copy of it. Everything is forwarded on 127.0.0.1 only.
    """


@server_group.command("up")
@_server_dir
@click.option("--memory", default="1536m", show_default=True, help="The VM's memory.")
@click.option(
    "--no-limits",
    is_flag=True,
    help="No container memory limit: under load the server itself runs out (host-wide OOM).",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), help="SSH port on 127.0.0.1 (default: a free one)."
)
@click.option("--mem-limit", default="256m", show_default=True, help="Backend memory limit.")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option("--extra", default=0, show_default=True, type=click.IntRange(0, 200))
@click.option(
    "--mirror",
    help="Debian mirror for the image build (default: $INCIDENT_CONSOLE_LAB_MIRROR, else apt's).",
)
def server_up(
    directory: Path | None,
    memory: str,
    no_limits: bool,
    port: int | None,
    mem_limit: str,
    workers: int,
    extra: int,
    mirror: str | None,
) -> None:
    """Build (once), boot the VM, start the lab's stack in it as `deploy`; print the target."""
    from incident_console.lab.model import LabError
    from incident_console.lab.server import LabServer

    server = LabServer(directory)
    try:
        report = server.up(
            memory, not no_limits, port, mem_limit, workers, extra, mirror, progress=click.echo
        )
    except LabError as exc:
        fail(f"{exc} (the VM, if it started, stays up: `incident-console lab server down`)")
        return
    build = f"build {report.build_s:.0f} s, " if report.build_s is not None else "cached image, "
    click.echo(f"up: {build}boot {report.boot_s:.0f} s, stack {report.stack_s:.0f} s")
    click.echo(f"target:   {report.target}")
    click.echo(f"frontend: {report.frontend_url}")
    limits = "no container limits" if no_limits else f"backend limit {mem_limit}"
    click.echo(f"stack:    {limits}, {workers} workers; VM memory {memory}")
    click.echo(f"next:     incident-console diagnose {report.target}")
    click.echo("          incident-console lab load --server")


@server_group.command("restack")
@_server_dir
@click.option(
    "--no-limits",
    is_flag=True,
    help="Recreate the stack with no container memory limit (else: with the limits).",
)
def server_restack(directory: Path | None, no_limits: bool) -> None:
    """Recreate the running server's stack with or without container memory limits."""
    from incident_console.lab.model import LabError
    from incident_console.lab.server import LabServer

    try:
        took = LabServer(directory).restack(not no_limits, progress=click.echo)
    except LabError as exc:
        fail(str(exc))
        return
    limits = "no container limits" if no_limits else "container limits"
    click.echo(f"stack:    recreated with {limits} in {took:.0f} s")


@server_group.command("status")
@_server_dir
def server_status(directory: Path | None) -> None:
    """Is the VM running: pid, ports, target, versions inside, the stack's containers."""
    from incident_console.lab.server import LabServer

    server = LabServer(directory)
    st = server.status()
    if st.state is None:
        click.echo(f"lab server: not started from {server.directory}")
        return
    if not st.running:
        click.echo(f"lab server: not running (qemu pid {st.state.pid} is gone)")
        return
    s = st.state
    click.echo(f"lab server: running, qemu pid {s.pid}, memory {s.memory}, ssh port {s.ssh_port}")
    click.echo(f"target:   {server.target(s)}")
    click.echo(f"frontend: http://127.0.0.1:{s.frontend_port}/")
    inside = ", ".join(f"{k} {v}" for k, v in st.versions.items())
    click.echo(f"inside:   {inside}")
    if st.error:
        click.echo(f"stack:    could not be read: {st.error}")
        return
    limits = "" if s.limits else " (no container limits)"
    click.echo(f"stack:    project {s.project!r}, {len(st.containers)} containers{limits}")
    for c in st.containers:
        click.echo(
            f"  {c.service:<10} {c.name:<24} {c.state:<11} {c.health or '-':<10} "
            f"{_mib(c.memory_limit):>9} {c.restarts}"
        )


@server_group.command("down")
@_server_dir
@click.option("--purge", is_flag=True, help="Also remove the cached image (rebuilt at next up).")
def server_down(directory: Path | None, purge: bool) -> None:
    """Stop the stack and the VM; the cached image stays unless --purge."""
    from incident_console.lab.server import LabServer

    for line in LabServer(directory).down(purge):
        click.echo(line)
    click.echo("lab server down")

"""`incident-console lab`: the seed's incident, reproduced on the local docker engine."""

from __future__ import annotations

import threading
import time
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
def lab_up(
    project: str, directory: Path | None, mem_limit: str, workers: int, port: int | None, extra: int
) -> None:
    """Start the lab and wait (60 s at most) until the backend is healthy."""
    from incident_console.lab.lab import Lab, LabError

    try:
        lab = Lab(project, directory, mem_limit, workers, port, extra)
        result = lab.up(progress=click.echo)
    except LabError as exc:
        fail(str(exc))
        return
    click.echo(
        f"backend healthy after {result.seconds_to_healthy:.1f} s "
        f"(memory limit {mem_limit}, {workers} workers)"
    )
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
    click.echo(f"frontend: {lab.frontend_url}")
    click.echo(f"backend health: {lab.health_url}")


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
def lab_load(
    project: str, directory: Path | None, duration: float, rate: float, until_oom: bool
) -> None:
    """Load the leaking endpoint until a worker is OOM-killed (with the defaults: ~1 min)."""
    from incident_console.lab.lab import Lab, LabError
    from incident_console.lab.load import LoadStats
    from incident_console.lab.oom import KernelLogUnavailable

    try:
        lab = Lab.existing(project, directory)
        known = {k.lines[-1] for k in lab.oom_kills()}
    except (LabError, KernelLogUnavailable) as exc:
        fail(str(exc))
        return
    stop = threading.Event()
    t0 = time.monotonic()

    def progress(stats: LoadStats) -> None:
        used = lab.backend_memory_bytes()
        mem = f" backend {_mib(used)}" if used is not None else ""
        click.echo(stats.describe() + mem)
        try:
            kills = lab.oom_kills()
        except (LabError, KernelLogUnavailable):
            return
        for kill in kills:
            if kill.lines[-1] not in known:
                known.add(kill.lines[-1])
                click.echo(
                    f"OOM kill after {time.monotonic() - t0:.0f} s: {kill.task} pid {kill.pid}"
                )
                for line in kill.summary:
                    click.echo(f"  {line}")
                if until_oom:
                    stop.set()

    click.echo(f"loading {lab.leak_url} at {rate:g}/s for {duration:g} s")
    try:
        final = lab.load(duration_s=duration, rate=rate, progress=progress, stop=stop)
    except (LabError, ValueError) as exc:
        fail(str(exc))
        return
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

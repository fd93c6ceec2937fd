"""`incident-console lab server`: today's compose server (Debian 13, cgroup v2, docker 26,
compose v2) in a qemu VM, with the lab's stack in it."""

from __future__ import annotations

from pathlib import Path

import click

from incident_console.cli import fail
from incident_console.lab.model import mib_text

_server_dir = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the server's run files (default: <user data dir>/lab-server).",
)


@click.group("server")
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
            f"{mib_text(c.memory_limit):>9} {c.restarts}"
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

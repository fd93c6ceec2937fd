"""`incident-console serve`: the console in a browser, through textual-serve.

Each browser session runs `incident-console [TARGET ...]` as its own subprocess, so a viewer
gets a live console of their own on the same hosts; `--read-only` is passed through for
viewers of a screen-shared triage. Loopback by default: the console can restart containers.
"""

from __future__ import annotations

import ipaddress
import shutil
import sys
from pathlib import Path

import click

from incident_console.cli import fail, target_options
from incident_console.transport.base import command_line


def console_argv(
    targets: tuple[str, ...],
    *,
    read_only: bool = False,
    theme: str | None = None,
    probes: tuple[str, ...] = (),
    config_file: str | None = None,
    identity: tuple[str, ...] = (),
    known_hosts: str | None = None,
    accept_new_host_key: bool = False,
) -> list[str]:
    """The argv each browser session runs: this same installation's console on the targets."""
    script = Path(sys.executable).with_name("incident-console")
    program = str(script) if script.exists() else (shutil.which("incident-console") or "")
    if program:
        argv = [program, "console"]
    else:  # not installed as a script (a bare checkout): the same entry point through Python
        argv = [sys.executable, "-c", "from incident_console.cli import main; main()", "console"]
    for key in identity:
        argv += ["-i", key]
    if known_hosts:
        argv += ["--known-hosts", known_hosts]
    if accept_new_host_key:
        argv.append("--accept-new-host-key")
    if read_only:
        argv.append("--read-only")
    if theme:
        argv += ["--theme", theme]
    if config_file:
        argv += ["--config", config_file]
    for url in probes:
        argv += ["--probe", url]
    return [*argv, *(targets or ("local",))]


def is_loopback(bind: str) -> bool:
    """True when `bind` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if bind == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind).is_loopback
    except ValueError:
        return False


@click.command()
@click.argument("targets", nargs=-1)
@target_options
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--read-only", is_flag=True, help="Viewers can look but not change the server.")
@click.option("--theme", help="The console's theme.")
@click.option("--probe", "probes", multiple=True, help="URL to probe over HTTP (repeatable).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Config file.")
@click.option(
    "--public-url", help="The URL browsers use to reach this server (behind a proxy or tunnel)."
)
def serve(
    targets: tuple[str, ...],
    identity: tuple[str, ...],
    known_hosts: str | None,
    accept_new_host_key: bool,
    bind: str,
    port: int,
    read_only: bool,
    theme: str | None,
    probes: tuple[str, ...],
    config_file: str | None,
    public_url: str | None,
) -> None:
    """Serve the console on TARGETs (default: local) to web browsers, for screen-shared triage."""
    from textual_serve.server import Server

    argv = console_argv(
        targets,
        read_only=read_only,
        theme=theme,
        probes=probes,
        config_file=config_file,
        identity=identity,
        known_hosts=known_hosts,
        accept_new_host_key=accept_new_host_key,
    )
    if not is_loopback(bind):
        click.echo(
            f"incident-console: warning: serving on {bind}:{port}: anyone who can reach it gets "
            f"the console{'' if read_only else ' and can change the server (use --read-only)'}",
            err=True,
        )
    if public_url is None:
        # A browser cannot connect to 0.0.0.0 or ::; it gets the name of this machine instead.
        shown = bind if bind not in ("0.0.0.0", "::") else "localhost"
        shown = f"[{shown}]" if ":" in shown else shown
        public_url = f"http://{shown}:{port}"
    # textual-serve runs the command through a shell: the one place argv becomes shell text.
    server = Server(
        command_line(argv),
        host=bind,
        port=port,
        title=f"incident-console {' '.join(targets or ('local',))}",
        public_url=public_url.rstrip("/"),
    )
    try:
        server.serve()
    except OSError as exc:
        fail(f"cannot serve on {bind}:{port}: {exc.strerror or exc}")

"""`incident-console serve`: the console in browsers, one collection for all of them.

Screen-shared triage must cost the dying server what one engineer does. So serve runs ONE
HostMonitor per target (one SSH connection, one sampler, one journal) and every browser's
console is a view of it: textual-serve starts `incident-console console --relay SOCKET` per
browser, which draws the normal console from serve's state and events (see
monitor/relay.py). Viewers are read-only unless `--allow-changes`; a change they make goes
through serve's monitor, which journals it. Each browser's console ends with its browser, and
serve ends them all when it stops (ui/web.py). Loopback by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import shutil
import sys
import tempfile
from pathlib import Path

import click

from incident_console.cli import fail, target_options
from incident_console.transport.base import TransportError


class StartFailed(Exception):
    """A host of the collection could not be reached when serve started (the one-line why)."""


def viewer_argv(
    relay: Path, *, theme: str | None = None, config_file: str | None = None
) -> list[str]:
    """The argv each browser session runs: this installation's console on serve's relay."""
    script = Path(sys.executable).with_name("incident-console")
    program = str(script) if script.exists() else (shutil.which("incident-console") or "")
    if program:
        argv = [program, "console"]
    else:  # not installed as a script (a bare checkout): the same entry point through Python
        argv = [sys.executable, "-c", "from incident_console.cli import main; main()", "console"]
    argv += ["--relay", str(relay)]
    if theme:
        argv += ["--theme", theme]
    if config_file:
        argv += ["--config", config_file]
    return argv


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
@click.option(
    "--read-only", is_flag=True, help="Viewers can look but not change the server (the default)."
)
@click.option(
    "--allow-changes",
    is_flag=True,
    help="Let viewers restart containers (through serve's one connection, journaled).",
)
@click.option("--theme", help="The console's theme.")
@click.option("--probe", "probes", multiple=True, help="URL to probe over HTTP (repeatable).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Config file.")
@click.option(
    "--journal",
    "journal_file",
    type=click.Path(dir_okay=False),
    help="Incident journal file (default: a new file in the user data folder).",
)
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
    allow_changes: bool,
    theme: str | None,
    probes: tuple[str, ...],
    config_file: str | None,
    journal_file: str | None,
    public_url: str | None,
) -> None:
    """Serve the console on TARGETs (default: local) to web browsers, for screen-shared triage."""
    from incident_console.commands.console import load_console_settings, open_monitors
    from incident_console.monitor.relay import RelayServer
    from incident_console.ui.web import ConsoleServer

    if read_only and allow_changes:
        fail("--read-only and --allow-changes contradict each other")
    settings = load_console_settings(config_file, read_only=not allow_changes, theme=theme)
    journal, monitors = open_monitors(
        settings, targets, probes, journal_file, identity, known_hosts, accept_new_host_key
    )
    changes = allow_changes and not settings.read_only
    if not is_loopback(bind):
        click.echo(
            f"incident-console: warning: serving on {bind}:{port}: anyone who can reach it gets "
            f"the console{' and can change the server' if changes else ' (read-only)'}",
            err=True,
        )
    if public_url is None:
        # A browser cannot connect to 0.0.0.0 or ::; it gets the name of this machine instead.
        shown = bind if bind not in ("0.0.0.0", "::") else "localhost"
        shown = f"[{shown}]" if ":" in shown else shown
        public_url = f"http://{shown}:{port}"
    # The relay's socket lives in a folder only we can enter (mkdtemp makes it 0700).
    folder = Path(tempfile.mkdtemp(prefix="incident-console-serve-"))
    relay = RelayServer(monitors, allow_changes=changes)
    names = " ".join(m.host.name for m in monitors)

    async def startup() -> None:
        for monitor in monitors:
            try:
                await monitor.start()
            except TransportError as error:
                await shutdown()
                raise StartFailed(str(error)) from None
        await relay.start(folder / "relay.sock")

    async def shutdown() -> None:
        await relay.close()
        for monitor in monitors:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(monitor.stop(), 10)

    server = ConsoleServer(
        viewer_argv(folder / "relay.sock", theme=theme, config_file=config_file),
        startup=startup,
        shutdown=shutdown,
        host=bind,
        port=port,
        title=f"incident-console {names}",
        public_url=public_url.rstrip("/"),
    )
    try:
        server.serve()
    except StartFailed as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot serve on {bind}:{port}: {exc.strerror or exc}")
    finally:
        journal.close()
        with contextlib.suppress(OSError):
            (folder / "relay.sock").unlink()
        with contextlib.suppress(OSError):
            folder.rmdir()
        click.echo(f"incident journal: {journal.path}", err=True)

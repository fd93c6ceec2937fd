"""`incident-console [TARGET ...]`: the Textual console (the default command)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from incident_console.cli import fail, open_target, target_options

if TYPE_CHECKING:
    from incident_console.config import Settings
    from incident_console.monitor.host_monitor import HostMonitor
    from incident_console.monitor.journal import Journal


def load_console_settings(
    config_file: str | None, *, read_only: bool = False, theme: str | None = None
) -> Settings:
    """The config (a bad one fails with its line), with the command line's flags applied."""
    from incident_console.config import ConfigError, load_settings
    from incident_console.locations import default_config_file

    path = Path(config_file) if config_file else default_config_file()
    try:
        settings = load_settings(path, required=config_file is not None)
    except ConfigError as error:
        fail(str(error))
    updates: dict[str, object] = {"read_only": settings.read_only or read_only}
    if theme:
        updates["theme"] = theme
    return settings.updated(**updates)


def open_monitors(
    settings: Settings,
    targets: tuple[str, ...],
    probes: tuple[str, ...],
    journal_file: str | None,
    identity: tuple[str, ...],
    known_hosts: str | None,
    accept_new_host_key: bool,
) -> tuple[Journal, list[HostMonitor]]:
    """One journal and a HostMonitor (not started) per target: the console's, and serve's."""
    from incident_console.config import HostConfig
    from incident_console.monitor.host_monitor import HostMonitor
    from incident_console.monitor.journal import Journal, default_journal_path

    for url in probes:
        if not url.startswith(("http://", "https://")):
            fail(f"--probe {url!r}: not an http(s) URL")
    if targets:
        hosts = [settings.host(t) for t in targets]
    else:
        hosts = settings.hosts or [HostConfig(target="local")]
    names = [h.target for h in hosts]
    if len(set(names)) != len(names):
        fail(f"a target is named twice: {' '.join(names)}")
    journal = Journal(Path(journal_file) if journal_file else default_journal_path(names))
    monitors = []
    for host_config in hosts:
        host = open_target(host_config.target, identity, known_hosts, accept_new_host_key)
        monitors.append(
            HostMonitor(
                host,
                journal=journal,
                probes=[*host_config.probes, *probes],
                read_only=settings.read_only or host_config.read_only,
            )
        )
    return journal, monitors


def view_relay(settings: Settings, path: Path) -> None:
    """A browser session of `serve`: the console on serve's collection, ending with it."""
    from incident_console.monitor.relay import RelayConnection, RelayError
    from incident_console.ui.app import make_app

    try:
        connection = RelayConnection.open(path)
    except RelayError as error:
        fail(str(error))
    settings = settings.updated(read_only=settings.read_only or not connection.allow_changes)
    app = make_app(settings, connection.monitors)
    # serve stopped (or was killed): this view has nothing left to show, and ends.
    connection.on_closed = lambda _reason: app.exit(0)
    app.run()
    sys.exit(app.return_code or 0)


@click.command()
@click.argument("targets", nargs=-1)
@click.option("--read-only", is_flag=True, help="Watch only: no restart, no remediation.")
@click.option("--theme", help="Theme name (incident-dark, incident-light, projector, or yours).")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="Config file (default: config.toml in the user config folder).",
)
@click.option("--probe", "probes", multiple=True, help="URL to probe over HTTP (repeatable).")
@click.option(
    "--journal",
    "journal_file",
    type=click.Path(dir_okay=False),
    help="Incident journal file (default: a new file in the user data folder).",
)
@click.option("--relay", "relay_path", hidden=True, help="Be a viewer of serve's collection.")
@target_options
def console(
    targets: tuple[str, ...],
    read_only: bool,
    theme: str | None,
    config_file: str | None,
    probes: tuple[str, ...],
    journal_file: str | None,
    relay_path: str | None,
    identity: tuple[str, ...],
    known_hosts: str | None,
    accept_new_host_key: bool,
) -> None:
    """Open the console on the TARGETs (default: the config's hosts, else local)."""
    from incident_console.ui.app import make_app

    settings = load_console_settings(config_file, read_only=read_only, theme=theme)
    if relay_path is not None:
        view_relay(settings, Path(relay_path))
        return
    journal, monitors = open_monitors(
        settings, targets, probes, journal_file, identity, known_hosts, accept_new_host_key
    )
    app = make_app(settings, monitors)
    try:
        app.run()
    finally:
        journal.close()
        click.echo(f"incident journal: {journal.path}", err=True)
        if journal.error:
            click.echo(f"incident-console: {journal.error}", err=True)
    sys.exit(app.return_code or 0)

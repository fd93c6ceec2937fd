"""`incident-console [TARGET ...]`: the Textual console (the default command)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from incident_console.cli import fail, open_target, target_options


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
@target_options
def console(
    targets: tuple[str, ...],
    read_only: bool,
    theme: str | None,
    config_file: str | None,
    probes: tuple[str, ...],
    journal_file: str | None,
    identity: tuple[str, ...],
    known_hosts: str | None,
    accept_new_host_key: bool,
) -> None:
    """Open the console on the TARGETs (default: the config's hosts, else local)."""
    from incident_console.config import ConfigError, HostConfig, load_settings
    from incident_console.locations import default_config_file
    from incident_console.monitor.host_monitor import HostMonitor
    from incident_console.monitor.journal import Journal, default_journal_path
    from incident_console.ui.app import make_app

    path = Path(config_file) if config_file else default_config_file()
    try:
        settings = load_settings(path, required=config_file is not None)
    except ConfigError as error:
        fail(str(error))
        return
    for url in probes:
        if not url.startswith(("http://", "https://")):
            fail(f"--probe {url!r}: not an http(s) URL")
    updates: dict[str, object] = {"read_only": settings.read_only or read_only}
    if theme:
        updates["theme"] = theme
    settings = settings.updated(**updates)
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
    app = make_app(settings, monitors)
    try:
        app.run()
    finally:
        journal.close()
        click.echo(f"incident journal: {journal.path}", err=True)
        if journal.error:
            click.echo(f"incident-console: {journal.error}", err=True)
    sys.exit(app.return_code or 0)

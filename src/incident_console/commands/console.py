"""`incident-console [TARGET ...]`: the Textual console (the default command)."""

from __future__ import annotations

import re
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
    """The config, with the command line's flags applied; bad input ends the command here.

    Every problem in the config is printed (``FILE:LINE: key: why``, keymap names checked
    against the console's binding ids) and exits 2; then a theme no theme file defines, from
    `theme` or the config, exits 1 with the themes there are: before any app opens.
    """
    from incident_console.config import ConfigError, find_key_line, load_settings
    from incident_console.locations import default_config_file

    if config_file == "":
        fail("--config: empty file name")
    path = Path(config_file) if config_file else default_config_file()
    try:
        settings = load_settings(path, required=config_file is not None, known_actions=binding_ids)
    except ConfigError as error:
        for line in error.errors:
            click.echo(f"incident-console: {line}", err=True)
        sys.exit(2)
    updates: dict[str, object] = {"read_only": settings.read_only or read_only}
    if theme is not None:
        updates["theme"] = theme
    settings = settings.updated(**updates)
    names = available_themes(settings)
    if settings.theme not in names:
        where = "--theme" if theme is not None else "theme (the default)"
        if theme is None:
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:  # no config file: the default theme is what is missing
                text = ""
            if re.search(r"^\s*theme\s*=", text, re.MULTILINE):
                where = f"{path}:{find_key_line(text, ('theme',))}: theme"
        click.echo(
            f"incident-console: {where}: unknown theme {settings.theme!r}; "
            f"themes: {', '.join(names)}",
            err=True,
        )
        sys.exit(1)
    return settings


def available_themes(settings: Settings) -> list[str]:
    """The theme names the console will have: shipped, the user's, then the config's folders."""
    from incident_console.locations import builtin_theme_dirs, user_theme_dir
    from incident_console.ui.themes import theme_names

    return theme_names([*builtin_theme_dirs(), user_theme_dir(), *settings.theme_dirs])


def binding_ids() -> set[str]:
    """Every binding id a config's keymap may remap: those of the console's app, screens and
    widgets (Textual ignores an unknown id silently). Loads the whole UI: called only for a
    config that has a keymap."""
    import importlib
    import pkgutil

    from textual.binding import Binding
    from textual.dom import DOMNode

    import incident_console.ui

    for info in pkgutil.walk_packages(incident_console.ui.__path__, "incident_console.ui."):
        if info.name != "incident_console.ui.web":  # the web server: no bindings, heavy imports
            importlib.import_module(info.name)
    ids: set[str] = set()
    seen: set[type] = set()
    todo: list[type] = [DOMNode]
    while todo:
        subclasses: list[type] = todo.pop().__subclasses__()
        for cls in subclasses:
            if cls in seen:
                continue
            seen.add(cls)
            todo.append(cls)
            if cls.__module__.startswith("incident_console."):
                for binding in vars(cls).get("BINDINGS", ()):
                    if isinstance(binding, Binding) and binding.id:
                        ids.add(binding.id)
    return ids


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

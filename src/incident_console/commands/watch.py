"""`incident-console watch`: the seed's monitor_access.sh, done so it can run alone at night."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from incident_console.cli import fail, open_target, target_options
from incident_console.monitor.journal import Journal, default_journal_path
from incident_console.watch.policy import Policy, PolicyError, default_policy_path, load_policy

if TYPE_CHECKING:
    from incident_console.watch.runner import Watch


def _policy_or_exit(path: str | None) -> Policy:
    """The policy, or every error in it (file:line:col) on stderr and exit 1."""
    try:
        return load_policy(path)
    except PolicyError as exc:
        for error in exc.errors:
            click.echo(f"incident-console: policy {error}", err=True)
        sys.exit(1)


def _read_only_targets(targets: list[str], config: str | None) -> set[str]:
    """Targets the config file marks read-only (all of them with a global read_only)."""
    from incident_console.config import ConfigError, load_settings
    from incident_console.locations import default_config_file

    if config == "":
        fail("--config: empty file name")
    path = Path(config) if config else default_config_file()
    try:
        settings = load_settings(path, required=config is not None)
    except ConfigError as exc:
        for line in exc.errors:  # every problem in the file, one line each
            click.echo(f"incident-console: {line}", err=True)
        sys.exit(2)
    return {t for t in targets if settings.read_only or settings.host(t).read_only}


async def _watch(watch: Watch) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await watch.run(stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


@click.command()
@click.argument("targets", nargs=-1)
@target_options
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False),
              help="Policy file (default: the shipped one, the seed's monitor_access.sh).")  # fmt: skip
@click.option("--journal", "journal_path", type=click.Path(dir_okay=False),
              help="Journal file (default: a new one in the user data dir).")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Decide and journal, but change nothing.")
@click.option("--read-only", is_flag=True, help="Watch and notify only, on every target.")
@click.option("--config", type=click.Path(dir_okay=False), help="Config file (read_only hosts).")
@click.option("-q", "--quiet", is_flag=True, help="No status lines (escalations go to stderr).")
@click.option("--check", is_flag=True, help="Validate the policy and exit (0 valid, 1 not).")
@click.option("--print-policy", is_flag=True, help="Print the default policy and exit.")
def watch(
    targets: tuple[str, ...],
    identity: tuple[str, ...],
    known_hosts: str | None,
    accept_new_host_key: bool,
    policy_path: str | None,
    journal_path: str | None,
    dry_run: bool,
    read_only: bool,
    config: str | None,
    quiet: bool,
    check: bool,
    print_policy: bool,
) -> None:
    """Watch TARGETs (default: local) unattended: probe, restart under limits, notify.

    Runs until SIGTERM or SIGINT (exit 0). A malformed policy exits 1; an unreachable host or
    bad option exits 2.
    """
    if print_policy:
        click.echo(default_policy_path().read_text(encoding="utf-8"), nl=False)
        return
    policy = _policy_or_exit(policy_path)
    if check:
        click.echo(
            f"policy {policy_path or default_policy_path()}: {len(policy.probes)} probes, "
            f"{len(policy.rules)} rules, at most {policy.limits.restarts_per_hour} restarts "
            "per service per hour"
        )
        for note in policy.probe_notes():
            click.echo(note)
        return

    from incident_console.transport.targets import describe_error
    from incident_console.watch.runner import Watch, WatchTarget

    names = list(targets) or ["local"]
    if len(set(names)) != len(names):
        fail("a target is named twice")
    for probe in policy.probes:
        if probe.host is not None and probe.host not in names:
            fail(f"policy probe {probe.name!r} belongs to {probe.host!r}, which is not watched")
    locked = set(names) if read_only else _read_only_targets(names, config)
    hosts = []
    for name in names:
        host = open_target(name, identity, known_hosts, accept_new_host_key)
        hosts.append(WatchTarget(name, host, read_only=name in locked))
    journal = Journal(Path(journal_path) if journal_path else default_journal_path(names))
    say = None if quiet else (lambda line: click.echo(line))
    runner = Watch(
        hosts,
        policy,
        journal=journal,
        dry_run=dry_run,
        out=say,
        alert=lambda line: click.echo(line, err=True),
    )
    mode = "dry-run, " if dry_run else ""
    if locked:
        mode += f"read-only: {', '.join(sorted(locked))}, "
    if say is not None:
        say(
            f"watching {', '.join(names)} ({mode}policy {policy_path or default_policy_path()}, "
            f"journal {journal.path})"
        )
        for note in policy.probe_notes():
            say(note)
    try:
        asyncio.run(_watch(runner))
    except Exception as exc:  # one line, never a traceback
        fail(describe_error(exc, names[0]))
    finally:
        journal.close()

"""The `incident-console` command line.

`incident-console [TARGET ...]` opens the console (on `local` when no target is named); the
other subcommands (diagnose, runbook, report, serve, watch, lab) run headless on the same layers.
Every failure the user can cause ends in one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from incident_console import __version__

F = TypeVar("F", bound=Callable[..., Any])


class DefaultCommandGroup(click.Group):
    """A group whose first argument, when it is no subcommand, goes to the `console` command.

    So `incident-console prod staging` opens the console on two hosts, and
    `incident-console diagnose prod` runs the subcommand.
    """

    default_command = "console"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if self.default_command in self.commands:
            first = next((a for a in args if not a.startswith("-")), None)
            wants_help = any(a in ("--help", "-h", "--version") for a in args)
            if first not in self.commands and not (wants_help and first is None):
                args = [self.default_command, *args]
        return super().parse_args(ctx, args)


def target_options(func: F) -> F:
    """The connection options of every command that takes a target."""

    @click.option(
        "-i", "--identity", "identity", type=click.Path(dir_okay=False), multiple=True,
        help="Private key file for SSH (repeatable; ~/.ssh/config and ssh-agent are used too).",
    )
    @click.option(
        "--known-hosts", type=click.Path(dir_okay=False),
        help="known_hosts file to verify host keys against (default: ~/.ssh/known_hosts).",
    )
    @click.option(
        "--accept-new-host-key", is_flag=True,
        help="Trust an unknown host's key on first use and record it. A changed key is always refused.",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def fail(message: str) -> None:
    """Print one line for the user and exit 2."""
    click.echo(f"incident-console: {message}", err=True)
    sys.exit(2)


@click.group(cls=DefaultCommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="incident-console")
def main() -> None:
    """A console for the on-call engineer of a docker-compose server running out of memory.

    With no subcommand, opens the console on the TARGETs named (default: local).
    A TARGET is `local`, an alias from ~/.ssh/config, user@host, or ssh://user@host:port.
    """


# Subcommands are registered below, each by the change that implements it.

from incident_console.commands.lab import lab_group  # noqa: E402

main.add_command(lab_group)

from incident_console.commands.diagnose import diagnose  # noqa: E402

main.add_command(diagnose)

from incident_console.commands.runbook import runbook_group  # noqa: E402

main.add_command(runbook_group)

from incident_console.commands.report import report  # noqa: E402

main.add_command(report)

from incident_console.commands.serve import serve  # noqa: E402

main.add_command(serve)

from incident_console.commands.watch import watch  # noqa: E402

main.add_command(watch)

from incident_console.commands.console import console  # noqa: E402

main.add_command(console)

"""The `incident-console` command line.

`incident-console [TARGET ...]` opens the console (on `local` when no target is named); the
other subcommands (diagnose, runbook, report, serve, watch, lab) run headless on the same layers.
Every failure the user can cause ends in one line on stderr, never a traceback: exit 2 for
a bad target, option or file (:func:`fail`), 1 where README.md's "Exit codes" says so (an
unknown theme, problems found, a check failed, an invalid runbook or policy).
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from incident_console import __version__

if TYPE_CHECKING:
    from incident_console.transport.base import Host

F = TypeVar("F", bound=Callable[..., Any])


class DefaultCommandGroup(click.Group):
    """A group of lazily loaded subcommands whose default is `console`.

    When the first argument is no subcommand it goes to `console`, so
    `incident-console prod staging` opens the console on two hosts, and
    `incident-console diagnose prod` runs the subcommand.
    """

    default_command = "console"

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(SUBCOMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in SUBCOMMANDS and cmd_name not in self.commands:
            module_name, _, attr = SUBCOMMANDS[cmd_name].partition(":")
            command = getattr(importlib.import_module(module_name), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{SUBCOMMANDS[cmd_name]} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        names = set(self.list_commands(ctx))
        if self.default_command in names:
            first = next((a for a in args if not a.startswith("-")), None)
            wants_help = any(a in ("--help", "-h", "--version") for a in args)
            if first not in names and not (wants_help and first is None):
                args = [self.default_command, *args]
        return super().parse_args(ctx, args)


def target_options(func: F) -> F:
    """The connection options of every command that takes a target."""

    @click.option(
        "-i",
        "--identity",
        "identity",
        type=click.Path(dir_okay=False),
        multiple=True,
        help="Private key file for SSH (repeatable; ~/.ssh/config and ssh-agent are used too).",
    )
    @click.option(
        "--known-hosts",
        type=click.Path(dir_okay=False),
        help="known_hosts file to verify host keys against (default: ~/.ssh/known_hosts).",
    )
    @click.option(
        "--accept-new-host-key",
        is_flag=True,
        help="Trust an unknown host's key on first use and record it. A changed key is always refused.",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def fail(message: str) -> NoReturn:
    """Print one line for the user and exit 2."""
    click.echo(f"incident-console: {message}", err=True)
    sys.exit(2)


def open_target(
    target: str,
    identity: tuple[str, ...] = (),
    known_hosts: str | None = None,
    accept_new_host_key: bool = False,
) -> Host:
    """The Host for a TARGET and the `target_options`, not yet connected; a bad target, or a
    `-i` key file that is not there, fails (naming it) before any connection is tried."""
    from incident_console.transport.ssh_keys import check_identity_files
    from incident_console.transport.targets import open_host, parse_target

    try:
        if parse_target(target).kind == "ssh":
            check_identity_files(identity)
        return open_host(
            target,
            identity=identity,
            known_hosts=known_hosts,
            accept_new_host_key=accept_new_host_key,
        )
    except ValueError as exc:
        fail(str(exc))


@click.group(cls=DefaultCommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="incident-console")
def main() -> None:
    """A console for the on-call engineer of a docker-compose server running out of memory.

    With no subcommand, opens the console on the TARGETs named (default: local).
    A TARGET is `local`, an alias from ~/.ssh/config, user@host, or ssh://user@host:port.
    """


#: Subcommands, loaded only when named: `diagnose` never imports Textual, `--help` stays fast,
#: and the command modules can import `fail`/`target_options` from here without a cycle.
SUBCOMMANDS: dict[str, str] = {
    "console": "incident_console.commands.console:console",
    "diagnose": "incident_console.commands.diagnose:diagnose",
    "runbook": "incident_console.commands.runbook:runbook_group",
    "report": "incident_console.commands.report:report",
    "serve": "incident_console.commands.serve:serve",
    "watch": "incident_console.commands.watch:watch",
    "lab": "incident_console.commands.lab:lab_group",
}

"""`incident-console runbook check|list|show|run|undo|import`."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from incident_console.cli import fail, open_target, target_options
from incident_console.runbook.engine import StepRecord, StepState
from incident_console.runbook.loader import RunbookError, list_builtin, load_runbook, resolve
from incident_console.runbook.schema import Runbook, Step, render

if TYPE_CHECKING:
    from incident_console.runbook.variables import Variables


def _load_or_fail(name: str) -> Runbook:
    try:
        return load_runbook(name)
    except RunbookError as exc:
        for error in exc.errors:
            click.echo(str(error), err=True)
        sys.exit(2)


@click.group("runbook")
def runbook_group() -> None:
    """Runbooks that run and check themselves (diagnose, remediate, verify)."""


@runbook_group.command("check")
@click.argument("files", nargs=-1, required=True)
def check_cmd(files: tuple[str, ...]) -> None:
    """Validate runbook FILEs: every error with its line. Exit 0 valid, 1 invalid.

    A valid runbook may still get warnings (exit 0): a diagnose or verify step whose command
    the classifier does not know to be read-only (it will ask first and read-only mode
    refuses it), or one that never ends.
    """
    bad = 0
    for name in files:
        try:
            runbook = load_runbook(name)
        except RunbookError as exc:
            bad += 1
            for error in exc.errors:
                click.echo(str(error))
            continue
        click.echo(f"{resolve(name)}: ok ({runbook.name}, {len(runbook.steps)} steps)")
        for warning in _warnings(runbook):
            click.echo(f"{resolve(name)}: warning: {warning}")
    sys.exit(1 if bad else 0)


def _warnings(runbook: Runbook) -> list[str]:
    """What is valid but surprising: a `diagnose` step that changes the server, and so on."""
    out: list[str] = []
    for i, step in enumerate(runbook.steps):
        found = step.command_class
        if found is None:
            continue
        if found.changes and step.kind != "remediate":
            out.append(
                f"steps[{i}] {step.id}: kind {step.kind} but the command changes the server "
                f"({found.reason}): it asks first and read-only mode refuses it"
            )
        if found.never_ends or found.interactive:
            out.append(
                f"steps[{i}] {step.id}: the command is {found.summary} ({found.reason}); "
                f"it runs until its timeout ({step.timeout})"
            )
    return out


@runbook_group.command("list")
def list_cmd() -> None:
    """The built-in runbooks."""
    for path in list_builtin():
        runbook = load_runbook(path)
        click.echo(f"{runbook.name:<24} {len(runbook.steps):>2} steps  {runbook.title}")


@runbook_group.command("show")
@click.argument("name")
def show_cmd(name: str) -> None:
    """Print NAME|FILE's steps: each command or change, its class and reason, and whether it
    asks first or is disabled in read-only mode."""
    from incident_console.commands.runbook_show import describe_runbook

    runbook = _load_or_fail(name)
    click.echo(describe_runbook(runbook), nl=False)


def _print_record(record: StepRecord, verbose_output: bool) -> None:
    mark = {
        StepState.PASSED: "PASS",
        StepState.FAILED: "FAIL",
        StepState.SKIPPED: "SKIP",
        StepState.ROLLED_BACK: "UNDO",
    }.get(record.state, record.state.value.upper())
    digest = record.digest
    if digest:
        click.echo(f"    output: {digest.get('lines', 0)} lines, sha256 {digest['sha256'][:12]}")
        if verbose_output:
            for line in digest.get("tail", [])[-8:]:
                click.echo(f"      | {line[:160]}")
    for check in record.checks:
        click.echo(f"    {check.status.value:>7}  {check.name}: {check.detail}")
    click.echo(f"  => {mark}: {record.verdict}")


def _step_header(i: int, total: int, step: Step, values: dict[str, str]) -> str:
    """'[6/10] remediate gunicorn-settings: Title  (project shop on prod)'."""
    from incident_console.runbook.variables import shown

    head = f"\n[{i}/{total}] {step.kind} {step.id}: {render(step.title, shown(values))}"
    if step.mutates:
        # Which stack a change lands in is part of what the operator agrees to.
        head += f"  (project {values.get('project') or 'unknown'} on {values.get('host', '')})"
    return head


def _print_variables(runbook: Runbook, variables: Variables) -> None:
    """Every variable with its reason; unknown ones say why and how to set them."""
    click.echo("variables:")
    used = runbook.known_variables
    for name in sorted(variables.values):
        value, why = variables.values[name], variables.why.get(name, "")
        if value:
            click.echo(f"  {name} = {value}    ({why})")
        elif name in used and why != "not discovered":
            click.echo(f"  {name} = unknown    ({why})")


async def _run(runbook: Runbook, target: str, opts: dict[str, Any], sets: dict[str, str]) -> int:
    from incident_console.monitor.host_monitor import HostMonitor
    from incident_console.monitor.journal import Journal, default_journal_path
    from incident_console.monitor.leaks import leak_followups
    from incident_console.runbook.actions import HostExecutor
    from incident_console.runbook.engine import Engine
    from incident_console.runbook.runner import Runner
    from incident_console.runbook.session import gather, stop_monitor
    from incident_console.transport.targets import describe_error

    host = open_target(target, opts["identity"], opts["known_hosts"], opts["accept_new_host_key"])
    # A dry run changes nothing, this machine included: no journal file is made.
    path = None
    if not opts["dry_run"]:
        path = Path(opts["journal"]) if opts["journal"] else default_journal_path([host.name])
    journal = Journal(path) if path is not None else None
    probes = list(opts["probes"])
    if sets.get("health_url") and sets["health_url"] not in probes:
        probes.append(sets["health_url"])
    # Read-only (and dry-run) lock the monitor's door: no step, whatever its kind, can change
    # the server through it.
    read_only = bool(opts["dry_run"] or opts.get("read_only"))
    monitor = HostMonitor(host, journal=journal, probes=probes, read_only=read_only)
    try:
        await monitor.start()
    except Exception as exc:
        if journal is not None:
            journal.close()
        fail(describe_error(exc, target))
        return 2
    try:
        click.echo(
            f"runbook {runbook.name} on {host.name}; "
            + (f"journal {path}" if path is not None else "dry run: no journal")
        )
        variables = await gather(monitor, runbook, sets)
        if variables.ambiguous:
            # Two stacks with the same service: patching the wrong one is worse than nothing.
            click.echo(f"incident-console: {variables.ambiguous}; nothing changed", err=True)
            code = 2
            return code
        _print_variables(runbook, variables)
        engine = Engine(runbook, variables.values, read_only=read_only)
        executor = HostExecutor(monitor)
        if opts["dry_run"]:
            for i, record in enumerate(engine.records, 1):
                step = record.step
                click.echo(_step_header(i, len(engine.records), step, variables.values))
                click.echo(
                    "    "
                    + (await executor.preview(step, variables.values)).replace("\n", "\n    ")
                )
            return 0
        last_print = [0.0]

        def on_change(record: StepRecord) -> None:
            # Long watch windows say how they are going every 30 s.
            if record.state is StepState.RUNNING and record.step.action == "wait":
                now = time.time()
                if now - last_print[0] >= 30 and record.checks:
                    last_print[0] = now
                    states = ", ".join(f"{c.name} {c.status.value}" for c in record.checks)
                    click.echo(f"    ... {int(now - (record.started or now))} s: {states}")

        def on_start(record: StepRecord) -> None:
            i = engine.records.index(record) + 1
            click.echo(_step_header(i, len(engine.records), record.step, variables.values))

        def on_done(record: StepRecord) -> None:
            if record.state is StepState.SKIPPED and record.started is None:
                on_start(record)
            _print_record(record, verbose_output=record.step.kind == "diagnose")

        async def confirm(record: StepRecord, preview: str) -> bool:
            click.echo("    " + preview.replace("\n", "\n    "))
            if opts["yes"]:
                return True
            if not sys.stdin.isatty():
                click.echo("    not confirmed (no terminal; pass --yes)")
                return False
            return await asyncio.to_thread(click.confirm, "    apply this change?", default=False)

        runner = Runner(engine, executor, on_change=on_change)
        code = await runner.run_all(confirm, on_start=on_start, on_done=on_done)
        passed = sum(r.state is StepState.PASSED for r in engine.records)
        click.echo(f"\n{passed}/{len(engine.records)} steps passed; exit {code}")
        followups = [*leak_followups(monitor.state), *runbook.followups]
        if code == 1 and followups:
            click.echo("If it persists:")
            for item in followups:
                click.echo(f"  - {item}")
        return code
    finally:
        stopped = await stop_monitor(monitor)
        if journal is not None:
            journal.close()
        if not stopped:
            # A source that will not end must not keep the verdict from the caller.
            click.echo("incident-console: the monitor did not stop; exiting anyway", err=True)
            sys.stdout.flush()
            os._exit(code if "code" in locals() else 2)


@runbook_group.command("run")
@click.argument("name")
@click.argument("target", default="local")
@target_options
@click.option("--yes", is_flag=True, help="Apply remediate steps without asking.")
@click.option("--dry-run", is_flag=True, help="Show every step's command or diff; change nothing.")
@click.option(
    "--read-only", is_flag=True, help="Run only the steps that change nothing; refuse the rest."
)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a variable.")
@click.option("--journal", type=click.Path(dir_okay=False), help="Journal file (JSON lines).")
@click.option("--probe", "probes", multiple=True, help="URL to probe (the first is health_url).")
def run_cmd(
    name: str,
    target: str,
    identity: tuple[str, ...],
    known_hosts: str | None,
    accept_new_host_key: bool,
    yes: bool,
    dry_run: bool,
    read_only: bool,
    sets: tuple[str, ...],
    journal: str | None,
    probes: tuple[str, ...],
) -> None:
    """Run runbook NAME|FILE on TARGET. Exit 0 every check passed, 1 one failed, 2 error.

    When the service runs in more than one compose project on TARGET, nothing runs and it
    exits 2 naming every project: choose one with --set project=NAME.
    """
    from incident_console.runbook.variables import VariableError, parse_sets

    if dry_run and journal is not None:
        # Said rather than ignored: a dry run writes no journal, so the file would not appear.
        fail("--journal: a dry run writes no journal (it changes nothing, no file either)")
    runbook = _load_or_fail(name)
    try:
        overrides = parse_sets(list(sets), runbook)
    except VariableError as exc:
        fail(str(exc))
        return
    opts = {
        "identity": identity,
        "known_hosts": known_hosts,
        "accept_new_host_key": accept_new_host_key,
        "yes": yes,
        "dry_run": dry_run,
        "read_only": read_only,
        "journal": journal,
        "probes": probes,
    }
    try:
        code = asyncio.run(_run(runbook, target, opts, overrides))
    except KeyboardInterrupt:
        fail("interrupted")
        return
    sys.exit(code)


@runbook_group.command("undo")
@click.argument("journal", type=click.Path(exists=True, dir_okay=False))
@click.argument("target", required=False)
@target_options
def undo_cmd(
    journal: str,
    target: str | None,
    identity: tuple[str, ...],
    known_hosts: str | None,
    accept_new_host_key: bool,
) -> None:
    """Restore every file a run changed (newest first) from its backups, on TARGET."""
    from incident_console.monitor.host_monitor import HostMonitor
    from incident_console.monitor.journal import Journal
    from incident_console.runbook.actions import ActionError
    from incident_console.runbook.session import file_changes, undo_changes
    from incident_console.transport.targets import describe_error

    try:
        changes = file_changes(Path(journal))
    except (OSError, ValueError) as exc:
        fail(str(exc))
        return
    if not changes:
        click.echo(f"{journal}: no file changes to undo")
        sys.exit(0)
    target = target or str(changes[0].get("host") or "local")
    host = open_target(target, identity, known_hosts, accept_new_host_key)

    async def go() -> list[str]:
        monitor = HostMonitor(host, journal=Journal(Path(journal)), sources=[])
        await monitor.start()
        try:
            return await undo_changes(monitor, changes)
        finally:
            await monitor.stop()
            if monitor.journal is not None:
                monitor.journal.close()

    try:
        done = asyncio.run(go())
    except ActionError as exc:
        fail(str(exc))
        return
    except Exception as exc:  # one line, never a traceback
        fail(describe_error(exc, target))
        return
    for line in done:
        click.echo(line)


@runbook_group.command("import")
@click.argument("markdown", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the YAML here.")
def import_cmd(markdown: str, output: str | None) -> None:
    """Turn a Markdown runbook into a YAML one for review.

    Exit 0 written (what could not be imported is listed at its top), 1 the Markdown cannot
    be imported (`FILE:LINE: why`: empty, binary, not UTF-8, a code block never closed),
    2 the file cannot be read.
    """
    from incident_console.commands.runbook_show import import_summary
    from incident_console.runbook.importer import MarkdownError, import_markdown

    try:
        data = Path(markdown).read_bytes()
    except OSError as exc:
        fail(f"{markdown}: {exc.strerror or exc}")
        return
    try:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            if b"\0" in data:
                raise MarkdownError(markdown, line, "binary data, not Markdown") from None
            raise MarkdownError(
                markdown, line, f"not UTF-8 text (byte 0x{data[exc.start]:02x})"
            ) from None
        yaml_text = import_markdown(text, source=markdown)
    except MarkdownError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    summary = import_summary(yaml_text, markdown)
    if output:
        Path(output).write_text(yaml_text, encoding="utf-8")
        click.echo(f"wrote {output}: {summary}")
        click.echo(f"review it, then: incident-console runbook check {output}")
    else:
        click.echo(yaml_text, nl=False)
        click.echo(f"{markdown}: {summary}", err=True)

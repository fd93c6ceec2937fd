"""Actions: what a step does on the host, through the Host contract and the HostMonitor.

`run` runs an argv (or the runbook author's shell snippet, shown first as `sh -c ...`);
`compose_set` edits the compose file on the server (diff first, a timestamped byte-exact backup
next to it); `recreate` runs compose up --force-recreate for the service; `restart` restarts
its containers through the docker API; `wait` only watches.

Nothing here can write to the server except through the monitor's door
(:meth:`HostMonitor.change`): the executor holds the monitor's read-only host view, reads with
:meth:`HostMonitor.read` (which runs only what the classifier calls read-only), and every
command the classifier does not call read-only, whatever the step's kind, is a change. Every
command is journaled by the monitor; every file change is journaled as a `file_change` record
that `runbook undo` replays.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from incident_console.domain.commands import classify_argv
from incident_console.monitor.changes import Change, ChangeResult
from incident_console.monitor.host_monitor import HostMonitor, output_digest
from incident_console.monitor.journal import operator
from incident_console.runbook.checks import Checker
from incident_console.runbook.compose_files import split_files
from incident_console.runbook.compose_patch import (
    ComposeError,
    ComposeFile,
    backup_path,
    unified_diff,
)
from incident_console.runbook.engine import CheckResult, FileChange, StepRecord
from incident_console.runbook.schema import Check, Step, render, snippet_argv
from incident_console.runbook.variables import service_views
from incident_console.transport.base import CommandResult, TransportError, command_line


class ActionError(Exception):
    """An action could not be done; the message is one line for the operator."""


OutputCallback = Callable[[StepRecord], None]


def step_argv(step: Step, variables: dict[str, str]) -> list[str]:
    """The argv of a `run` step: the list as given, or `sh -c SNIPPET` for a snippet."""
    assert step.run is not None
    if isinstance(step.run, list):
        return [render(part, variables) for part in step.run]
    # The author wrote shell text; it runs as one argv element of `sh -c`, shown before it runs.
    # Variables are positional parameters, never spliced into that text.
    return snippet_argv(step.run, variables)


def compose_argv(
    prefix: list[str], variables: dict[str, str], service: str, *, compatibility: bool
) -> list[str]:
    """`docker compose -f F1 -f F2 -p PROJECT --project-directory DIR [--env-file E] up -d
    --force-recreate --no-deps SVC`.

    Every file of the labels (`compose_files`), in their order: with the first alone compose
    would recreate the service without the override, i.e. without the limit just written. A
    `compose_file` set by hand that is not one of them is passed after them. The project's
    working dir is where compose resolves relative paths and finds `.env` (v1 and v2); v2's
    env file label is passed as `--env-file`.
    """
    argv = list(prefix)
    if compatibility and prefix == ["docker-compose"]:
        argv.append("--compatibility")
    files = split_files(variables.get("compose_files", ""))
    patched = variables.get("compose_file", "")
    if patched and patched not in files:
        files.append(patched)
    for path in files:
        argv += ["-f", path]
    if variables.get("project"):
        argv += ["-p", variables["project"]]
    if variables.get("project_dir"):
        argv += ["--project-directory", variables["project_dir"]]
    if variables.get("env_file"):
        argv += ["--env-file", variables["env_file"]]
    return [*argv, "up", "-d", "--force-recreate", "--no-deps", service]


class HostExecutor:
    """Performs steps on the monitor's host and evaluates their checks."""

    def __init__(self, monitor: HostMonitor, *, checker: Checker | None = None) -> None:
        self.monitor = monitor
        # The view: it reads files and nothing more. Changes go through monitor.change().
        self.host = monitor.host
        self.checker = checker or Checker(monitor)

    # Journal -----------------------------------------------------------------------------

    def journal(self, record: dict[str, Any]) -> None:
        """Write a record (runbook_step, file_change) to the monitor's journal, if any."""
        if self.monitor.journal is not None:
            self.monitor.journal.write({"host": self.host.name, "who": operator(), **record})

    # Preview -----------------------------------------------------------------------------

    async def preview(self, step: Step, variables: dict[str, str]) -> str:
        """What the step will do, exactly: the command line, or the diff of the compose file."""
        try:
            match step.action:
                case "run":
                    return "$ " + command_line(step_argv(step, variables))
                case "compose_set":
                    path, old, new = await self._patched(step, variables)
                    return unified_diff(old, new, path) or f"{path}: already as asked, no change"
                case "recreate":
                    return "$ " + command_line(await self._recreate_argv(step, variables))
                case "restart":
                    assert step.restart is not None
                    service = render(step.restart.service, variables)
                    views = service_views(self.monitor.state, service, variables.get("project", ""))
                    names = [v.info.name for v in views]
                    return f"restart through the docker API: {', '.join(names) or service}"
                case "wait":
                    return f"watch for {render(step.wait or '', variables)} while the checks run"
                case _:
                    return step.manual or ""
        except (ActionError, ComposeError, OSError, TransportError) as exc:
            return f"(cannot preview: {exc})"

    # Perform -----------------------------------------------------------------------------

    async def perform(
        self, record: StepRecord, variables: dict[str, str], on_output: OutputCallback
    ) -> None:
        """Do the step's action, filling record.output / exit_status / digest / change."""
        step = record.step
        try:
            match step.action:
                case "run":
                    await self._run(record, variables, on_output)
                case "compose_set":
                    await self._compose_set(record, variables, on_output)
                case "recreate":
                    await self._recreate(record, variables, on_output)
                case "restart":
                    await self._restart(record, variables, on_output)
                case "wait":
                    record.output = f"watching for {render(step.wait or '', variables)}"
                    on_output(record)
                case _:
                    raise ActionError("manual step: nothing to run")
        except (ComposeError, TransportError, OSError) as exc:  # OSError: also ReadOnlyError
            raise ActionError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc

    async def _command(
        self, record: StepRecord, argv: list[str], on_output: OutputCallback, limit_s: float
    ) -> None:
        record.output = "$ " + command_line(argv) + "\n"
        on_output(record)
        why = f"runbook step {record.step.id}: {record.step.title}"
        # The classifier, not the step's kind, decides: a `diagnose` step that restarts a
        # container (an imported runbook's guess) is still a change, refused read-only.
        result: CommandResult | ChangeResult
        if classify_argv(argv).read_only:
            result = await self.monitor.read(argv, timeout=limit_s, why=why)
        else:
            result = await self.monitor.change(Change.command(argv, why=why, timeout_s=limit_s))
        record.output += result.stdout + (result.stderr if result.stderr else "")
        record.exit_status = result.exit_status
        record.digest = output_digest(result.stdout, result.stderr)
        on_output(record)

    async def _run(self, record: StepRecord, v: dict[str, str], on_output: OutputCallback) -> None:
        from incident_console.runbook.units import parse_duration

        timeout = parse_duration(render(record.step.timeout, v))
        await self._command(record, step_argv(record.step, v), on_output, timeout)

    async def _patched(self, step: Step, v: dict[str, str]) -> tuple[str, str, str]:
        spec = step.compose_set
        assert spec is not None
        path = render(spec.file, v)
        service = render(spec.service, v)
        if not path:
            raise ActionError("compose_file unknown: no compose labels seen (--set compose_file=)")
        old = await self.host.read_text(path)
        compose = ComposeFile(old, path)
        if spec.environment:
            compose.set_environment(service, {k: render(x, v) for k, x in spec.environment.items()})
        if spec.memory_limit:
            compose.set_memory_limit(service, render(spec.memory_limit, v), spec.memory_key)
        if spec.memory_reservation:
            compose.set_memory_reservation(
                service, render(spec.memory_reservation, v), spec.memory_key
            )
        if spec.command_args:
            compose.set_command_args(
                service, {k: render(x, v) for k, x in spec.command_args.items()}
            )
        return path, old, compose.dump()

    async def _sha256(self, path: str) -> str:
        result = await self.monitor.read(["sha256sum", "--", path], why="checksum for the backup")
        if not result.ok:
            raise ActionError(f"sha256sum {path}: {result.stderr.strip() or result.exit_status}")
        return result.stdout.split()[0]

    async def _compose_set(
        self, record: StepRecord, v: dict[str, str], on_output: OutputCallback
    ) -> None:
        path, old, new = await self._patched(record.step, v)
        diff = unified_diff(old, new, path)
        if not diff:
            record.output = f"{path}: already as asked, no change"
            on_output(record)
            return
        record.output = diff
        on_output(record)
        backup = await self._free_backup_path(path)
        before = await self._sha256(path)
        # cp -p copies bytes and mode exactly: the undo must restore the file byte for byte.
        # -n: never overwrite an earlier backup (the checksum below then fails the step).
        copied = await self.monitor.change(
            Change.command(
                ["cp", "-p", "-n", "--", path, backup],
                why=f"backup before runbook step {record.step.id}",
            )
        )
        if not copied.ok or await self._sha256(backup) != before:
            raise ActionError(f"backup {backup} failed: {copied.stderr.strip()}")
        await self.monitor.change(
            Change.write(path, new, diff=diff, why=f"runbook step {record.step.id}")
        )
        after = await self._sha256(path)
        record.change = FileChange(path, backup, before, after)
        record.output += f"\nbackup: {backup}\n"
        record.digest = output_digest(diff, "")
        on_output(record)
        self.journal(
            {
                "kind": "file_change",
                "path": path,
                "backup": backup,
                "sha256_before": before,
                "sha256_after": after,
                "step": record.step.id,
                "diff": diff,
                "time": time.time(),
            }
        )

    async def _free_backup_path(self, path: str) -> str:
        """A backup name next to `path` that no earlier backup holds."""
        now = time.time()
        for seq in range(100):
            candidate = backup_path(path, now, seq)
            probe = await self.monitor.read(
                ["test", "-e", candidate], why="find a free backup name"
            )
            if probe.exit_status == 1:
                return candidate
            if probe.exit_status != 0:
                raise ActionError(f"test -e {candidate}: exit status {probe.exit_status}")
        raise ActionError(f"no free backup name next to {path}")

    async def _recreate_argv(self, step: Step, v: dict[str, str]) -> list[str]:
        assert step.recreate is not None
        service = render(step.recreate.service, v)
        if not v.get("compose_file"):
            raise ActionError("compose_file unknown: no compose labels seen (--set compose_file=)")
        prefix = await self.monitor.compose_command()
        compose = ComposeFile(await self.host.read_text(v["compose_file"]), v["compose_file"])
        return compose_argv(prefix, v, service, compatibility=compose.limit_under_deploy(service))

    async def _recreate(
        self, record: StepRecord, v: dict[str, str], on_output: OutputCallback
    ) -> None:
        argv = await self._recreate_argv(record.step, v)
        await self._command(record, argv, on_output, limit_s=300.0)
        if record.exit_status != 0:
            raise ActionError(f"compose exited with status {record.exit_status}")

    async def _restart(
        self, record: StepRecord, v: dict[str, str], on_output: OutputCallback
    ) -> None:
        assert record.step.restart is not None
        service = render(record.step.restart.service, v)
        views = service_views(self.monitor.state, service, v.get("project", ""))
        if not views:
            raise ActionError(f"no container of service {service} to restart")
        for view in views:
            record.output += f"restarting {view.info.name} (docker API)\n"
            on_output(record)
            await self.monitor.change(
                Change.restart(
                    view.info.id, container=view.info.name, why=f"runbook step {record.step.id}"
                )
            )
        record.exit_status = 0
        record.output += "restarted\n"
        on_output(record)

    # Checks and undo ---------------------------------------------------------------------

    async def evaluate(
        self, check: Check, record: StepRecord, variables: dict[str, str], memo: dict[str, Any]
    ) -> CheckResult:
        return await self.checker.evaluate(check, record, variables, memo)

    async def undo(self, change: FileChange) -> None:
        """Put the backup back over the file (byte for byte), verified by checksum."""
        await restore_backup(self.monitor, change.path, change.backup, change.sha256_before)
        self.journal(
            {
                "kind": "file_restore",
                "path": change.path,
                "backup": change.backup,
                "time": time.time(),
            }
        )


async def restore_backup(
    monitor: HostMonitor, path: str, backup: str, sha256_before: str = ""
) -> None:
    """Copy `backup` over `path` on the monitor's host; verify the checksum when known.

    Raises:
        ActionError: the copy failed or the result differs from the original.
        ReadOnlyError: the monitor is read-only (nothing was copied).
    """
    result = await monitor.change(
        Change.command(["cp", "-p", "--", backup, path], why=f"undo: restore {path}")
    )
    if not result.ok:
        raise ActionError(f"restore {path} from {backup}: {result.stderr.strip()}")
    if sha256_before:
        check = await monitor.read(["sha256sum", "--", path], why="checksum after the restore")
        got = check.stdout.split()[0] if check.ok and check.stdout else ""
        if got != sha256_before:
            raise ActionError(f"{path} restored but its checksum differs from the original")

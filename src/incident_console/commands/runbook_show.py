"""`runbook show` and the import summary: each step's command or change, and its class.

Plain text, no I/O: `describe_runbook` says of every step what it does (the command as
written, the compose change, the recreate), what the classifier makes of it and why, and
whether it asks first or is refused in read-only mode.
"""

from __future__ import annotations

from dataclasses import dataclass

from incident_console.runbook.loader import parse_runbook
from incident_console.runbook.markdown_scan import Block, scan
from incident_console.runbook.schema import Runbook, Step
from incident_console.transport.base import command_line

_INDENT = "    "
_CHANGES = {
    "compose_set": "edits the compose file on the server",
    "recreate": "recreates the service's containers",
    "restart": "restarts the service's containers",
}


def _lines(text: str, prefix: str = _INDENT) -> list[str]:
    return [prefix + line for line in text.rstrip("\n").splitlines()] or [prefix]


def _action(step: Step) -> list[str]:
    """What the step does, as the operator will see it."""
    if step.run is not None:
        text = step.run if isinstance(step.run, str) else command_line(step.run)
        return (
            _lines(text, f"{_INDENT}$ ")
            if "\n" not in text
            else [f"{_INDENT}$ sh -c <<script", *_lines(text, _INDENT + "  ")]
        )
    if step.compose_set is not None:
        spec = step.compose_set
        out = [f"{_INDENT}edit {spec.file}, service {spec.service} (a diff is shown first):"]
        out += [f"{_INDENT}  environment {k}={v}" for k, v in spec.environment.items()]
        if spec.memory_limit:
            out.append(f"{_INDENT}  memory limit {spec.memory_limit} ({spec.memory_key})")
        if spec.memory_reservation:
            out.append(f"{_INDENT}  memory reservation {spec.memory_reservation}")
        out += [f"{_INDENT}  command {k} {v}" for k, v in spec.command_args.items()]
        return out
    if step.recreate is not None:
        return [
            f"{_INDENT}$ docker compose -f {{{{compose_file}}}} up -d --force-recreate "
            f"--no-deps {step.recreate.service}"
        ]
    if step.restart is not None:
        return [f"{_INDENT}restart the containers of {step.restart.service} (docker API)"]
    if step.wait is not None:
        return [f"{_INDENT}watch for {step.wait} while the checks run"]
    return [f"{_INDENT}manual, done by you:", *_lines(step.manual or "", _INDENT + "| ")]


def _classification(step: Step) -> list[str]:
    found = step.command_class
    out: list[str] = []
    if found is not None:
        extra = found.never_ends or found.interactive
        label = f"{found.label} ({found.summary})" if extra else found.label
        out.append(f"{_INDENT}class: {label}: {found.reason}")
    elif step.action in _CHANGES:
        out.append(f"{_INDENT}class: changes: {_CHANGES[step.action]}")
    if step.action == "manual":
        out.append(f"{_INDENT}not run by the console: mark it done with s")
    elif step.mutates:
        out.append(f"{_INDENT}asks for confirmation first; disabled in read-only mode")
    else:
        out.append(f"{_INDENT}runs without asking; allowed in read-only mode")
    return out


def describe_runbook(runbook: Runbook) -> str:
    """The text of `runbook show`."""
    out = [f"{runbook.name}: {runbook.title}"]
    if runbook.description:
        out.append(f"  {' '.join(runbook.description.split())}")
    to_set = [n for n, decl in runbook.variables.items() if decl.default is None]
    if to_set:
        out.append(f"  variables to set: {', '.join(f'--set {n}=...' for n in sorted(to_set))}")
    for i, step in enumerate(runbook.steps, 1):
        out.append("")
        out.append(f"{i:>2}. [{step.kind}] {step.title}  ({step.id}, {step.action})")
        out += _action(step)
        out += _classification(step)
        if step.requires:
            out.append(f"{_INDENT}needs: {', '.join(step.requires)}")
        if step.why:
            out.append(f"{_INDENT}why: {' '.join(step.why.split())}")
        for check in step.checks:
            out.append(f"{_INDENT}check: {check.name}")
    if runbook.followups:
        out.append("")
        out.append("If it persists:")
        out += [f"  - {item}" for item in runbook.followups]
    return "\n".join(out) + "\n"


@dataclass(frozen=True, slots=True)
class ImportStats:
    """What an import made of a Markdown file (the README's corpus table)."""

    code_blocks: int
    steps: int
    manual: int
    confirm: int
    to_set: int
    skipped: int


def import_stats(markdown: str, yaml_text: str, source: str = "runbook.md") -> ImportStats:
    """Count the source's code blocks and the imported runbook's steps by what they need."""
    runbook = parse_runbook(yaml_text, source)
    blocks = sum(1 for item in scan(markdown, source).items if isinstance(item, Block))
    skipped = sum(1 for line in yaml_text.splitlines() if line.startswith("#   line "))
    return ImportStats(
        code_blocks=blocks,
        steps=len(runbook.steps),
        manual=sum(1 for s in runbook.steps if s.action == "manual"),
        confirm=sum(1 for s in runbook.steps if s.action != "manual" and s.mutates),
        to_set=sum(1 for d in runbook.variables.values() if d.default is None),
        skipped=skipped,
    )


def import_summary(yaml_text: str, source: str) -> str:
    """One line after `runbook import`: what the runbook holds and what it needs."""
    runbook = parse_runbook(yaml_text, source)
    manual = sum(1 for s in runbook.steps if s.action == "manual")
    confirm = sum(1 for s in runbook.steps if s.action != "manual" and s.mutates)
    to_set = sorted(n for n, d in runbook.variables.items() if d.default is None)
    skipped = sum(1 for line in yaml_text.splitlines() if line.startswith("#   line "))
    parts = [f"{len(runbook.steps)} steps", f"{manual} manual", f"{confirm} ask first"]
    if to_set:
        parts.append(f"set {', '.join(to_set)} with --set")
    if skipped:
        parts.append(f"{skipped} part(s) not imported (listed at the top)")
    return "; ".join(parts)

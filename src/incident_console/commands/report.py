"""`incident-console report JOURNAL [-o FILE.md]`: an incident journal as a Markdown postmortem."""

from __future__ import annotations

from pathlib import Path

import click

from incident_console.cli import fail


@click.command()
@click.argument("journal", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report here ('-' for stdout; default: beside the journal, .md).",
)
def report(journal: Path, output: Path | None) -> None:
    """Write the postmortem of an incident JOURNAL (the same journal gives the same report)."""
    from incident_console.monitor.journal import read_journal
    from incident_console.monitor.report import render_report, runbook_followups, write_report

    if not journal.is_file():
        fail(f"{journal}: no such journal file")
    try:
        if output is not None and str(output) == "-":
            records = read_journal(journal)
            names = sorted({str(r["runbook"]) for r in records if r.get("runbook")})
            click.echo(render_report(records, followups=runbook_followups(names)), nl=False)
            return
        written = write_report(journal, output)
    except OSError as exc:
        fail(f"{exc.filename or journal}: {exc.strerror or exc}")
        return
    click.echo(str(written))

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
    from incident_console.report import JournalError, report_text, write_report

    if not journal.is_file():
        fail(f"{journal}: no such journal file")
    try:
        if output is not None and str(output) == "-":
            click.echo(report_text(journal), nl=False)
            return
        written = write_report(journal, output)
    except JournalError as exc:
        fail(str(exc))
        return
    except OSError as exc:
        fail(f"{exc.filename or journal}: {exc.strerror or exc}")
        return
    click.echo(str(written))

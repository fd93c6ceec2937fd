"""The postmortem: an incident journal's facts, derived once, then rendered as Markdown.

`facts.derive_facts` turns the journal's records into one frozen `IncidentFacts`; `render`
formats it (summary, impact, likely cause, timeline, kill table, charts, steps, follow-ups)
without computing anything of its own; `journal_file` reads a journal (refusing what is not
one) and writes the report. No textual or rich here: `report` runs headless.
"""

from __future__ import annotations

from incident_console.report.facts import derive_facts
from incident_console.report.journal_file import (
    JournalError,
    read_journal_file,
    report_path_for,
    report_text,
    runbook_followups,
    write_report,
)
from incident_console.report.model import IncidentFacts
from incident_console.report.render import render_facts, render_report

__all__ = [
    "IncidentFacts",
    "JournalError",
    "derive_facts",
    "read_journal_file",
    "render_facts",
    "render_report",
    "report_path_for",
    "report_text",
    "runbook_followups",
    "write_report",
]

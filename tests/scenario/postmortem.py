"""Read a postmortem as a reader would and list where it contradicts itself or the kernel.

The report is Markdown: a summary of claims ("5 kernel OOM kills", "no OOM kill since X",
"4 step(s) run, 3 passed"), then the tables those claims summarise. Each check compares one
claim with the table it rests on, or a table with what the kernel logged. A missing table or
claim the scenario needs is itself a finding: a check that finds nothing to compare must not
pass by default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: The summary's lines about this incident (others may list the other projects hit).
_INCIDENT_LINES = {
    "what happened",
    "affected project",
    "impact window",
    "likely cause",
    "remediation",
    "outcome",
}
_CLOCK = re.compile(r"(\d{4}-\d{2}-\d{2}[ T])?(\d{2}:\d{2}:\d{2})")


@dataclass
class Table:
    """A Markdown table: its header cells and its rows (cells by header name)."""

    header: list[str]
    rows: list[dict[str, str]] = field(default_factory=list)

    def column(self, *names: str) -> str | None:
        """The first header cell that starts with one of `names` (case-insensitive)."""
        for cell in self.header:
            if any(cell.lower().startswith(n) for n in names):
                return cell
        return None


def sections(markdown: str) -> dict[str, str]:
    """`## Heading` -> its text (up to the next `## `), headings lower-cased."""
    found: dict[str, str] = {}
    name = ""
    for line in markdown.splitlines():
        if line.startswith("## "):
            name = line[3:].strip().lower()
            found[name] = ""
        elif name:
            found[name] += line + "\n"
    return found


def section(markdown: str, *starts: str) -> str | None:
    """The first section whose heading starts with one of `starts`."""
    for name, text in sections(markdown).items():
        if any(name.startswith(s) for s in starts):
            return text
    return None


def _cells(line: str) -> list[str]:
    # Cells split on | not escaped as \| (the report escapes pipes inside cells).
    inner = line.strip().strip("|")
    return [c.replace("\\|", "|").strip() for c in re.split(r"(?<!\\)\|", inner)]


def first_table(text: str) -> Table | None:
    """The first Markdown table in `text`."""
    lines = text.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.startswith("|") and re.match(r"^\|(\s*:?-+:?\s*\|)+\s*$", lines[i + 1]):
            table = Table(_cells(line))
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                values = _cells(row)
                table.rows.append(dict(zip(table.header, values, strict=False)))
            return table
    return None


def clock(text: str) -> str | None:
    """'HH:MM:SS' of the first time in `text` (the report covers minutes, in UTC)."""
    match = _CLOCK.search(text)
    return match[2] if match else None


@dataclass
class Expected:
    """What the scenario knows happened, to hold the report against.

    Attributes:
        project: the compose project the user worked on (the affected one).
        container: its backend container's name.
        other_projects: compose projects the report must not blame (the neighbour).
        kernel_pids: pids the kernel OOM-killed in that backend while the console watched.
    """

    project: str
    container: str
    other_projects: list[str]
    kernel_pids: set[int]


def contradictions(markdown: str, expected: Expected) -> list[str]:
    """Every disagreement found in the postmortem (empty when it agrees with itself)."""
    found: list[str] = []
    summary = section(markdown, "summary")
    kills_text = section(markdown, "oom kills")
    if summary is None:
        return ["no '## Summary' section"]
    if kills_text is None or (kills := first_table(kills_text)) is None:
        return ["no OOM kills table"]
    container_col = kills.column("container")
    pid_col = kills.column("pid")
    time_col = kills.column("time")
    if not (container_col and pid_col and time_col):
        return [f"the OOM kills table has no container/pid/time column: {kills.header}"]

    # One row per kill, of the affected project only.
    foreign = [r[container_col] for r in kills.rows if expected.project not in r[container_col]]
    if foreign:
        found.append(
            f"the OOM table lists {len(foreign)} kill(s) of other projects: {sorted(set(foreign))}"
        )
    # A kill counted by a cgroup's counter has no pid ("unknown"): only pids tell kills apart.
    keys = [(r[container_col], r[pid_col]) for r in kills.rows if r[pid_col].isdigit()]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        found.append(f"the OOM table lists a kill twice: {dupes}")
    ours = [r for r in kills.rows if r[container_col] == expected.container]
    shown = {int(p) for r in ours if (p := r[pid_col]).isdigit()}
    missing = sorted(expected.kernel_pids - shown)
    if missing:
        found.append(
            f"kills the kernel logged in {expected.container} are not in the table: {missing}"
        )

    # The summary's count of kills is the table's ("What happened" holds it, when it exists).
    what = next((ln for ln in summary.splitlines() if "what happened" in ln.lower()), summary)
    count = re.search(r"(\d+) (?:kernel )?OOM kills?", what)
    if count is None:
        found.append("the summary gives no number of OOM kills")
    elif int(count[1]) != len(kills.rows):
        found.append(
            f"the summary says {count[1]} OOM kill(s), the table has {len(kills.rows)} rows"
        )

    # "no OOM kill since X": no row of the table after X.
    for line in summary.splitlines():
        if "no oom kill since" not in line.lower():
            continue
        after = line.lower().split("no oom kill since", 1)[1]
        since = clock(after) or (re.findall(r"\d{2}:\d{2}:\d{2}", line) or [None])[-1]
        if since is None:
            found.append(f"'no OOM kill since' without a time: {line.strip()}")
            continue
        later = [r[time_col] for r in kills.rows if (t := clock(r[time_col])) and t > since]
        if later:
            found.append(
                f"the summary says no OOM kill since {since}; the table has kills at {later}"
            )

    # "N OOM kills after remediation": the table's rows after it.
    after = re.search(r"(\d+) OOM kills? after remediation", summary)
    phase_col = kills.column("remediation", "phase")
    if after and phase_col:
        rows_after = [r for r in kills.rows if "after" in r.get(phase_col, "")]
        if int(after[1]) != len(rows_after):
            found.append(
                f"the summary says {after[1]} OOM kill(s) after remediation, the table has "
                f"{len(rows_after)}"
            )

    # Only the affected project in the summary's account of this incident (the impact window
    # named a neighbour's container). Lines that set other projects apart may name them.
    for line in summary.splitlines():
        label = re.match(r"^- \*\*([^*:]+):?\*\*", line.strip())
        if not label or label[1].strip().lower() not in _INCIDENT_LINES:
            continue
        for other in expected.other_projects:
            if other in line:
                found.append(f"the summary names the neighbour project {other!r}: {line.strip()}")

    # The timeline has one row per kill of our backend, not one per source that reported it.
    timeline_text = section(markdown, "timeline")
    timeline = first_table(timeline_text) if timeline_text else None
    if timeline is None:
        found.append("no timeline table")
    else:
        what = timeline.column("what") or timeline.header[-1]
        oom_rows = [
            r
            for r in timeline.rows
            if expected.container in r.get(what, "")
            and re.search(r"(?i)\bOOM kill\b|: oom\b", r.get(what, ""))
        ]
        if len(oom_rows) != len(ours):
            found.append(
                f"the timeline has {len(oom_rows)} OOM rows for {expected.container}, "
                f"the OOM table {len(ours)} kills"
            )

    # The runbook's count of steps is its table's (skipped steps are not run).
    steps_claim = re.search(r"(\d+) steps?(?:\(s\))? run,? \(?(\d+) passed, (\d+) failed", summary)
    runbook_text = section(markdown, "runbook")
    steps = first_table(runbook_text) if runbook_text else None
    if steps_claim and steps:
        result = steps.column("result") or "result"
        states = [r.get(result, "") for r in steps.rows]
        run = sum(1 for s in states if s in ("passed", "failed"))
        claim = tuple(int(g) for g in steps_claim.groups())
        table_says = (run, states.count("passed"), states.count("failed"))
        if claim != table_says:
            found.append(
                f"the summary says {claim[0]} step(s) run, {claim[1]} passed, {claim[2]} failed;"
                f" the runbook table: {table_says[0]} run, {table_says[1]} passed,"
                f" {table_says[2]} failed"
            )
    return found

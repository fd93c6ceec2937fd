"""What a person reads off the console's screens, as plain text from `capture-pane`.

Only the words and layout a user sees are used (pane titles, a row's name, the walkthrough's
step header), so these stay valid while the code behind them changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TIME = re.compile(r"\d\d:\d\d:\d\d")
#: The walkthrough's step header: "remediate · compose_set · Fewer workers ...  [pending]".
_STEP_HEADER = re.compile(
    r"(diagnose|remediate|verify) · (\S+) · (.+?)\s{2}\[(pending|running|passed|failed|skipped|rolled back|rolled_back)\]"
)
_STEP_ROW = re.compile(r"^([·▶✔✘↷↶]) (diagnose|remediate|verify)\s+(.*)$")
#: A pane's edge, or the bar of a notification drawn over it.
_EDGE = re.compile(r"[│▌╮╯]")


def header_line(screen: str) -> str:
    """The first non-blank line: the host header (target, link state, sources)."""
    return next((ln for ln in screen.splitlines() if ln.strip()), "")


def log_texts(screen: str, container: str) -> list[str]:
    """The text of every Logs-pane line of `container` on screen ("hh:mm:ss name | text")."""
    shown = []
    marker = f"{container[:20]} | "
    for line in screen.splitlines():
        at = line.find(marker)
        if at < 0 or not _TIME.search(line[max(0, at - 10) : at]):
            continue
        text = _EDGE.split(line[at + len(marker) :], maxsplit=1)[0].rstrip()
        shown.append(text)
    return shown


def lines_logged_before(shown: list[str], before: list[str]) -> list[str]:
    """The shown texts that are lines logged before the console started.

    A shown text may be cut by the pane's width; it counts only if it holds a time (every
    backend line is stamped, so a stamped prefix names one line) and starts a line of `before`.
    """
    return [
        text
        for text in shown
        if len(text) >= 20 and _TIME.search(text) and any(b.startswith(text) for b in before)
    ]


def oom_feed_names(screen: str, pid: int) -> list[str]:
    """The container names the OOM feed (or a notification) gives for a kill of `pid`.

    The service in brackets is left out where the pane is narrow and the name holds it
    ("icsc22725_backend_1 gunicorn pid N" in an 80-column feed).
    """
    found = re.findall(rf"(\S+) (?:\([^)]*\) )?\S+ pid {pid}\b", screen)
    return found


def table_row(screen: str, container: str) -> str | None:
    """The containers-table row of `container` (the first line that starts with its cells)."""
    for line in screen.splitlines():
        if re.match(rf"^│\s*(OOM|!|↑|\s)*\s*{re.escape(container)}\s", line):
            return line
    return None


def table_names(screen: str) -> list[str]:
    """The containers table's rows, top to bottom, by container name."""
    names = []
    for line in screen.splitlines():
        match = re.match(r"^│\s*(?:OOM|!)?↑?\s+(\S+)\s{2,}\S", line)
        if match and match[1] != "Container" and not match[1].startswith("│"):
            names.append(match[1])
        if line.startswith("╰"):
            break
    return names


def right_pane(screen: str) -> list[str]:
    """The walkthrough's right column (a step's header, why, command or change, checks, output)."""
    out = []
    for line in screen.splitlines()[1:]:
        _, sep, rest = line.partition("│")
        if sep:
            out.append(rest[1:] if rest.startswith(" ") else rest)
    return out


@dataclass(frozen=True)
class StepHeader:
    """The walkthrough's current step as its header shows it.

    Attributes:
        refusal: why the step cannot run ('needs health_url: ...'), '' when it can.
        project: the compose project a changing step names ('' when it names none).
    """

    kind: str
    action: str
    title: str
    state: str
    refusal: str
    project: str = ""


def step_header(screen: str) -> StepHeader | None:
    """The current step of the walkthrough, or None when its screen is not shown."""
    lines = right_pane(screen)
    for i, line in enumerate(lines):
        match = _STEP_HEADER.search(line)
        if match:
            refusal = project = ""
            # Under the header: the project a change lands in, then what the step lacks.
            for nxt in (ln.strip() for ln in lines[i + 1 : i + 4]):
                if not project and (p := re.match(r"^project (\S+) on ", nxt)):
                    project = p[1]
                elif not refusal and re.match(r"^(needs|read-only|refused|blocked)\b", nxt):
                    refusal = nxt
            return StepHeader(match[1], match[2], match[3].strip(), match[4], refusal, project)
    return None


def project_question(screen: str) -> list[str] | None:
    """The options of a "which compose project?" question on screen, or None when none is.

    The options are the lines of the question's box between the question and its key hint.
    """
    lines = screen.splitlines()
    for i, line in enumerate(lines):
        if re.search(r"runs in \d+ compose projects|which (compose )?project", line):
            options = []
            for nxt in lines[i + 1 :]:
                if re.search(r"enter: choose|escape", nxt):
                    return options
                text = _box_text(nxt)
                if re.search(r"\w", text):  # not the list's own top or bottom edge
                    options.append(text)
            return options
    return None


def form_fields(screen: str) -> list[tuple[str, str]]:
    """The variables form on screen: (label, value or placeholder) per input, in order.

    A label is a variable's name on its own line ("watch", "health_url  needed, unknown") or
    "any other variable"; its input is the next boxed line ("▊  30m  ▎").
    """
    fields: list[tuple[str, str]] = []
    label = ""
    inside = False
    for line in screen.splitlines():
        if line.count("█") < 2:
            continue
        text = _box_inner(line)
        if re.match(r"^variables of ", text):
            inside = True
            continue
        if not inside:
            continue
        if m := re.match(r"^([a-z_][a-z0-9_]*)(\s{2}.*)?$", text):
            label = m[1]
        elif text == "any other variable":
            label = text
        elif (m := re.match(r"^▊\s+(.*?)\s*▎$", text)) and label:
            fields.append((label, m[1]))
            label = ""
    return fields


def dashboard_prompt(screen: str) -> str | None:
    """What the dashboard's prompt (filter, search) shows above the footer: its value, or its
    placeholder while empty ('filter logs'); None when it is closed."""
    lines = screen.splitlines()[-6:]
    for above, line in zip(lines, lines[1:], strict=False):
        if above.startswith("▊▔") and (m := re.match(r"^▊\s+(.*?)\s*▎$", line)):
            return m[1]
    return None


def _box_inner(line: str) -> str:
    """The text inside a modal box's borders on `line` (the screen beneath left out)."""
    for edge in ("█", "┃"):
        if line.count(edge) >= 2:
            return line.split(edge)[1].strip()
    return line.strip()


def _box_text(line: str) -> str:
    """What `_box_inner` holds, without the edges of an input or list drawn in the box."""
    return _box_inner(line).strip("▊▎").strip()


def block(screen: str, label: str, until: tuple[str, ...]) -> str:
    """The right-column text under `label` ('command or change') up to the next label."""
    lines = right_pane(screen)
    out: list[str] = []
    inside = False
    for line in lines:
        stripped = line.strip()
        if stripped == label:
            inside = True
            continue
        if inside and stripped in until:
            break
        if inside:
            out.append(line.rstrip())
    return "\n".join(out).strip()


def verdict(screen: str) -> str:
    """The current step's verdict line ('=> all checks passed'), '' when none yet."""
    for line in right_pane(screen):
        if line.strip().startswith("=> "):
            return line.strip()[3:]
    return ""


def step_list(screen: str) -> list[tuple[str, str, str]]:
    """The walkthrough's left column: (mark, kind, title start) per step, in order."""
    rows = []
    for line in screen.splitlines():
        left = line.partition("│")[0].rstrip()
        match = _STEP_ROW.match(left)
        if match:
            rows.append((match[1], match[2], match[3].strip()))
    return rows


def help_keys(screen: str) -> dict[str, str]:
    """The help screen's lines: key -> "description  tooltip".

    The help is a box drawn over the screen it came from: only the text inside the box counts.
    """
    keys = {}
    for line in screen.splitlines():
        inside = line.split("█")[1] if line.count("█") >= 2 else line
        match = re.match(r"^\s*(\S+)\s{2,}(\S.*)$", inside)
        if match and len(match[1]) <= 14:
            keys[match[1]] = match[2].strip()
    return keys

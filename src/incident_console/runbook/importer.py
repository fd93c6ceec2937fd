"""Import a Markdown runbook into a YAML runbook for review.

A fenced shell block is one step (a script, shown whole) unless its lines are independent
commands; loops, `if`, here-documents and line continuations stay whole. Each command is
classified (domain/commands.py): one that changes the server is a `remediate` step (it asks
first and read-only mode refuses it), one that never ends or needs a terminal is a `manual`
step, the rest diagnose or verify. Headings say which part of the runbook a step is in and
the prose under them becomes the step's `why`. Placeholders become variables (placeholders.py),
blocks in other languages become manual "apply this" steps, and what is not imported (sample
output, diagrams, text that is no command) is listed at the top of the output, by line.
"""

from __future__ import annotations

import io
import re
import shlex
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import LiteralScalarString

from incident_console.domain.command_class import CommandClass
from incident_console.domain.commands import classify_argv, classify_shell
from incident_console.runbook.markdown_scan import (
    Block,
    Heading,
    MarkdownError,
    plain_text,
    prepare_text,
    repair_mojibake,
    scan,
)
from incident_console.runbook.placeholders import (
    assigned_names,
    is_builtin,
    replace_angles,
    replace_shell_variables,
)
from incident_console.runbook.schema import BUILTIN_VARIABLES, VARIABLE_REF
from incident_console.runbook.shell_units import Unit, is_shell_block, split_units

__all__ = ["MarkdownError", "import_markdown", "repair_mojibake"]

_SHELL_LANGS = {"bash", "sh", "shell", "console", "zsh", "", "shell-session", "terminal",
                "bash-session", "shellsession", "sh-session", "ksh", "dash"}  # fmt: skip
#: Blocks that show what a command printed, or draw a diagram: listed, not imported.
_NOT_STEPS = {"text", "txt", "log", "logs", "output", "plaintext", "plain", "mermaid", "dot",
              "plantuml", "ascii", "none", "stdout", "stderr"}  # fmt: skip
# Words that say which part of a runbook a heading is (English and Russian stems).
_KIND_WORDS = {
    "verify": ("verif", "monitor", "провер", "мониторинг", "watch", "validat"),
    "remediate": (
        "fix",
        "remed",
        "solution",
        "deploy",
        "recover",
        "resolution",
        "cleanup",
        "clean up",
        "prevent",
        "решени",
        "исправ",
        "деплой",
        "рекомендац",
        "оптимиз",
        "настройк",
    ),  # fmt: skip
    "diagnose": (
        "diagnos",
        "symptom",
        "cause",
        "investigat",
        "debug",
        "detect",
        "assess",
        "identify",
        "triage",
        "диагност",
        "симптом",
        "причин",
        "проблем",
    ),  # fmt: skip
}
#: Prose that says the block is a file's content: "In backend/entrypoint.sh:".
_FILE_CONTENT = re.compile(
    r"(?i)(?:^|\b)(?:in|inside|into|file|в|файл[еа]?)\s+([\w./-]+\.(?:sh|bash|ya?ml|conf|cfg|json|ini|"
    r"toml|env|py|service|txt))\b[^.]*:\s*$"
)
#: Commands of the operator's laptop or repository, not of the server.
_LAPTOP = {"git", "scp", "rsync", "code", "open", "gh"}


@dataclass(slots=True)
class _Section:
    title: str
    kind: str
    prose: str = ""


@dataclass(slots=True)
class _Out:
    steps: list[CommentedMap] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)  # name -> why
    used_ids: set[str] = field(default_factory=set)


def shorten(text: str, limit: int = 72) -> str:
    """`text` in at most `limit` characters, cut between words (never inside one)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit - 1)
    return (text[: cut if cut > limit // 3 else limit - 1].rstrip(" ,;:-") + "…").strip()


def _kind(title: str, parent: str) -> str:
    low = title.lower()
    for kind, words in _KIND_WORDS.items():
        if any(w in low for w in words):
            return kind
    return parent


def _is_listable(text: str) -> bool:
    """One simple command with no shell syntax: stored as an argv list."""
    from incident_console.domain.shell_words import parse

    bare = VARIABLE_REF.sub("x", text)
    parsed = parse(bare)
    if parsed.problems or parsed.substitutions or len(parsed.commands) != 1:
        return False
    command = parsed.commands[0]
    if command.redirects or command.end not in ("", ";"):
        return False
    if "=" in command.words[0].value:
        return False
    if any(w.dynamic or re.search(r"[*?\[~{}]", w.value) for w in command.words):
        return False
    try:
        return shlex.split(bare, comments=True) == [w.value for w in command.words]
    except ValueError:  # shlex and the shell disagree (a trailing backslash): keep the text
        return False


class _Importer:
    def __init__(self, source: str) -> None:
        self.source = source
        self.out = _Out()
        self.sections: list[tuple[int, _Section]] = []

    @property
    def section(self) -> _Section:
        return self.sections[-1][1] if self.sections else _Section("", "diagnose")

    def heading(self, item: Heading, prose: str) -> None:
        while self.sections and self.sections[-1][0] >= item.level:
            self.sections.pop()
        title = shorten(plain_text(_strip_symbols(item.text)), 100)
        self.sections.append((item.level, _Section(title, _kind(title, self.section.kind), prose)))

    # Variables ---------------------------------------------------------------------------

    def declare(self, name: str, placeholder: str) -> str:
        if not is_builtin(name):
            self.out.variables.setdefault(name, f"the source's placeholder {placeholder}")
        return name

    def fill(self, text: str) -> str:
        text = replace_angles(text, self.declare)
        return replace_shell_variables(text, self.declare, assigned_names(text))

    # Steps -------------------------------------------------------------------------------

    def _id(self, title: str) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        if len(slug) > 40:
            slug = slug[:40].rsplit("-", 1)[0] or slug[:40]
        n = len(self.out.steps) + 1
        candidate = f"{n:02d}-{slug}" if slug else f"step-{n:02d}"
        while candidate in self.out.used_ids:
            candidate += "-x"
        self.out.used_ids.add(candidate)
        return candidate

    def add(self, title: str, kind: str, action: str, value: object, why: str, line: int) -> None:
        step = CommentedMap()
        title = shorten(title or self.section.title or "step")
        step["id"] = self._id(title)
        step["title"] = title
        step["kind"] = kind
        if self.section.title:
            step["section"] = self.section.title
        if why:
            step["why"] = shorten(why, 400)
        text = value if isinstance(value, str) else " ".join(str(v) for v in value)  # type: ignore[attr-defined]
        names = sorted(
            {m.group(1) for m in VARIABLE_REF.finditer(text)}
            & (set(self.out.variables) | {"container", "service", "project", "compose_file"})
        )
        if names and action == "run":
            step["requires"] = names
        step[action] = value
        self.out.steps.append(step)
        step.yaml_set_start_comment(f"from line {line}", indent=2)

    def command_step(self, unit: Unit, section_kind: str) -> None:
        text = self.fill(unit.text)
        first_line = text.splitlines()[0]
        title = unit.hint or (
            f"{self.section.title}: {first_line}" if self.section.title else first_line
        )
        why = unit.why or self.section_why()
        first = text.split(maxsplit=1)[0] if text.split() else ""
        value: object
        if _is_listable(text):
            seq = CommentedSeq(shlex.split(text, comments=True))
            seq.fa.set_flow_style()
            value = seq
            found = classify_argv(list(seq))
        else:
            value = LiteralScalarString(text + "\n") if "\n" in text else text
            found = classify_shell(text)
        # A command that changes the server is remediate wherever it stands; one that reads
        # only verifies in a verify section (or under a "verify ..." comment), else diagnoses.
        verifying = section_kind == "verify" or "verif" in unit.hint.lower()
        kind = "remediate" if found.changes else ("verify" if verifying else "diagnose")
        manual = _manual_reason(first, text, found, unit)
        if manual:
            self.add(title, kind, "manual", _manual_text(text, manual), why, unit.line)
            return
        self.add(title, kind, "run", value, why, unit.line)

    def section_why(self) -> str:
        return self.section.prose

    def block(self, block: Block) -> None:
        lang = block.lang
        section_kind = self.section.kind
        shell = lang in _SHELL_LANGS and (lang != "" or is_shell_block(block.lines))
        if (
            lang in _NOT_STEPS
            or not any(x.strip() for x in block.lines)
            or (lang == "" and not shell)
        ):
            first = next((x.strip() for x in block.lines if x.strip()), "")
            what = "a diagram" if lang in ("mermaid", "dot", "plantuml") else "sample output"
            self.out.skipped.append(
                f"line {block.line}: {what} ({lang or 'no language'}): {shorten(first, 60)}"
            )
            return
        named = _FILE_CONTENT.search(block.prose)
        if lang not in _SHELL_LANGS or named:
            body = "\n".join(block.lines).rstrip() + "\n"
            if named and lang in _SHELL_LANGS:  # "In entrypoint.sh:": that file, not commands
                lang = f"content of {named.group(1)}"
            elif named:
                lang = f"{lang} ({named.group(1)})"
            title = (
                f"Apply this {lang}: {self.section.title}"
                if self.section.title
                else f"Apply this {lang}"
            )
            kind = "remediate" if section_kind == "remediate" else section_kind
            self.add(
                title,
                kind,
                "manual",
                LiteralScalarString(f"Apply this {lang} by hand (it is not a command):\n{body}"),
                block.prose or self.section_why(),
                block.line,
            )
            return
        units, skipped = split_units(block.lines, block.line, block.prose)
        self.out.skipped.extend(skipped)
        if not units:
            if not skipped:
                self.out.skipped.append(f"line {block.line}: a shell block with no command")
            return
        for unit in units:
            self.command_step(unit, section_kind)


def _strip_symbols(text: str) -> str:
    """Heading text without emoji and other pictographs (they say nothing to a screen reader)."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LNPZ" or ch in "+-/=<>")


def _manual_reason(first: str, text: str, found: CommandClass, unit: Unit) -> str:
    """Why a command is not run by the console ('' when it may be)."""
    if unit.note:
        return unit.note
    if first in _LAPTOP:
        return f"{first}: belongs on the operator's laptop or in the repository"
    if first.startswith(("./", "../")):
        return f"{first}: a script from the repository; run it where it lives"
    if re.match(r"docker\s+(exec|compose\s+exec)\b.*\bexport\s", text):
        return (
            "has no effect: the exported variable dies with that shell; set it in the "
            "compose file and recreate the container instead"
        )
    if found.interactive:
        return f"interactive ({found.reason}): run it yourself in a terminal"
    if found.never_ends:
        return f"never ends ({found.reason}): the console shows this live; or run it yourself and stop it with Ctrl-C"
    if text.strip().startswith("cd ") and "\n" not in text.strip():
        return "cd: the console runs compose in the project's directory itself"
    return ""


def _manual_text(text: str, reason: str) -> str:
    out = f"{text}\n({reason})"
    return LiteralScalarString(out + "\n") if "\n" in text else out


def import_markdown(text: str, *, source: str = "runbook.md") -> str:
    """The YAML text of a runbook made from Markdown `text` (review it before running).

    Raises:
        MarkdownError: empty or binary input, or a fence that is never closed: one line,
            `FILE:LINE: message`.
    """
    crlf = "\r\n" in text
    text = prepare_text(text, source)
    text, repaired = repair_mojibake(text)
    doc = scan(text, source)
    imp = _Importer(source)
    title = plain_text(_strip_symbols(doc.title)).strip()
    for item in doc.items:
        if isinstance(item, Heading):
            if item.level == 1 and not title:
                title = shorten(plain_text(_strip_symbols(item.text)), 100)
                continue
            imp.heading(item, doc.heading_prose.get(item.line, ""))
        else:
            imp.block(item)
    stem = re.sub(r"[^a-z0-9]+", "-", Path(source).stem.lower()).strip("-") or "imported"
    out = imp.out
    doc_map = CommentedMap()
    doc_map["name"] = stem if stem[0].isalnum() else f"imported-{stem}"
    doc_map["title"] = title or stem
    described = f"Imported from {Path(source).name}: review every step before running."
    if doc.description:
        described = f"{shorten(doc.description, 300)} ({described})"
    if out.skipped:
        described += f" {len(out.skipped)} part(s) were not imported: see the comments above."
    doc_map["description"] = described
    _declare_leftovers(out, doc_map_strings(out.steps))
    if out.variables:
        variables = CommentedMap()
        for name, why in sorted(out.variables.items()):
            variables[name] = CommentedMap(why=f"{why}: set it with --set {name}=VALUE")
        doc_map["variables"] = variables
    doc_map["steps"] = out.steps or [
        CommentedMap(
            id="nothing",
            title="No command was found",
            kind="diagnose",
            manual="read the source document: it has no shell code block to import",
        )
    ]
    yaml = YAML(typ="rt")
    yaml.allow_unicode = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    buf = io.StringIO()
    buf.write(f"# Imported from {Path(source).name} by `incident-console runbook import`.\n")
    buf.write("# Review it: add checks to the run steps, then `incident-console runbook check`.\n")
    if repaired:
        buf.write(f"# Note: {repaired}.\n")
    if crlf:
        buf.write("# Note: CRLF line endings were read as LF.\n")
    for note in doc.notes:
        buf.write(f"# Note: {note}\n")
    if out.skipped:
        buf.write("# Not imported (no step was made of these):\n")
        for entry in out.skipped:
            buf.write(f"#   {_comment_safe(entry)}\n")
    yaml.dump(doc_map, buf)
    return buf.getvalue()


def _comment_safe(text: str) -> str:
    return " ".join(text.split())


def doc_map_strings(steps: list[CommentedMap]) -> list[str]:
    """Every string value of the steps (to find variable references)."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            found.append(node)

    walk(steps)
    return found


def _declare_leftovers(out: _Out, strings: list[str]) -> None:
    """A ``{{name}}`` the source wrote itself (a template of its own) is a variable too."""
    for text in strings:
        for match in VARIABLE_REF.finditer(text):
            name = match.group(1)
            if name not in BUILTIN_VARIABLES:
                out.variables.setdefault(name, f"the source's placeholder {match.group(0)}")

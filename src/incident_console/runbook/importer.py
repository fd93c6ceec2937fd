"""Import a markdown runbook into a YAML runbook for review.

Headings become sections (and say whether a step diagnoses, remediates or verifies); fenced
shell blocks become `run` steps, one per command; `ssh user@host '<cmd>'` wrappers are
unwrapped (the console already holds the session); what belongs on the operator's laptop
(git, scp, editing files, repository scripts) or cannot work (`docker exec ... export`, a
command that never ends) becomes a `manual` step that says why.
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

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)")
_SHELL_LANGS = {"bash", "sh", "shell", "console", "zsh", ""}
_SHELL_META = re.compile(r"[|&;<>()$`*?\[\]{}~]|\|\|")
_PLACEHOLDER = re.compile(r"\S*<[^<>\s]+>\S*")

# Words that say which part of a runbook a heading is (English and Russian stems).
_KIND_WORDS = {
    "verify": ("verif", "check", "monitor", "провер", "мониторинг", "watch"),
    "remediate": (
        "fix",
        "remed",
        "solution",
        "deploy",
        "решени",
        "исправ",
        "деплой",
        "рекомендац",
        "оптимиз",
        "настройк",
    ),
    "diagnose": ("diagnos", "symptom", "cause", "диагност", "симптом", "причин", "проблем"),
}
#: Commands that change the server: remediate steps, whatever section they are in.
_MUTATING = {"restart", "up", "rm", "kill", "stop", "start", "down", "systemctl", "reboot"}
#: Commands of the operator's laptop or repository, not of the server.
_LAPTOP = {"git", "scp", "rsync", "vim", "vi", "nano", "code", "emacs", "open"}
#: Known server commands, accepted in fenced blocks that name no language.
_KNOWN = {
    "docker",
    "docker-compose",
    "dmesg",
    "journalctl",
    "free",
    "curl",
    "systemctl",
    "ps",
    "top",
    "df",
    "grep",
    "tail",
    "cat",
    "ls",
    "watch",
    "ssh",
    "cd",
    "git",
    "scp",
}
#: First words of lines that are file content shown in a block, not commands.
_NOT_COMMANDS = {"exec", "set", "then", "fi", "do", "done", "else", "esac", "return"}


@dataclass(slots=True)
class _Section:
    title: str
    kind: str


@dataclass(slots=True)
class _Draft:
    steps: list[CommentedMap] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _plain(text: str) -> str:
    """Heading text without emoji, markdown emphasis or links."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = text.replace("**", "").replace("`", "")
    kept = "".join(ch for ch in text if unicodedata.category(ch)[0] in "LNPZ" or ch in "+-/=")
    return " ".join(kept.split())


def _kind(title: str, parent: str) -> str:
    low = title.lower()
    for kind, words in _KIND_WORDS.items():
        if any(w in low for w in words):
            return kind
    return parent


def _logical_lines(block: list[str]) -> list[str]:
    out: list[str] = []
    buf = ""
    for raw in block:
        line = raw.rstrip()
        if line.endswith("\\"):
            buf += line[:-1].rstrip() + " "
            continue
        out.append((buf + line.strip()).strip() if buf else line.strip())
        buf = ""
    if buf:
        out.append(buf.strip())
    return out


def _strip_comment(line: str) -> tuple[str, str]:
    """(command, trailing comment) - a `#` outside quotes starts the comment."""
    try:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=False)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        list(lexer)
    except ValueError:
        return line, ""
    match = re.search(r"\s#\s.*$", line)
    if (
        match
        and line.count("'", 0, match.start()) % 2 == 0
        and line.count('"', 0, match.start()) % 2 == 0
    ):
        return line[: match.start()].rstrip(), match.group(0).strip()[1:].strip()
    return line, ""


def _unwrap_ssh(command: str) -> tuple[str | None, str]:
    """`ssh root@h 'cmd'` -> ('cmd', note); bare `ssh root@h` -> (None, note)."""
    try:
        tokens = shlex.split(command)
    except ValueError:
        return command, ""
    if not tokens or tokens[0] != "ssh":
        return command, ""
    i = 1
    while i < len(tokens) and tokens[i].startswith("-"):
        i += 2 if tokens[i] in ("-p", "-i", "-l", "-o", "-J", "-F") else 1
    rest = tokens[i + 1 :]
    if not rest:
        return None, "interactive ssh: the console already holds the session"
    return " ".join(rest), "unwrapped from ssh: the console already holds the session"


def _placeholders(command: str) -> str:
    def repl(match: re.Match[str]) -> str:
        token = match.group(0)
        low = token.lower()
        if any(w in low for w in ("container", "id>", "backend", "name")):
            quote = token[0] if token[0] in "'\"" else ""
            return f"{quote}{{{{container}}}}{quote}"
        return token

    return _PLACEHOLDER.sub(repl, command)


def _classify(command: str) -> tuple[str, str]:
    """('run'|'manual'|'skip', reason) for one command line."""
    try:
        tokens = shlex.split(command)
    except ValueError:
        tokens = command.split()
    if not tokens:
        return "skip", ""
    first = tokens[0]
    if first == "cd":
        return "manual", "cd: the console runs compose in the project's directory itself"
    if first in _LAPTOP or first.endswith("push.sh"):
        return "manual", f"{first}: belongs on the operator's laptop or in the repository"
    if first.startswith("./") or first.startswith("../"):
        return "manual", f"{first}: a script from the repository; run it where it lives"
    if first == "docker" and "exec" in tokens and any("export " in t for t in tokens):
        return "manual", (
            "has no effect: the exported variable dies with that shell; set it in the "
            "compose file and recreate the container instead"
        )
    if first == "watch" or ("-f" in tokens and first in ("docker", "tail", "journalctl")):
        return "manual", "runs until interrupted: the console shows this live"
    if "<" in command and ">" in command and _PLACEHOLDER.search(command):
        return "manual", "has a placeholder to fill in"
    return "run", ""


def _is_command(line: str, lang: str) -> bool:
    first = line.split()[0] if line.split() else ""
    if not re.match(r"^[A-Za-z0-9_./][\w./-]*$", first) or first in _NOT_COMMANDS:
        return False
    if "=" in first or line.split()[1:2] == ["="]:
        return False
    return lang != "" or first in _KNOWN


class _Importer:
    def __init__(self, source: str) -> None:
        self.source = source
        self.draft = _Draft()
        self.sections: list[tuple[int, _Section]] = []
        self.used_ids: set[str] = set()

    @property
    def section(self) -> _Section:
        return self.sections[-1][1] if self.sections else _Section("", "diagnose")

    def heading(self, level: int, text: str) -> None:
        while self.sections and self.sections[-1][0] >= level:
            self.sections.pop()
        title = _plain(text)
        self.sections.append((level, _Section(title, _kind(title, self.section.kind))))

    def _id(self, base: str) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", base.lower()).strip("-")[:40].strip("-")
        n = len(self.draft.steps) + 1
        candidate = f"{n:02d}-{slug}" if slug else f"step-{n:02d}"
        while candidate in self.used_ids:
            candidate += "-x"
        self.used_ids.add(candidate)
        return candidate

    def add(self, title: str, kind: str, action: str, value: object, why: str = "") -> None:
        step = CommentedMap()
        step["id"] = self._id(title)
        step["title"] = title or self.section.title or "step"
        step["kind"] = kind
        if self.section.title:
            step["section"] = self.section.title
        if why:
            step["why"] = why
        step[action] = value
        self.draft.steps.append(step)

    def block(self, lang: str, lines: list[str]) -> None:
        kind = self.section.kind
        if lang not in _SHELL_LANGS:
            if kind == "remediate" and lines:
                text = "\n".join(lines).rstrip() + "\n"
                self.add(
                    f"Edit ({lang}): {self.section.title}",
                    kind,
                    "manual",
                    LiteralScalarString(f"Apply this {lang} change by hand:\n{text}"),
                    "a file edit shown in the markdown; review it before applying",
                )
            return
        title_hint = ""
        in_output = False
        for line in _logical_lines(lines):
            if not line:
                in_output = False
                continue
            if line.startswith("#"):
                comment = line.lstrip("#").strip()
                # "# Result:" / "# Результат:" introduces sample output, not commands.
                in_output = bool(re.match(r"(?i)(result|output|результат|вывод)", comment))
                title_hint = "" if in_output else _plain(comment)
                continue
            if in_output or not _is_command(line, lang):
                continue
            command, trailing = _strip_comment(line)
            unwrapped, note = _unwrap_ssh(command)
            title = title_hint or _plain(trailing) or f"{self.section.title}: {command[:50]}"
            title_hint = ""
            if unwrapped is None:
                continue  # a bare `ssh host`: the console is the session
            command = _placeholders(unwrapped)
            what, reason = _classify(command)
            if what == "skip":
                continue
            # "# Check memory" above a command says what the command is for.
            step_kind = _kind(title, kind) if title != self.section.title else kind
            words = set(re.split(r"[\s'\"]+", command))
            if words & _MUTATING or "--force-recreate" in words:
                step_kind = "remediate"
            if what == "manual":
                self.add(title, step_kind, "manual", f"{command}\n({reason})", note)
                continue
            value: object
            if _SHELL_META.search(command.replace("{{container}}", "")):
                value = command
            else:
                seq = CommentedSeq(shlex.split(command))
                seq.fa.set_flow_style()
                value = seq
            self.add(title, step_kind, "run", value, note)


def repair_mojibake(text: str) -> tuple[str, str]:
    """Undo UTF-8 text that was decoded as Mac Roman / cp1252 / latin-1 and saved again.

    The seed's runbook came that way ("–†–µ—à–µ–Ω" for "Решен"). Returns (text, how): the
    repair is kept only when it decodes cleanly and leaves fewer non-ASCII characters.
    """
    non_ascii = sum(1 for ch in text if ord(ch) > 127)
    if not non_ascii:
        return text, ""
    for codec in ("mac_roman", "cp1252", "latin-1"):
        try:
            fixed = text.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if sum(1 for ch in fixed if ord(ch) > 127) < non_ascii:
            return fixed, f"text was UTF-8 read as {codec}: repaired"
    return text, ""


def import_markdown(text: str, *, source: str = "runbook.md") -> str:
    """The YAML text of a runbook made from markdown `text` (review it before running)."""
    text, repaired = repair_mojibake(text)
    imp = _Importer(source)
    title = ""
    fence: str | None = None
    lang = ""
    block: list[str] = []
    for line in text.splitlines():
        if fence is not None:
            if line.strip().startswith(fence):
                imp.block(lang, block)
                fence, block = None, []
            else:
                block.append(line)
            continue
        match = _FENCE.match(line)
        if match:
            fence, lang = match.group(1), match.group(2).lower()
            continue
        heading = _HEADING.match(line)
        if heading:
            level = len(heading.group(1))
            if level == 1 and not title:
                title = _plain(heading.group(2))
                continue
            imp.heading(level, heading.group(2))
    name = re.sub(r"[^a-z0-9]+", "-", Path(source).stem.lower()).strip("-") or "imported"
    doc = CommentedMap()
    doc["name"] = name if name[0].isalnum() else f"imported-{name}"
    doc["title"] = title or name
    doc["description"] = f"Imported from {Path(source).name}: review every step before running."
    steps = imp.draft.steps or [
        CommentedMap(
            id="nothing",
            title="Nothing to run was found",
            kind="diagnose",
            manual="read the source document",
        )
    ]
    doc["steps"] = steps
    yaml = YAML(typ="rt")
    yaml.allow_unicode = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    out = io.StringIO()
    out.write(f"# Imported from {Path(source).name} by `incident-console runbook import`.\n")
    out.write("# Review it: add checks to the run steps, then `incident-console runbook check`.\n")
    if repaired:
        out.write(f"# Note: {repaired}.\n")
    yaml.dump(doc, out)
    return out.getvalue()

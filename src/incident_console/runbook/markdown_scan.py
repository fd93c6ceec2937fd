"""Read a Markdown runbook into headings, fenced code blocks and the prose around them.

Only what a runbook importer needs: YAML front matter (its title), ATX and setext headings,
fenced code blocks (``` or ~~~, indented inside list items too) with their language, and the
prose before each block. An unclosed fence is an error with its line number: the commands
after it would otherwise be lost without a word.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*#*[ \t]*$")
_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?:[-*+]\s+|\d+[.)]\s+)?(?P<fence>`{3,}|~{3,})(?P<info>.*)$"
)
_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")


class MarkdownError(ValueError):
    """The Markdown cannot be imported: `str()` is `FILE:LINE: message`, one line."""

    def __init__(self, source: str, line: int, message: str) -> None:
        self.source = source
        self.line = line
        self.message = message
        super().__init__(f"{source}:{line}: {message}")


@dataclass(slots=True)
class Heading:
    """A heading: 1-based line, level 1-6, text as written."""

    line: int
    level: int
    text: str


@dataclass(slots=True)
class Block:
    """A fenced code block: the line of its opening fence, its language and lines."""

    line: int
    lang: str
    lines: list[str]
    #: The prose between the previous heading or block and this one, cleaned of markup.
    prose: str = ""


@dataclass(slots=True)
class Document:
    """Headings and blocks in order, the front matter's title and description."""

    title: str = ""
    description: str = ""
    items: list[Heading | Block] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: The prose right under each heading (by the heading's line).
    heading_prose: dict[int, str] = field(default_factory=dict)


def plain_text(text: str) -> str:
    """Markdown inline text as plain words: links, emphasis and code marks removed."""
    text = _LINK.sub(r"\1", text)
    text = re.sub(r"(\*\*|__|`|~~)", "", text)
    text = re.sub(r"(?<!\w)[*_](\S[^*_]*)[*_](?!\w)", r"\1", text)
    return " ".join(text.split())


def _front_matter(lines: list[str], doc: Document) -> int:
    """Parse `---` front matter at the top; the index of the first line after it."""
    if not lines or lines[0].strip() != "---":
        return 0
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            try:
                data = YAML(typ="safe").load(io.StringIO("\n".join(lines[1:end])))
            except YAMLError:
                doc.notes.append("line 1: the front matter is not valid YAML (ignored)")
                return end + 1
            if isinstance(data, dict):
                for key in ("title", "description"):
                    if isinstance(data.get(key), str | int | float):
                        setattr(doc, key, str(data[key]))
            return end + 1
    return 0  # no closing line: a thematic break, not front matter


def _prose_line(line: str) -> str:
    stripped = line.strip()
    if not stripped or stripped.startswith(("|", "<!--", "![", "---", "***", "___")):
        return ""
    stripped = re.sub(r"^(>\s*)+", "", stripped)
    stripped = re.sub(r"^([-*+]|\d+[.)])\s+", "", stripped)
    return plain_text(stripped)


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


def prepare_text(text: str, source: str) -> str:
    """Text ready to scan: CRLF read as LF, no BOM; empty or binary input is an error."""
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise MarkdownError(source, line, "binary data (a NUL byte), not Markdown")
    if not text.strip():
        raise MarkdownError(source, 1, "empty: there is nothing to import")
    return text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")


def scan(text: str, source: str = "runbook.md") -> Document:
    """Headings, blocks and prose of Markdown `text`.

    Raises:
        MarkdownError: a fence that is never closed (with the line it was opened on).
    """
    doc = Document()
    lines = text.split("\n")
    i = _front_matter(lines, doc)
    prose: list[str] = []
    last_heading: Heading | None = None
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            mark = fence.group("fence")
            info = fence.group("info").strip()
            if mark[0] == "`" and "`" in info:
                prose.append(_prose_line(line))  # inline code that starts a line, not a fence
                i += 1
                continue
            opened = i + 1
            lead = fence.start("fence")  # list items indent their blocks' lines this far
            body: list[str] = []
            i += 1
            while i < len(lines):
                candidate = lines[i].strip()
                if candidate.startswith(mark[0] * len(mark)) and not candidate.strip(mark[0]):
                    break
                raw = lines[i]
                cut = min(len(raw) - len(raw.lstrip(" ")), lead)
                body.append(raw[cut:])
                i += 1
            else:
                raise MarkdownError(
                    source, opened, f"code block opened here ({mark}) is never closed"
                )
            lang = re.split(r"[\s{,]", info.lstrip("{."), maxsplit=1)[0].lower() if info else ""
            doc.items.append(Block(opened, lang, body, " ".join(p for p in prose if p)))
            prose = []
            i += 1
            continue
        heading = _HEADING.match(line)
        setext = (
            _SETEXT.match(lines[i + 1])
            if i + 1 < len(lines) and line.strip() and not prose_is_list(line)
            else None
        )
        if heading or (setext and not line.startswith(("    ", "\t"))):
            if heading:
                level, title = len(heading.group(1)), heading.group(2) or ""
            else:
                assert setext is not None
                level, title = (1 if setext.group(1)[0] == "=" else 2), line.strip()
                i += 1
            if last_heading is not None and last_heading.line not in doc.heading_prose:
                doc.heading_prose[last_heading.line] = " ".join(p for p in prose if p)
            last_heading = Heading(i + 1 if heading else i, level, title)
            doc.items.append(last_heading)
            prose = []
            i += 1
            continue
        prose.append(_prose_line(line))
        if last_heading is not None and not line.strip() and any(prose):
            doc.heading_prose.setdefault(last_heading.line, " ".join(p for p in prose if p))
        i += 1
    return doc


def prose_is_list(line: str) -> bool:
    """A list item or table row: never a setext heading's text."""
    return bool(re.match(r"^\s*([-*+|]|\d+[.)])\s", line))

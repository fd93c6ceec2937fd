"""Split a fenced shell block into the commands a runbook step can hold.

A logical command ends where the shell would end it: line continuations, open quotes,
here-documents and `for/while/if/case ... done/fi/esac` keep reading lines. A block whose
commands share state (`cd`, variables, a shebang, `$1`) is one script, shown and run whole;
otherwise each command is its own step. `$ ` prompts mark commands (the other lines are their
output); `# Output:` comments introduce sample output. Lines that are not commands are
returned as skipped, with their line numbers, never dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from incident_console.domain.command_rules import word_set
from incident_console.domain.command_table import RULES
from incident_console.domain.shell_words import Word, parse
from incident_console.runbook.markdown_scan import plain_text

_OPENERS = frozenset(("if", "for", "while", "until", "case", "select", "{"))
_CLOSERS = frozenset(("fi", "done", "esac", "}"))
_MIDDLE = frozenset(("then", "do", "else", "elif", "!"))
_STATE = word_set(
    "cd export source . set unset pushd popd alias declare local typeset readonly shopt trap "
    "umask ulimit shift exit return function"
)
#: Programs commonly written in runbooks that the allowlist does not hold (they change things).
_KNOWN = word_set(
    "rm mv cp mkdir rmdir chmod chown ln touch truncate kill pkill killall reboot shutdown poweroff "
    "apt apt-get yum dnf apk pip pip3 npm make fallocate mkswap swapoff sysctl update-grub "
    "modprobe useradd usermod tar gzip gunzip unzip service helm java jmap jstat jcmd node "
    "python python3 perl ruby go memcached sysdig dockerd containerd ctr crictl sync echo "
    "docker-compose docker kubectl systemctl journalctl git scp rsync ssh sudo nano vim vi "
    "iostat pidstat sar vmstat lsof strace tcpdump openssl cron crontab ufw firewall-cmd"
)
_CMD_WORD = re.compile(r"^[A-Za-z0-9_./~][\w./+@%-]*$")
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PROMPT = re.compile(r"^\s*\$\s?(.*)$")
_OUTPUT_MARK = re.compile(r"(?i)(result|output|expected|example output|результат|вывод)\b")


@dataclass(slots=True)
class Unit:
    """One logical command (or a whole script) of a block, with where it came from."""

    text: str
    line: int
    hint: str = ""
    why: str = ""
    note: str = ""


def looks_like_command(line: str, *, strict: bool) -> bool:
    """Is this line of a shell block a command (not a line of output or of a file)?

    `strict` (a block that names no language): only programs the classifier or this module
    knows count; in a block labelled shell an unknown lower-case word is a command too.
    """
    words = line.split()
    if not words:
        return False
    first = words[0]
    if first in _OPENERS or first in _CLOSERS or first[0] in "({!":
        return True
    if _ASSIGN.match(first):
        return True
    if not _CMD_WORD.match(first) or first.endswith(":"):
        return False
    name = first.rsplit("/", 1)[-1]
    if name in RULES or name in _KNOWN:
        return True
    if strict:
        return False
    return first[0].islower() or first.startswith(("./", "../", "/", "~"))


def is_shell_block(lines: list[str]) -> bool:
    """A block with no language: shell when one of its lines starts with a known program."""
    for raw in lines:
        line = raw.strip()
        match = _PROMPT.match(line)
        if match:
            line = match.group(1).strip()
        if line and not line.startswith("#") and looks_like_command(line, strict=True):
            return True
    return False


def complete(text: str) -> bool:
    """Would the shell run `text` now, or does it wait for more lines?"""
    stripped = text.rstrip()
    if stripped.endswith("\\") or re.search(r"(\|\||&&|\|)\s*$", stripped):
        return False
    parsed = parse(text)
    if any("unclosed" in p or "not closed" in p for p in parsed.problems):
        return False
    depth = 0
    for command in parsed.commands:
        for word in command.words:
            if word.quoted:
                break
            if word.value in _OPENERS:
                depth += 1
            elif word.value in _CLOSERS:
                depth -= 1
            elif word.value not in _MIDDLE:
                break
    return depth <= 0


def _trailing_comment(line: str) -> tuple[str, str]:
    """`cmd  # why` -> ('cmd', 'why'), a `#` inside quotes or a word is not a comment."""
    quote = ""
    for i, char in enumerate(line):
        if char in "'\"" and quote in ("", char):
            quote = "" if quote else char
        elif char == "#" and not quote and i > 0 and line[i - 1] in " \t":
            return line[:i].rstrip(), line[i + 1 :].strip()
    return line, ""


def _state_setter(text: str) -> bool:
    """A command whose effect later commands of the block depend on (cd, X=1, export)."""
    parsed = parse(text)
    for command in parsed.commands:
        words: list[Word] = list(command.words)
        if words and words[0].value in _OPENERS | _CLOSERS | _MIDDLE:
            return False  # a compound command keeps its state to itself
        while words and words[0].assignment:
            words.pop(0)
            if not words:
                return True
        if words and words[0].value in _STATE:
            return True
    return bool(re.search(r"\$(\{?[1-9@#*]\}?)", re.sub(r"'[^']*'", "", text)))


def _unwrap_ssh(unit: Unit) -> Unit | None:
    """`ssh root@h 'cmd'` -> the unit for cmd; a bare `ssh host` -> None."""
    parsed = parse(unit.text)
    if len(parsed.commands) != 1 or parsed.problems:
        return unit
    words = parsed.commands[0].words
    if not words or words[0].value != "ssh":
        return unit
    i = 1
    while i < len(words) and words[i].value.startswith("-"):
        i += 2 if words[i].value in ("-p", "-i", "-l", "-o", "-J", "-F") else 1
    rest = words[i + 1 :]
    if not rest:
        return None
    return Unit(
        " ".join(w.value for w in rest),
        unit.line,
        unit.hint,
        "unwrapped from ssh: the console already holds the session",
    )


def split_units(lines: list[str], block_line: int, prose: str) -> tuple[list[Unit], list[str]]:
    """The commands of a shell block (its lines start after `block_line`), and what was
    skipped, each as `line N: why: text`."""
    prompt_mode = any(_PROMPT.match(x) for x in lines)
    units: list[Unit] = []
    skipped: list[str] = []
    hint, in_output, shebang = "", False, False
    buf: list[str] = []
    start, buf_hint = 0, ""

    def emit() -> None:
        text = "\n".join(buf).strip("\n")
        comment = ""
        if "\n" not in text:
            text, comment = _trailing_comment(text)
        units.append(Unit(text, start, buf_hint or plain_text(comment)))
        buf.clear()

    for index, raw in enumerate(lines):
        number = block_line + 1 + index
        line = raw.rstrip()
        if buf:
            match = _PROMPT.match(line) if prompt_mode else None
            buf.append(match.group(1) if match and line.lstrip().startswith("$") else line)
            if complete("\n".join(buf)):
                emit()
            continue
        text = line.strip()
        if not text:
            hint, in_output = "", False
            continue
        if prompt_mode:
            match = _PROMPT.match(line)
            if match is None:
                if not text.startswith("#"):
                    skipped.append(f"line {number}: output shown in the block: {text[:60]}")
                continue
            line, text = match.group(1), match.group(1).strip()
        if index == 0 and text.startswith("#!"):
            shebang = True
            continue
        if text.startswith("#"):
            comment = text.lstrip("#").strip()
            in_output = bool(_OUTPUT_MARK.match(comment))
            hint = "" if in_output else plain_text(comment)
            continue
        if in_output or not looks_like_command(text, strict=False):
            skipped.append(f"line {number}: not a command (output or file text): {text[:60]}")
            continue
        buf.append(line.strip() if not line.startswith((" ", "\t")) else line.lstrip())
        start, buf_hint, hint = number, hint, ""
        if complete("\n".join(buf)):
            emit()
    if buf:
        emit()
    kept: list[Unit] = []
    for unit in units:
        unwrapped = _unwrap_ssh(unit)
        if unwrapped is None:
            skipped.append(f"line {unit.line}: {unit.text}: the console already holds the session")
            continue
        kept.append(unwrapped)
    if len(kept) > 1 and (shebang or any(_state_setter(u.text) for u in kept)):
        body = "\n".join((f"# {u.hint}\n" if u.hint else "") + u.text for u in kept)
        why = "a script: its commands share state (cd, variables), so it is shown and run whole"
        return [Unit(body, kept[0].line, kept[0].hint or "", why)], skipped
    for unit in kept:
        if not unit.why:
            unit.why = prose
        elif prose:
            unit.why = f"{prose} ({unit.why})"
    return kept, skipped

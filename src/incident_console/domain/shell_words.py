"""Split shell text into simple commands, their words and redirections (no execution).

Enough of POSIX sh for a classifier that denies by default: quotes, escapes, line
continuations, comments, `|`/`||`/`&&`/`;`/`&`/newline lists, `( )` groups, redirections
(with a file descriptor in front), here-documents, and expansions. A word that holds an
expansion (`$x`, `${x}`, `$(...)`, backticks) is *dynamic*: its value is not known until the
shell runs, so it may be any flag. The text of every command substitution is returned so the
caller can classify it too. What this lexer does not understand goes to `problems`: the
caller must treat a command with problems as one that changes the server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: Operators that end a simple command.
SEPARATORS = ("||", "&&", ";;", "|&", "|", "&", ";", "(", ")")
#: Redirection operators, longest first.
REDIRECTS = ("&>>", "<<<", "<<-", ">>", "<<", "<>", ">|", ">&", "<&", "&>", ">", "<")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-]")


@dataclass(frozen=True, slots=True)
class Word:
    """One shell word: its value with quotes removed (expansions left as written)."""

    value: str
    dynamic: bool = False
    quoted: bool = False
    #: Where in `value` the first quoted character is (-1: none): `X=1` is an assignment only
    #: when its `=` comes before any quote.
    quote_at: int = -1

    @property
    def assignment(self) -> bool:
        """`NAME=value` as the shell reads it (the name and `=` unquoted)."""
        name, eq, _ = self.value.partition("=")
        if not eq or not name or not (name[0].isalpha() or name[0] == "_"):
            return False
        if not name.replace("_", "a").isalnum() or not name.isascii():
            return False
        return self.quote_at == -1 or self.quote_at > len(name)


@dataclass(slots=True)
class Redirect:
    """`2>/dev/null`: the operator, the descriptor written before it, the target word."""

    op: str
    fd: str = ""
    target: Word | None = None


@dataclass(slots=True)
class Simple:
    """A simple command: words and redirections, and the operator that ended it."""

    words: list[Word] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)
    end: str = ""


@dataclass(slots=True)
class Parsed:
    """Everything found in a piece of shell text."""

    commands: list[Simple] = field(default_factory=list)
    substitutions: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _matching(text: str, i: int, close: str, open_: str) -> int:
    """Index just past the `close` that matches the `open_` before `i` (-1 when none)."""
    depth = 1
    quote = ""
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch == "\\":
            i += 2
            continue
        elif ch in "'\"`":
            quote = ch
        elif ch == open_ and open_ != close:
            depth += 1
        elif ch == close:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


class _Lexer:
    def __init__(self, text: str, params: dict[str, str] | None = None) -> None:
        self.text = text
        self.params = params or {}
        self.out = Parsed()
        self.cmd = Simple()
        self.value: list[str] = []
        self.in_word = False
        self.dynamic = False
        self.quoted = False
        self.quote_at = -1
        self.leading_glob = False
        self.pending: Redirect | None = None
        self.heredocs: list[tuple[str, bool, bool]] = []  # (delimiter, quoted, strip tabs)

    # Words and commands ------------------------------------------------------------------

    def finish_word(self) -> None:
        if not self.in_word:
            return
        value = "".join(self.value)
        # A word that starts with a bare glob or brace (`*`, `{-i,x}`) may expand to a flag.
        expands = (
            self.leading_glob
            and value not in ("[", "[[", "{", "{}")
            and (not value.startswith("{") or "," in value or ".." in value)
        )
        word = Word(value, self.dynamic or expands, self.quoted, self.quote_at)
        self.value, self.in_word, self.dynamic, self.quoted = [], False, False, False
        self.quote_at, self.leading_glob = -1, False
        if self.pending is not None:
            self.pending.target = word
            if self.pending.op in ("<<", "<<-"):
                self.heredocs.append((word.value, word.quoted, self.pending.op == "<<-"))
            self.pending = None
        else:
            self.cmd.words.append(word)

    def finish_command(self, end: str) -> None:
        self.finish_word()
        if self.pending is not None:
            self.out.problems.append(f"redirection {self.pending.op} without a target")
            self.pending = None
        if self.cmd.words or self.cmd.redirects:
            self.cmd.end = end
            self.out.commands.append(self.cmd)
        elif end in ("|", "&&", "||", "|&", "&") and not self.out.commands:
            self.out.problems.append(f"{end!r} with no command before it")
        self.cmd = Simple()

    def add(self, text: str, *, quoted: bool = False) -> None:
        if quoted and self.quote_at == -1:
            self.quote_at = sum(len(part) for part in self.value)
        self.value.append(text)
        self.in_word = True

    # Expansions --------------------------------------------------------------------------

    def expansion(self, i: int) -> int:
        """At a `$` or a backtick: record it, return the index after it."""
        text = self.text
        if text[i] == "`":
            end = text.find("`", i + 1)
            while end != -1 and text[end - 1] == "\\":
                end = text.find("`", end + 1)
            if end == -1:
                self.out.problems.append("unclosed backtick")
                return len(text)
            self.out.substitutions.append(text[i + 1 : end])
            self.add(text[i : end + 1])
            self.dynamic = True
            return end + 1
        nxt = text[i + 1 : i + 2]
        if text.startswith("$((", i):
            end = _matching(text, i + 3, ")", "(")
            if end == -1 or not text.startswith(")", end):
                self.out.problems.append("unclosed $((")
                return len(text)
            self.add(text[i : end + 1])
            self.dynamic = True
            return end + 1
        if nxt == "(":
            end = _matching(text, i + 2, ")", "(")
            if end == -1:
                self.out.problems.append("unclosed $(")
                return len(text)
            self.out.substitutions.append(text[i + 2 : end - 1])
            self.add(text[i:end])
            self.dynamic = True
            return end
        if nxt == "{":
            end = _matching(text, i + 2, "}", "{")
            if end == -1:
                self.out.problems.append("unclosed ${")
                return len(text)
            inner = text[i + 2 : end - 1]
            if inner in self.params:
                self.add(self.params[inner])
            else:
                self.add(text[i:end])
                self.dynamic = True
            return end
        match = _NAME.match(text, i + 1)
        if match is None:
            self.add("$")
            return i + 1
        name = match.group(0)
        if name in self.params:
            self.add(self.params[name])
        else:
            self.add("$" + name)
            self.dynamic = True
        return match.end()

    # The main loop -----------------------------------------------------------------------

    def heredoc_bodies(self, i: int) -> int:
        """After a newline: skip the bodies of the here-documents opened on that line."""
        text = self.text
        for delimiter, quoted, strip in self.heredocs:
            while True:
                if i >= len(text):
                    self.out.problems.append(f"here-document not closed by {delimiter!r}")
                    return i
                end = text.find("\n", i)
                end = len(text) if end == -1 else end
                line = text[i:end]
                i = end + 1
                if (line.lstrip("\t") if strip else line) == delimiter:
                    break
                if not quoted and ("$(" in line or "`" in line):
                    self.out.problems.append("command substitution inside a here-document")
        self.heredocs = []
        return i

    def run(self) -> Parsed:
        text = self.text
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == "\\":
                if text.startswith("\\\n", i):
                    i += 2
                    continue
                self.add(text[i + 1 : i + 2], quoted=True)
                self.quoted = True
                i += 2
                continue
            if ch == "'":
                end = text.find("'", i + 1)
                if end == -1:
                    self.out.problems.append("unclosed single quote")
                    break
                self.add(text[i + 1 : end], quoted=True)
                self.quoted = True
                i = end + 1
                continue
            if ch == '"':
                i = self.double_quoted(i + 1)
                continue
            if ch in "$`":
                i = self.expansion(i)
                continue
            if ch == "#" and not self.in_word:
                end = text.find("\n", i)
                i = len(text) if end == -1 else end
                continue
            if ch == "\n":
                self.finish_command(";")
                i = self.heredoc_bodies(i + 1)
                continue
            if ch in " \t\r":
                self.finish_word()
                i += 1
                continue
            if text.startswith(("<(", ">("), i):
                end = _matching(text, i + 2, ")", "(")
                if end == -1:
                    self.out.problems.append("unclosed process substitution")
                    break
                self.out.substitutions.append(text[i + 2 : end - 1])
                self.add(text[i:end])
                self.dynamic = True
                i = end
                continue
            redirect = next((op for op in REDIRECTS if text.startswith(op, i)), None)
            if redirect is not None:
                fd = ""
                if self.in_word and not self.quoted and "".join(self.value).isdigit():
                    fd = "".join(self.value)
                    self.value, self.in_word = [], False
                self.finish_word()
                found = Redirect(redirect, fd)
                self.cmd.redirects.append(found)
                self.pending = found
                i += len(redirect)
                continue
            separator = next((op for op in SEPARATORS if text.startswith(op, i)), None)
            if separator is not None:
                self.finish_command(separator)
                i += len(separator)
                continue
            if not self.in_word and ch in "*?[{":
                self.leading_glob = True
            self.add(ch)
            i += 1
        if self.heredocs:
            self.heredoc_bodies(len(text))
        self.finish_command("")
        return self.out

    def double_quoted(self, i: int) -> int:
        text = self.text
        self.quoted = True
        self.in_word = True
        if self.quote_at == -1:
            self.quote_at = sum(len(part) for part in self.value)
        while i < len(text):
            ch = text[i]
            if ch == '"':
                return i + 1
            if ch == "\\" and text[i + 1 : i + 2] in ('"', "\\", "$", "`", "\n"):
                if text[i + 1] != "\n":
                    self.add(text[i + 1])
                i += 2
                continue
            if ch in "$`":
                i = self.expansion(i)
                continue
            self.add(ch)
            i += 1
        self.out.problems.append("unclosed double quote")
        return len(text)


def parse(text: str, params: dict[str, str] | None = None) -> Parsed:
    """Split shell `text`; `params` gives known positional parameters (`$1` -> value)."""
    return _Lexer(text, params).run()

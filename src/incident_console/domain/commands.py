"""Which commands change a server: a deny-by-default classifier over argv and shell text.

A command is read-only only when its argv is recognised from an allowlist of read-only
commands and sub-commands with their flags; everything else changes the server. It lives in
`domain/` (pure, no I/O) rather than in `runbook/` because the monitor's one door
(`HostMonitor.change`) needs it and the monitor must not import the runbook layer.

This module's contract (used by the monitor, the runbook and the importer):

- `classify_argv(argv)` for an argv list, `classify_shell(text)` for shell text (each stage of
  a pipeline or a `;`/`&&`/`||` list, `sudo`/`ssh` wrappers unwrapped): a `CommandClass`.
- `CommandClass.changes` is False only when every part is recognised as read-only.
- `never_ends` (a follow, a stream, an interactive session) and `interactive` (`-it`, a shell)
  tell the runbook to bound the command or make the step manual.

The allowlist is `command_table.RULES`: programs and their flags in `command_rules*.py`, the
commands that run commands (sudo, timeout, docker exec, ssh, sh -c) in `command_wrappers.py`;
shell text is split by `shell_words.py`. Neither function ever raises: what cannot be analysed changes the server.
"""

from __future__ import annotations

from collections.abc import Sequence

from incident_console.domain.command_class import CommandClass, changes, read_only
from incident_console.domain.command_rules import PLAIN, RISKY_VARIABLES, word_set
from incident_console.domain.command_table import RULES
from incident_console.domain.shell_words import Parsed, Simple, Word, parse

__all__ = ["CommandClass", "classify_argv", "classify_shell"]

#: How deep `sh -c "ssh h 'sudo sh -c ...'"` may nest before the classifier gives up.
MAX_DEPTH = 8
#: Words that open or close a compound command; the words after them are a command.
_RESERVED_OPEN = frozenset(("!", "{", "then", "do", "else", "elif", "if", "while", "until", "time"))
_RESERVED_CLOSE = frozenset(("}", "done", "fi", "esac"))
#: Redirection targets that are not files on the server's disk.
_HARMLESS_TARGETS = frozenset(("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"))
_WRITES = (">", ">>", ">|", "&>", "&>>", "<>")
#: Where the programs the allowlist knows live; `./docker` may be anything.
_SYSTEM_DIRS = frozenset(("/bin", "/usr/bin", "/sbin", "/usr/sbin", "/usr/local/bin",
                          "/usr/local/sbin"))  # fmt: skip


class _Classifier:
    """One classification: the recursion depth, and the rules' view of the classifier."""

    def __init__(self, depth: int = 0) -> None:
        self.depth = depth

    def _deeper(self) -> _Classifier | None:
        return _Classifier(self.depth + 1) if self.depth < MAX_DEPTH else None

    def words(self, words: Sequence[Word]) -> CommandClass:
        deeper = self._deeper()
        if deeper is None:
            return changes("nested too deep to analyse")
        return deeper._simple_words(list(words))

    def shell(self, text: str, params: dict[str, str] | None = None) -> CommandClass:
        deeper = self._deeper()
        if deeper is None:
            return changes("nested too deep to analyse")
        return deeper._shell(text, params)

    # One simple command ------------------------------------------------------------------

    def _simple_words(self, words: list[Word]) -> CommandClass:
        while words and words[0].assignment:
            if words[0].value.partition("=")[0] in RISKY_VARIABLES:
                return changes(
                    f"sets {words[0].value.partition('=')[0]}: it decides which program runs"
                )
            words = words[1:]
        if not words:
            return read_only("sets a shell variable")
        program = words[0]
        if program.dynamic:
            return changes(
                f"the program {program.value!r} comes from a variable, substitution or glob"
            )
        name = program.value
        if "/" in name:
            where, _, name = name.rpartition("/")
            if where not in _SYSTEM_DIRS:
                return changes(f"{program.value}: a program outside the system's directories")
        rule = RULES.get(name)
        if rule is None:
            return changes(f"{name or program.value!r}: not known to be read-only")
        if name not in _DYNAMIC_OK and name not in _WRAPS and any(w.dynamic for w in words[1:]):
            return changes(f"{name}: an argument comes from a variable or substitution "
                           "(it could be any flag)")  # fmt: skip
        return rule(name, words[1:], self)

    def _simple(self, command: Simple) -> tuple[CommandClass, bool]:
        """The class of one simple command, and whether it opened an endless loop."""
        words = list(command.words)
        endless = False
        while words and not words[0].quoted and words[0].value in _RESERVED_OPEN:
            keyword = words.pop(0).value
            if keyword in ("while", "until") and words:
                endless = words[0].value in (("true", ":") if keyword == "while" else ("false",))
        if words and not words[0].quoted and words[0].value == "for":
            words = []  # `for NAME in WORDS`: the words' substitutions are classified apart
        elif words and not words[0].quoted and words[0].value in ("case", "function", "select"):
            return changes(f"a {words[0].value} statement is not analysed"), endless
        elif len(words) == 1 and not words[0].quoted and words[0].value in _RESERVED_CLOSE:
            words = []
        for redirect in command.redirects:
            if _writes_file(redirect.op, redirect.target):
                where = redirect.target.value if redirect.target else "?"
                return changes(f"redirects output to a file ({redirect.op} {where})"), endless
        if not words:
            return read_only("shell syntax only"), endless
        return self._simple_words(words), endless

    # Shell text --------------------------------------------------------------------------

    def _shell(self, text: str, params: dict[str, str] | None = None) -> CommandClass:
        parsed: Parsed = parse(text, params)
        if parsed.problems:
            return changes(f"cannot analyse the shell text: {parsed.problems[0]}")
        parts: list[CommandClass] = []
        endless = False
        for command in parsed.commands:
            found, loop = self._simple(command)
            endless |= loop
            if command.end == "&":
                found = CommandClass(found.changes, f"{found.reason} (in the background)",
                                     never_ends=True, interactive=found.interactive)  # fmt: skip
            parts.append(found)
        for inner in parsed.substitutions:
            found = self.shell(inner)
            parts.append(CommandClass(found.changes, f"$({inner.strip()[:40]}): {found.reason}",
                                      found.never_ends, found.interactive))  # fmt: skip
        if not parts:
            return read_only("no command")
        result = _combine(parts)
        if endless:
            result = CommandClass(result.changes, f"an endless loop: {result.reason}",
                                  never_ends=True, interactive=result.interactive)  # fmt: skip
        return result


def _writes_file(op: str, target: Word | None) -> bool:
    """`> file`, `>> file`, `&> file` (and `>& file`, not `>&2`): a file on the server."""
    if op == ">&" and target is not None and (target.value.isdigit() or target.value == "-"):
        return False
    if op not in _WRITES and op != ">&":
        return False
    return target is None or target.dynamic or target.value not in _HARMLESS_TARGETS


#: Programs whose arguments may come from a variable: none of their flags writes or runs.
_DYNAMIC_OK = PLAIN | {"tail", "uniq", "tee", "kubectl"}
#: Wrappers check the dynamic words of their inner command themselves.
_WRAPS = word_set(
    "sudo doas env timeout xargs watch ssh eval su nsenter nice nohup ionice time command builtin "
    "exec stdbuf docker docker-compose podman sh bash dash zsh ash ksh"
)


def _combine(parts: list[CommandClass]) -> CommandClass:
    changing = [p for p in parts if p.changes]
    never = any(p.never_ends for p in parts)
    inter = any(p.interactive for p in parts)
    if changing:
        reason = "; ".join(dict.fromkeys(p.reason for p in changing[:3]))
        return CommandClass(True, reason, never_ends=never, interactive=inter)
    if len(parts) == 1:
        return parts[0]
    flagged = [p.reason for p in parts if p.never_ends or p.interactive]
    reason = "every part reads only" + (f" ({'; '.join(flagged[:2])})" if flagged else "")
    return CommandClass(False, reason, never_ends=never, interactive=inter)


def classify_argv(argv: Sequence[str]) -> CommandClass:
    """Classify one argv (no shell: the first element is the program). Never raises."""
    try:
        if not argv:
            return changes("empty command")
        # No shell reads an argv: every word is literal, none is an assignment.
        return _Classifier().words([Word(str(part), quote_at=0) for part in argv])
    except Exception as exc:  # deny by default, even on a bug here
        return changes(f"could not analyse the command ({type(exc).__name__})")


def classify_shell(text: str) -> CommandClass:
    """Classify shell text (a snippet a runbook author wrote). Never raises."""
    try:
        return _Classifier()._shell(str(text))
    except Exception as exc:  # deny by default, even on a bug here
        return changes(f"could not analyse the shell text ({type(exc).__name__})")

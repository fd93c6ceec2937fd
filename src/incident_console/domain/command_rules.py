"""The allowlist: which programs (and which of their sub-commands and flags) only read.

Each rule gets the program's arguments as shell words and returns a `CommandClass`. A rule
answers read-only only for what it recognises; anything else changes the server. This module
holds the plain programs and the text tools (tail, sort, sed, awk, find...); system tools
(dmesg, journalctl, systemctl, top...) are in `command_rules_system.py`, network and service
clients (curl, kubectl, redis-cli, psql...) in `command_rules_services.py`, and commands that
run commands (sudo, timeout, docker exec, ssh, sh -c) in `command_wrappers.py`;
`command_table.RULES` holds them all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from incident_console.domain.command_class import CommandClass, changes, read_only
from incident_console.domain.shell_words import Word


def word_set(text: str) -> frozenset[str]:
    """The words of `text` as a set (tables of names read better as one string)."""
    return frozenset(text.split())


class Classifier(Protocol):
    """What a rule may ask of the classifier: the class of an inner command."""

    def words(self, words: Sequence[Word]) -> CommandClass: ...

    def shell(self, text: str, params: dict[str, str] | None = None) -> CommandClass: ...


Rule = Callable[[str, list[Word], Classifier], CommandClass]


@dataclass(slots=True)
class Opts:
    """Arguments split into options (name -> value or None) and operands."""

    options: dict[str, str | None] = field(default_factory=dict)
    operands: list[Word] = field(default_factory=list)
    dynamic: bool = False

    def has(self, *names: str) -> bool:
        return any(name in self.options for name in names)

    def value(self, *names: str) -> str | None:
        for name in names:
            if self.options.get(name) is not None:
                return self.options[name]
        return None


def parse_opts(
    args: Sequence[Word],
    short_values: str = "",
    long_values: Sequence[str] = (),
    *,
    stop_at_operand: bool = False,
) -> Opts:
    """GNU-style options: `-abc` clusters, `-n5`/`-n 5`, `--name=value`/`--name value`.

    `short_values` are the short options that take a value, `long_values` the long ones.
    With `stop_at_operand` the first operand ends the options (the rest are operands).
    """
    out = Opts()
    i = 0
    while i < len(args):
        word = args[i]
        text = word.value
        out.dynamic |= word.dynamic
        if word.dynamic or text == "-" or not text.startswith("-"):
            out.operands.append(word)
            i += 1
            if stop_at_operand:
                out.operands.extend(args[i:])
                out.dynamic |= any(w.dynamic for w in args[i:])
                break
            continue
        if text == "--":
            out.operands.extend(args[i + 1 :])
            out.dynamic |= any(w.dynamic for w in args[i + 1 :])
            break
        if text.startswith("--"):
            name, eq, value = text.partition("=")
            if not eq and name[2:] in long_values and i + 1 < len(args):
                i += 1
                value = args[i].value
                out.dynamic |= args[i].dynamic
            out.options[name] = value if (eq or name[2:] in long_values) else None
            i += 1
            continue
        cluster = text[1:]
        for j, char in enumerate(cluster):
            if char in short_values:
                rest = cluster[j + 1 :]
                if not rest and i + 1 < len(args):
                    i += 1
                    rest = args[i].value
                    out.dynamic |= args[i].dynamic
                out.options[f"-{char}"] = rest
                break
            out.options[f"-{char}"] = None
        i += 1
    return out


# Plain programs -------------------------------------------------------------------------

#: Programs that only read, whatever their flags (none of their options writes a file).
PLAIN = word_set(
    "cat head wc ls stat which whereis id whoami groups uname uptime echo printf true "
    "false test [ [[ pwd basename dirname readlink realpath nproc lscpu lsblk lsmem lspci lsusb "
    "lsns lsmod lsof pgrep pidof printenv getent dig host cut tr column nl rev tac jq "
    "grep egrep fgrep zgrep zcat diff cmp comm md5sum sha1sum sha256sum sha512sum base64 od "
    "hexdump strings seq sleep numfmt expr du df ps free findmnt arch getconf w who last "
    "pmap numastat systemd-cgls traceroute tracepath : wait cd pushd popd export "
    "unset set shopt local declare typeset readonly read shift exit return break continue "
    "let unalias type jobs umask ulimit paste join fold fmt expand unexpand cgget lsattr "
    "getfacl namei netstat iptables-save"
)
#: Shell built-ins that only change the shell itself, never the server.
SHELL_LOCAL = word_set(
    "cd pushd popd export unset set shopt local declare typeset readonly read shift exit return "
    "break continue let unalias umask ulimit wait : true false"
)
#: Variables that decide which program runs or what it loads: setting one changes the server's
#: behaviour for every command after it (`PATH=/tmp/x:$PATH ls` runs /tmp/x/ls).
RISKY_VARIABLES = word_set(
    "PATH LD_PRELOAD LD_LIBRARY_PATH LD_AUDIT BASH_ENV ENV IFS PROMPT_COMMAND SHELLOPTS "
    "BASHOPTS PS4 GCONV_PATH PYTHONPATH PYTHONSTARTUP NODE_OPTIONS PERL5OPT"
)
#: Full-screen or prompting programs: they need a terminal.
INTERACTIVE = word_set("less more most man htop btop atop glances iftop nload mc tmux screen")
#: Editors: interactive, and they write files.
EDITORS = word_set("vi vim nvim nano emacs ed pico joe mcedit sudoedit")


def plain(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    if prog in ("export", "declare", "typeset", "local", "readonly") and any(
        w.dynamic or w.value.partition("=")[0] in RISKY_VARIABLES for w in args
    ):
        return changes(f"{prog}: sets a variable that decides which program runs (PATH, LD_*)")
    if prog == "free" and parse_opts(args, "sc", ("seconds", "count")).has("-s", "--seconds"):
        o = parse_opts(args, "sc", ("seconds", "count"))
        if not o.has("-c", "--count"):
            return read_only("free -s: repeats until interrupted", never_ends=True)
    if prog in SHELL_LOCAL:
        return read_only(f"{prog}: a shell built-in that changes only the shell itself")
    return read_only(f"{prog}: reads only")


def interactive(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    return CommandClass(
        False, f"{prog}: a full-screen program (needs a terminal)", interactive=True
    )


def editor(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    return changes(f"{prog}: edits files in a terminal", interactive=True)


# Programs whose flags decide ------------------------------------------------------------


def flagged(writes: tuple[str, ...], what: str, *, max_operands: int = -1) -> Rule:
    """A read-only program but for the flags in `writes` (or more than `max_operands`)."""

    def rule(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
        o = parse_opts(args)
        if o.has(*writes) or (max_operands >= 0 and len(o.operands) > max_operands):
            return changes(f"{prog}: {what}")
        return read_only(f"{prog}: reads only")

    return rule


def shell_code(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    """alias/trap/hash with arguments: code or a path the shell will run later, unread."""
    if not args or all(w.value in ("-p", "-l", "-t", "-r") for w in args):
        return read_only(f"{prog}: lists only")
    return changes(f"{prog}: defines code or a path the shell runs later (not analysed)")


def dynamic_argument(prog: str) -> CommandClass:
    return changes(
        f"{prog}: an argument comes from a variable, substitution or glob (could be any flag)"
    )


def tail(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "ncs", ("lines", "bytes", "sleep-interval", "pid", "max-unchanged-stats"))
    if o.has("-f", "-F", "--follow"):
        return read_only(f"{prog} -f: follows the file (never ends)", never_ends=True)
    return read_only(f"{prog}: reads only")


def sort(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "ktoST", ("key", "field-separator", "output", "buffer-size",
                                   "temporary-directory", "parallel", "batch-size",
                                   "files0-from", "random-source", "compress-program"))  # fmt: skip
    if o.has("-o", "--output"):
        return changes(f"{prog} -o: writes the output file")
    if o.has("--compress-program"):
        return changes(f"{prog} --compress-program: runs another program")
    return read_only(f"{prog}: reads only")


def uniq(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "fsw", ("skip-fields", "skip-chars", "check-chars"))
    if len(o.operands) > 1:
        return changes(f"{prog} INPUT OUTPUT: writes the output file")
    return read_only(f"{prog}: reads only")


def tee(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "", ("output-error",))
    files = [w.value for w in o.operands if w.value != "/dev/null" or w.dynamic]
    if files:
        return changes(f"{prog}: writes {files[0]}")
    return read_only(f"{prog}: copies its input to its output only")


_AWK_WRITES = re.compile(r"\bsystem\s*\(|\||\bprintf?\b[^;{}\n]*>")


def awk(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "Fvfile", ("field-separator", "assign", "file", "include", "load",
                                   "source"))  # fmt: skip
    if o.has("-f", "--file", "-i", "--include", "-l", "--load", "-e", "--source"):
        return changes(
            f"{prog}: runs a program from a file or extension the classifier cannot read"
        )
    if not o.operands or o.operands[0].dynamic:
        return changes(f"{prog}: the program text is not known")
    program = o.operands[0].value
    if _AWK_WRITES.search(program.replace("||", "")):
        return changes(f"{prog}: the program runs commands or writes files (system, |, >)")
    return read_only(f"{prog}: the program only reads and prints")


_SED_SUBST = re.compile(
    r"s(?P<d>[^\\\n\w\s])(?:\\.|(?!(?P=d)).)*(?P=d)(?:\\.|(?!(?P=d)).)*(?P=d)(?P<f>\w*)"
)
_SED_WRITE = re.compile(r"(?:^|[;\n{}])\s*(?:[0-9$,~+!\s]|/(?:\\.|[^/])*/)*\s*[wWe]")


def sed(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    scripts: list[str] = []
    operands: list[Word] = []
    i = 0
    while i < len(args):
        word, text = args[i], args[i].value
        i += 1
        if word.dynamic:
            return dynamic_argument(prog)
        if text.startswith("--in-place"):
            return changes(f"{prog} -i: edits the file in place")
        if text in ("-f", "--file") or text.startswith("--file="):
            return changes(f"{prog} -f: runs a script from a file the classifier cannot read")
        if text.startswith("--expression"):
            value = text.partition("=")[2]
            if not value and i < len(args):
                value, i = args[i].value, i + 1
            scripts.append(value)
            continue
        if not text.startswith("-") or text == "-":
            operands.append(word)
            continue
        for j, char in enumerate(text[1:]):
            if char == "i":
                return changes(f"{prog} -i: edits the file in place")
            if char == "f":
                return changes(f"{prog} -f: runs a script from a file the classifier cannot read")
            if char in "el":
                value = text[j + 2 :]
                if not value and i < len(args):
                    value, i = args[i].value, i + 1
                if char == "e":
                    scripts.append(value)
                break
    if not scripts and operands:
        scripts.append(operands[0].value)
    for script in scripts:
        flags = "".join(m.group("f") for m in _SED_SUBST.finditer(script))
        rest = _SED_SUBST.sub("", script)
        if "w" in flags or "e" in flags or _SED_WRITE.search(rest):
            return changes(f"{prog}: the script writes a file or runs a command (w, e)")
    return read_only(f"{prog}: prints the edited text, the file is not changed")


def find(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    inner_results: list[CommandClass] = []
    i = 0
    while i < len(args):
        text = args[i].value
        if text == "-delete":
            return changes(f"{prog} -delete: deletes files")
        if text in ("-fprint", "-fprint0", "-fprintf", "-fls"):
            return changes(f"{prog} {text}: writes a file")
        if text in ("-exec", "-execdir", "-ok", "-okdir"):
            end = i + 1
            while end < len(args) and args[end].value not in (";", "+"):
                end += 1
            inner = [
                Word("FILE", dynamic=True) if w.value == "{}" else w for w in args[i + 1 : end]
            ]
            found = ctx.words(inner) if inner else changes(f"{prog} {text}: no command")
            if text.startswith("-ok"):
                found = CommandClass(found.changes, found.reason, found.never_ends, True)
            inner_results.append(found)
            i = end + 1
            continue
        i += 1
    for found in inner_results:
        if found.changes:
            return changes(f"{prog} -exec: {found.reason}")
    if any(r.interactive for r in inner_results):
        return CommandClass(False, f"{prog} -ok: asks before each file", interactive=True)
    return read_only(f"{prog}: lists files only")


TEXT_RULES: dict[str, Rule] = {
    **{name: plain for name in PLAIN},
    **{name: interactive for name in INTERACTIVE},
    **{name: editor for name in EDITORS},
    "tail": tail, "sort": sort, "uniq": uniq, "tee": tee, "sed": sed, "find": find,
    "awk": awk, "gawk": awk, "mawk": awk, "nawk": awk, "busybox-awk": awk,
    "file": flagged(("-C", "--compile"), "-C writes a magic file"),
    "xxd": flagged((), "xxd IN OUT writes the output file", max_operands=1),
    "tree": flagged(("-o",), "-o writes the listing to a file"),
    "alias": shell_code, "trap": shell_code, "hash": shell_code,
}  # fmt: skip

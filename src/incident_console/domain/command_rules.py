"""The allowlist: which programs (and which of their sub-commands and flags) only read.

Each rule gets the program's arguments as shell words and returns a `CommandClass`. A rule
answers read-only only for what it recognises; anything else changes the server. Wrappers
that run another command (`sudo`, `timeout`, `docker exec`, `ssh host cmd`, `xargs`,
`watch`, `sh -c`) live in `command_wrappers.py`; both are looked up through `RULES`.
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
    "cat head wc ls stat file which whereis id whoami groups uname uptime echo printf true "
    "false test [ [[ pwd basename dirname readlink realpath nproc lscpu lsblk lsmem lspci lsusb "
    "lsns lsmod lsof pgrep pidof printenv getent nslookup dig host cut tr column nl rev tac jq "
    "grep egrep fgrep zgrep zcat diff cmp comm md5sum sha1sum sha256sum sha512sum base64 xxd od "
    "hexdump strings seq sleep numfmt expr du df ps free findmnt blkid arch getconf w who last "
    "pmap smem numastat systemd-cgls traceroute tracepath : wait cd pushd popd export "
    "unset set shopt local declare typeset readonly read shift exit return break continue trap "
    "let alias unalias type hash jobs umask ulimit paste join fold fmt expand unexpand cgget lsattr "
    "getfacl namei tree"
)
#: Shell built-ins that only change the shell itself, never the server.
SHELL_LOCAL = word_set(
    "cd pushd popd export unset set shopt local declare typeset readonly read shift exit return "
    "break continue trap let alias unalias umask ulimit wait : true false hash"
)
#: Full-screen or prompting programs: they need a terminal.
INTERACTIVE = word_set("less more most man htop btop atop glances iftop nload mc tmux screen")
#: Editors: interactive, and they write files.
EDITORS = word_set("vi vim nvim nano emacs ed pico joe mcedit sudoedit")


def plain(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
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


def _dynamic(prog: str) -> CommandClass:
    return changes(f"{prog}: an argument comes from a variable or substitution (could be any flag)")


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
            return _dynamic(prog)
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


def date(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "dfrI", ("date", "file", "reference", "set"))
    if o.has("-s", "--set") or any(not w.value.startswith("+") for w in o.operands):
        return changes(f"{prog}: sets the system clock")
    return read_only(f"{prog}: prints the time")


def hostname(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "F", ("file",))
    if o.operands or o.has("-F", "--file", "-b", "--boot"):
        return changes(f"{prog} NAME: sets the host name")
    return read_only(f"{prog}: prints the host name")


def swapon(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "", ("show",))
    if o.operands or o.has("-a", "--all", "-p", "--priority", "-e"):
        return changes(f"{prog}: enables swap")
    return read_only(f"{prog} --show: lists swap areas")


def mount(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "tOL", ("types", "test-opts"))
    if o.operands or o.has("-a", "--all", "-o", "--options", "-B", "--bind", "-M", "--move"):
        return changes(f"{prog}: mounts a file system")
    return read_only(f"{prog}: lists the mounts")


_REPEAT_VALUES = {"vmstat": "Sp", "iostat": "pjg", "mpstat": "PIN", "pidstat": "pCGTe",
                  "sar": "nPIofse"}  # fmt: skip


def repeating(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    """vmstat/iostat/mpstat/pidstat/sar [interval [count]]: an interval without a count
    repeats until interrupted."""
    o = parse_opts(args, _REPEAT_VALUES.get(prog, ""), ("unit", "partition", "human"))
    if o.has("-o"):
        return changes(f"{prog} -o: writes a data file")
    numbers = [w for w in o.operands if w.value.isdigit()]
    if o.dynamic:
        return _dynamic(prog)
    if len(numbers) == 1 and numbers[0].value != "0":
        return read_only(f"{prog} {numbers[0].value}: an interval without a count (never ends)",
                         never_ends=True)  # fmt: skip
    return read_only(f"{prog}: reads only")


def top(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "ndpuUoOswE", ("iterations", "delay", "pid", "user"))
    if not o.has("-b", "--batch"):
        return CommandClass(False, f"{prog}: full screen unless -b -n N (needs a terminal)",
                            interactive=True)  # fmt: skip
    if not o.has("-n", "--iterations"):
        return read_only(f"{prog} -b without -n: repeats until interrupted", never_ends=True)
    return read_only(f"{prog} -b -n: one report")


def cgtop(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "ndMk", ("iterations", "delay", "depth", "order", "machine"))
    if not o.has("-n", "--iterations"):
        return read_only(f"{prog} without -n: repeats until interrupted", never_ends=True)
    return read_only(f"{prog} -n: bounded report")


def ping(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "ciwWstIpQlMmF", ("count", "deadline"))
    if not o.has("-c", "-w", "--count", "--deadline"):
        return read_only(f"{prog} without -c: pings until interrupted", never_ends=True)
    return read_only(f"{prog} -c: a bounded number of pings")


def netcat(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "wsipqxXIOPTV", ())
    if o.has("-z"):
        return read_only(f"{prog} -z: checks the port, sends nothing")
    return changes(f"{prog}: opens a connection that may send data or listen")


def dmesg(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "flnsF", ("facility", "level", "console-level", "buffer-size", "file",
                                   "time-format"))  # fmt: skip
    for flag in ("-C", "--clear", "-c", "--read-clear", "-D", "--console-off", "-E",
                 "--console-on", "-n", "--console-level"):  # fmt: skip
        if o.has(flag):
            return changes(f"{prog} {flag}: clears the kernel buffer or changes the console")
    if o.has("-w", "--follow", "-W", "--follow-new"):
        return read_only(f"{prog} -w: follows the kernel log (never ends)", never_ends=True)
    return read_only(f"{prog}: reads the kernel log")


_JOURNAL_CHANGES = ("--vacuum-size", "--vacuum-time", "--vacuum-files", "--rotate", "--flush",
                    "--sync", "--relinquish-var", "--smart-relinquish-var", "--setup-keys",
                    "--update-catalog")  # fmt: skip


def journalctl(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "unptSUDMgoFiI", ("unit", "user-unit", "lines", "priority", "output",
                   "identifier", "since", "until", "directory", "machine", "grep", "facility",
                   "field", "cursor", "after-cursor", "root", "image", "namespace",
                   "output-fields", "file", "vacuum-size", "vacuum-time", "vacuum-files"))  # fmt: skip
    for flag in _JOURNAL_CHANGES:
        if o.has(flag):
            return changes(f"{prog} {flag}: removes or rewrites journal files")
    if o.has("-f", "--follow"):
        return read_only(f"{prog} -f: follows the journal (never ends)", never_ends=True)
    return read_only(f"{prog}: reads the journal")


_SYSTEMCTL_READ = word_set(
    "status show is-active is-enabled is-failed is-system-running list-units list-unit-files "
    "list-timers list-sockets list-dependencies list-jobs list-machines cat help get-default "
    "show-environment"
)


def systemctl(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "tpHMnos", ("type", "state", "property", "host", "machine", "lines",
                                     "output", "signal", "kill-whom", "root"))  # fmt: skip
    if o.has("--version", "-h", "--help"):
        return read_only(f"{prog} --version: prints the version")
    if not o.operands:
        return read_only(f"{prog}: lists the units")
    verb = o.operands[0]
    if verb.dynamic:
        return _dynamic(prog)
    if verb.value in _SYSTEMCTL_READ:
        return read_only(f"{prog} {verb.value}: reads only")
    return changes(f"{prog} {verb.value}: changes a unit or the system")


_CURL_WRITES_FILE = ("-o", "--output", "-D", "--dump-header", "-c", "--cookie-jar", "--trace",
                     "--trace-ascii", "--stderr", "--libcurl", "--etag-save", "--hsts",
                     "--alt-svc", "--output-dir")  # fmt: skip
_CURL_SENDS = ("-d", "--data", "--data-raw", "--data-binary", "--data-urlencode", "--data-ascii",
               "-F", "--form", "--form-string", "-T", "--upload-file", "--json")  # fmt: skip


def curl(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "XdoHAueTFDcbmwxrEKCyYzQtU", (
        "request", "data", "data-raw", "data-binary", "data-urlencode", "data-ascii", "json",
        "output", "header", "user-agent", "user", "referer", "upload-file", "form", "form-string",
        "dump-header", "cookie-jar", "cookie", "max-time", "write-out", "proxy", "range", "cert",
        "config", "continue-at", "trace", "trace-ascii", "stderr", "libcurl", "etag-save", "hsts",
        "alt-svc", "output-dir", "unix-socket", "connect-timeout", "retry", "resolve", "cacert",
        "key", "proxy-user", "url"))  # fmt: skip
    method = (o.value("-X", "--request") or "GET").upper()
    if method not in ("GET", "HEAD"):
        return changes(f"{prog} -X {method}: sends a request that may change something")
    for flag in _CURL_SENDS:
        if o.has(flag):
            return changes(f"{prog} {flag}: sends data")
    for flag in _CURL_WRITES_FILE:
        if o.has(flag) and o.value(flag) not in ("-", "/dev/null", "%{http_code}"):
            return changes(f"{prog} {flag}: writes a file")
    if o.has("-O", "--remote-name", "--remote-name-all", "-J", "--create-dirs"):
        return changes(f"{prog} -O: writes the download to a file")
    if o.has("-K", "--config"):
        return changes(f"{prog} -K: reads options from a file the classifier cannot see")
    return read_only(f"{prog}: a GET request, output to the terminal")


def wget(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "OoatTwQPe", ("output-document", "output-file", "append-output",
                                      "post-data", "post-file", "method", "body-data"))  # fmt: skip
    if o.has("--post-data", "--post-file", "--method", "--body-data", "-o", "--output-file",
             "-a", "--append-output", "-e"):  # fmt: skip
        return changes(f"{prog}: sends data or writes a log file")
    if o.has("--spider") or o.value("-O", "--output-document") == "-":
        return read_only(f"{prog}: output to the terminal only")
    return changes(f"{prog}: saves the download to a file")


def ip(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    words: list[str] = []
    i = 0
    while i < len(args):
        text = args[i].value
        i += 1
        if args[i - 1].dynamic:
            return _dynamic(prog)
        if text in ("-b", "-batch", "-force"):
            return changes(f"{prog} -batch: runs commands from a file")
        if text in ("-n", "-netns", "-f", "-family"):
            i += 1
        elif not text.startswith("-"):
            words.append(text)
    if not words:
        return read_only(f"{prog}: prints usage")
    if len(words) == 1 or words[1] in ("show", "list", "ls", "lst", "get", "sh", "s", "l"):
        return read_only(f"{prog} {words[0]}: shows only")
    return changes(f"{prog} {' '.join(words[:2])}: changes the network configuration")


def iptables(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "t", ("table",))
    lists = o.has("-L", "--list", "-S", "--list-rules")
    if lists and not o.has("-Z", "--zero", "-A", "-I", "-D", "-R", "-N", "-X", "-E", "-P", "-F",
                           "--flush", "--append", "--insert", "--delete"):  # fmt: skip
        return read_only(f"{prog} -L: lists the rules")
    return changes(f"{prog}: changes the firewall")


_KUBECTL_GLOBAL_VALUES = ("-n", "--namespace", "--context", "--kubeconfig", "--cluster", "--user",
                          "-s", "--server", "--request-timeout", "--as", "--token")  # fmt: skip
_KUBECTL_READ = ("describe", "top", "explain", "api-resources", "api-versions", "version", "diff")


def kubectl(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    from incident_console.domain.command_wrappers import kubectl_exec

    verb: Word | None = None
    i = 0
    while i < len(args):
        if args[i].dynamic:
            return _dynamic(prog)
        text = args[i].value
        if text in _KUBECTL_GLOBAL_VALUES:
            i += 2
            continue
        if not text.startswith("-"):
            verb = args[i]
            break
        i += 1
    if verb is None:
        return read_only(f"{prog}: prints usage")
    name = verb.value
    rest = args[:i] + args[i + 1 :]
    if name == "exec":
        return kubectl_exec(prog, rest, ctx)
    if name == "logs":
        o = parse_opts(rest, "nclsL", ("namespace", "container", "selector", "since", "since-time",
                                      "tail", "context", "kubeconfig", "limit-bytes"))  # fmt: skip
        if o.has("-f", "--follow"):
            return read_only(f"{prog} logs -f: follows (never ends)", never_ends=True)
        return read_only(f"{prog} logs: reads only")
    o = parse_opts(rest, "nloLfcs", ("namespace", "selector", "output", "label-columns", "filename",
                   "field-selector", "sort-by", "template", "context", "kubeconfig", "chunk-size",
                   "output-directory", "container", "server"))  # fmt: skip
    sub = [w.value for w in o.operands]
    if name in ("get", "events"):
        if o.has("-w", "--watch", "--watch-only"):
            return read_only(f"{prog} {name} -w: watches (never ends)", never_ends=True)
        return read_only(f"{prog} {name}: reads only")
    if name in _KUBECTL_READ:
        return read_only(f"{prog} {name}: reads only")
    if name == "cluster-info":
        if o.has("--output-directory"):
            return changes(f"{prog} cluster-info dump --output-directory: writes files")
        return read_only(f"{prog} cluster-info: reads only")
    if name == "config" and sub[:1] and sub[0] in ("view", "get-contexts", "current-context",
                                                   "get-clusters", "get-users"):  # fmt: skip
        return read_only(f"{prog} config {sub[0]}: reads only")
    if name == "auth" and sub[:1] == ["can-i"]:
        return read_only(f"{prog} auth can-i: asks only")
    if name == "rollout" and sub[:1] and sub[0] in ("status", "history"):
        return read_only(f"{prog} rollout {sub[0]}: reads only")
    return changes(f"{prog} {name}: changes the cluster")


_REDIS_READ = word_set(
    "PING INFO DBSIZE TIME GET MGET TTL PTTL TYPE EXISTS STRLEN LLEN SCARD HLEN ZCARD SCAN "
    "LRANGE SMEMBERS HGET HGETALL ZRANGE ROLE LASTSAVE"
)
_REDIS_READ_2 = word_set(
    "MEMORY:STATS MEMORY:USAGE MEMORY:DOCTOR MEMORY:MALLOC-STATS CONFIG:GET SLOWLOG:GET "
    "SLOWLOG:LEN CLIENT:LIST CLIENT:INFO LATENCY:LATEST LATENCY:DOCTOR CLUSTER:INFO "
    "CLUSTER:NODES"
)


def redis_cli(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "hpansuri", ("user", "pass"), stop_at_operand=True)
    if o.has("--stat", "--latency", "--monitor", "-r") and not o.operands:
        return read_only(f"{prog} --stat: repeats until interrupted", never_ends=True)
    if o.has("--bigkeys", "--memkeys", "--hotkeys") and not o.operands:
        return read_only(f"{prog} --bigkeys: scans keys, reads only")
    if not o.operands:
        return changes(f"{prog}: an interactive prompt that can run any command", interactive=True)
    if o.dynamic:
        return _dynamic(prog)
    words = [w.value.upper() for w in o.operands]
    if words[0] in _REDIS_READ or ":".join(words[:2]) in _REDIS_READ_2:
        return read_only(f"{prog} {' '.join(words[:2])}: reads only")
    return changes(f"{prog} {words[0]}: a redis command that may write")


def database_client(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "cefdUhpPuD", ("command", "execute", "file", "dbname", "username",
                                                "host", "port", "user", "eval"))  # fmt: skip
    if o.has("-c", "--command", "-e", "--execute", "-f", "--file", "--eval"):
        return changes(f"{prog}: runs SQL (or a script) the classifier does not analyse")
    if o.has("-l", "--list", "--version", "-V"):
        return read_only(f"{prog} -l: lists only")
    return changes(f"{prog}: an interactive session that can change the database", interactive=True)


def yq(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "poI", ("output-format", "input-format", "indent"))
    if o.has("-i", "--inplace"):
        return changes(f"{prog} -i: edits the file in place")
    return read_only(f"{prog}: prints only")


def crontab(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "u", ())
    if o.has("-l") and not o.operands:
        return read_only(f"{prog} -l: lists only")
    return changes(f"{prog}: installs or removes a crontab", interactive=o.has("-e"))


RULES: dict[str, Rule] = {
    **{name: plain for name in PLAIN},
    **{name: interactive for name in INTERACTIVE},
    **{name: editor for name in EDITORS},
    "tail": tail, "sort": sort, "uniq": uniq, "tee": tee, "sed": sed, "find": find,
    "awk": awk, "gawk": awk, "mawk": awk, "nawk": awk, "busybox-awk": awk,
    "date": date, "hostname": hostname, "swapon": swapon, "mount": mount,
    "vmstat": repeating, "iostat": repeating, "mpstat": repeating, "pidstat": repeating,
    "sar": repeating, "top": top, "systemd-cgtop": cgtop, "ping": ping, "ping6": ping,
    "nc": netcat, "ncat": netcat, "netcat": netcat, "dmesg": dmesg, "journalctl": journalctl,
    "systemctl": systemctl, "curl": curl, "wget": wget, "ip": ip, "iptables": iptables,
    "ip6tables": iptables, "iptables-save": plain, "ss": plain, "netstat": plain,
    "kubectl": kubectl, "redis-cli": redis_cli, "psql": database_client,
    "mysql": database_client, "mariadb": database_client, "mongo": database_client,
    "mongosh": database_client, "sqlite3": database_client, "yq": yq, "crontab": crontab,
}  # fmt: skip

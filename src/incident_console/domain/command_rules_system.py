"""The allowlist's system tools: kernel log, journal, units, process and memory monitors.

Read-only only with the flags that keep them so: `dmesg -C` clears, `journalctl --vacuum-*`
removes, `systemctl restart` changes a unit; `vmstat 1` (an interval without a count), `top -b`
without `-n`, `ping` without `-c`, `dmesg -w` never end.
"""

from __future__ import annotations

from incident_console.domain.command_class import CommandClass, changes, read_only
from incident_console.domain.command_rules import (
    Classifier,
    Rule,
    dynamic_argument,
    flagged,
    parse_opts,
    word_set,
)
from incident_console.domain.shell_words import Word


def nslookup(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    if not [w for w in args if not w.value.startswith("-")]:
        return CommandClass(False, f"{prog}: an interactive prompt", interactive=True)
    return read_only(f"{prog}: a DNS query")


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
        return dynamic_argument(prog)
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


_JOURNAL_CHANGES = (
    "--cursor-file","--vacuum-size", "--vacuum-time", "--vacuum-files", "--rotate", "--flush",
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
        return dynamic_argument(prog)
    if verb.value in _SYSTEMCTL_READ:
        return read_only(f"{prog} {verb.value}: reads only")
    return changes(f"{prog} {verb.value}: changes a unit or the system")


def ip(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    words: list[str] = []
    i = 0
    while i < len(args):
        text = args[i].value
        i += 1
        if args[i - 1].dynamic:
            return dynamic_argument(prog)
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


def crontab(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "u", ())
    if o.has("-l") and not o.operands:
        return read_only(f"{prog} -l: lists only")
    return changes(f"{prog}: installs or removes a crontab", interactive=o.has("-e"))


SYSTEM_RULES: dict[str, Rule] = {
    "date": date, "hostname": hostname, "swapon": swapon, "mount": mount,
    "vmstat": repeating, "iostat": repeating, "mpstat": repeating, "pidstat": repeating,
    "sar": repeating, "top": top, "systemd-cgtop": cgtop, "ping": ping, "ping6": ping,
    "nc": netcat, "ncat": netcat, "netcat": netcat, "dmesg": dmesg, "journalctl": journalctl,
    "systemctl": systemctl, "ip": ip, "iptables": iptables, "ip6tables": iptables,
    "ss": flagged(("-K", "--kill"), "-K closes sockets"), "nslookup": nslookup,
    "crontab": crontab,
}  # fmt: skip

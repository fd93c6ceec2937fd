"""The allowlist's commands that run other commands, and docker (whose `exec` is one).

`sudo`, `env`, `nice`, `timeout`, `xargs`, `watch`, `ssh host 'cmd'`, `sh -c 'cmd'`,
`docker exec CONTAINER cmd`, `kubectl exec POD -- cmd`: the wrapper itself changes nothing;
the class is the inner command's, with what the wrapper adds (a timeout bounds it, `watch`
repeats it, `-it` makes it interactive).
"""

from __future__ import annotations

from incident_console.domain.command_class import CommandClass, changes, read_only
from incident_console.domain.command_rules import (
    RISKY_VARIABLES,
    Classifier,
    Rule,
    parse_opts,
    word_set,
)
from incident_console.domain.shell_words import Word

#: Shells: `sh -c TEXT` is classified as shell text; a bare shell is interactive.
SHELLS = word_set("sh bash dash zsh ash ksh mksh busybox-sh fish")


def _inner(prog: str, found: CommandClass, *, bounded: bool = False) -> CommandClass:
    return CommandClass(
        found.changes,
        f"{prog}: {found.reason}",
        never_ends=found.never_ends and not bounded,
        interactive=found.interactive,
    )


def _is_shell(words: list[Word]) -> bool:
    """A shell started without a command: an interactive session."""
    if not words:
        return False
    name = words[0].value.rsplit("/", 1)[-1]
    return name in SHELLS and not any(w.value == "-c" for w in words[1:])


def _run_inner(prog: str, words: list[Word], ctx: Classifier, **kw: bool) -> CommandClass:
    if not words:
        return changes(f"{prog}: no command given")
    return _inner(prog, ctx.words(words), **kw)


def sudo(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "ugpCDhrtTU", ("user", "group", "prompt", "close-from", "chdir", "host",
                   "role", "type", "command-timeout", "other-user"), stop_at_operand=True)  # fmt: skip
    if o.has("-e", "--edit"):
        return changes(f"{prog} -e: edits files", interactive=True)
    if o.has("-l", "--list") and not o.operands:
        return read_only(f"{prog} -l: lists privileges")
    if not o.operands:
        if o.has("-i", "--login", "-s", "--shell"):
            return changes(f"{prog} -i: a root shell", interactive=True)
        return changes(f"{prog}: no command given")
    return _run_inner(prog, o.operands, ctx)


def env(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "uCS", ("unset", "chdir", "split-string"), stop_at_operand=True)
    if o.has("-S", "--split-string"):
        return changes(f"{prog} -S: splits a string into a command the classifier does not read")
    words = list(o.operands)
    while words and "=" in words[0].value and not words[0].value.startswith("="):
        if words[0].value.partition("=")[0] in RISKY_VARIABLES:
            return changes(f"{prog} {words[0].value}: decides which program runs")
        words.pop(0)
    if not words:
        return read_only(f"{prog}: prints the environment")
    return _run_inner(prog, words, ctx)


def simple_wrapper(values: str, long_values: tuple[str, ...] = ()) -> Rule:
    """A wrapper whose options come first: `nice -n 5 cmd`, `stdbuf -oL cmd`."""

    def rule(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
        o = parse_opts(args, values, long_values, stop_at_operand=True)
        if prog == "ionice" and o.has("-p", "--pid", "-P", "--pgid", "-u", "--uid"):
            return changes(f"{prog} -p: changes the priority of a running process")
        if prog == "command" and o.has("-v", "-V"):
            return read_only(f"{prog} -v: says where a command is")
        if prog in ("time", "/usr/bin/time") and o.has("-o", "--output"):
            return changes(f"{prog} -o: writes a file")
        return _run_inner(prog, o.operands, ctx)

    return rule


def nohup(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    return changes(f"{prog}: writes nohup.out and outlives the session")


def timeout(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "sk", ("signal", "kill-after"), stop_at_operand=True)
    if len(o.operands) < 2:
        return changes(f"{prog}: no command given")
    found = ctx.words(o.operands[1:])
    return CommandClass(
        found.changes,
        f"{prog} {o.operands[0].value}: bounded: {found.reason}",
        never_ends=False,
        interactive=found.interactive,
    )


def xargs(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "InLPdEsal", ("replace", "max-args", "max-lines", "max-procs",
                   "delimiter", "eof", "max-chars", "arg-file"), stop_at_operand=True)  # fmt: skip
    words = list(o.operands) or [Word("echo")]
    replace = o.value("-I", "--replace")
    if replace:
        words = [Word(w.value, True) if replace in w.value else w for w in words]
    else:
        words.append(Word("INPUT", dynamic=True))
    found = ctx.words(words)
    if o.has("-p", "--interactive"):
        return CommandClass(found.changes, f"{prog} -p: asks before each run", interactive=True)
    return _inner(prog, found)


def watch(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "nq", ("interval", "equexit"), stop_at_operand=True)
    if not o.operands:
        return changes(f"{prog}: no command given")
    text = " ".join(w.value for w in o.operands)
    found = ctx.words(o.operands) if o.has("-x", "--exec") else ctx.shell(text)
    return CommandClass(
        found.changes,
        f"{prog}: repeats until interrupted: {found.reason}",
        never_ends=True,
        interactive=found.interactive,
    )


def ssh(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "bcDEeFIiJLlmOopQRSWw", (), stop_at_operand=True)
    if o.has("-L", "-R", "-D", "-N", "-W", "-O"):
        return changes(f"{prog}: opens a tunnel or controls a master connection")
    option = (o.value("-o") or "").lower().replace(" ", "")
    if o.has("-F") or any(k in option for k in ("proxycommand", "localcommand", "knownhostscommand",
                                                "match")):  # fmt: skip
        return changes(f"{prog}: an option or config file that runs a local command")
    if not o.operands:
        return changes(f"{prog}: no host given")
    rest = o.operands[1:]
    if not rest:
        return changes(f"{prog} HOST: an interactive session on that host", interactive=True)
    if any(w.dynamic for w in rest):
        return changes(f"{prog}: the remote command comes from a variable")
    return _inner(prog, ctx.shell(" ".join(w.value for w in rest)))


def shell(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    i = 0
    text: Word | None = None
    params: dict[str, str] = {}
    while i < len(args):
        value = args[i].value
        if value == "-c" or (value.startswith("-") and "c" in value[1:] and value[1:].isalpha()):
            if i + 1 < len(args):
                text = args[i + 1]
                params = {str(n): w.value for n, w in enumerate(args[i + 3 :], 1) if not w.dynamic}
            break
        if value in ("-o", "+o", "-O", "+O"):
            i += 2
            continue
        if not value.startswith(("-", "+")):
            return changes(f"{prog} {value}: runs a script file the classifier cannot read")
        i += 1
    if text is None:
        return changes(f"{prog}: an interactive shell", interactive=True)
    if text.dynamic:
        return changes(f"{prog} -c: the script comes from a variable")
    return _inner(f"{prog} -c", ctx.shell(text.value, params))


def evaluate(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    if not args or any(w.dynamic for w in args):
        return changes(f"{prog}: the text comes from a variable")
    return _inner(prog, ctx.shell(" ".join(w.value for w in args)))


def su(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "cgGs", ("command", "group", "supp-group", "shell"))
    text = o.value("-c", "--command")
    if text is None:
        return changes(f"{prog}: a shell as another user", interactive=True)
    return _inner(prog, ctx.shell(text))


def nsenter(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    o = parse_opts(args, "tSGw", ("target", "setuid", "setgid", "wd"), stop_at_operand=True)
    if not o.operands:
        return changes(f"{prog}: a shell in the namespaces", interactive=True)
    if _is_shell(o.operands):
        return changes(f"{prog}: a shell in the namespaces", interactive=True)
    return _run_inner(prog, o.operands, ctx)


# docker -------------------------------------------------------------------------------

_DOCKER_GLOBAL_VALUES = ("-H", "--host", "-c", "--context", "--config", "-l", "--log-level",
                         "--tlscacert", "--tlscert", "--tlskey")  # fmt: skip
_DOCKER_READ = word_set(
    "ps images version info inspect top port diff history search logs stats events"
)
#: `docker container ls` and friends, as the top-level command they mean.
_DOCKER_MANAGED = {
    "container": {"ls": "ps", "ps": "ps", "list": "ps", "inspect": "inspect", "logs": "logs",
                  "top": "top", "stats": "stats", "port": "port", "diff": "diff", "exec": "exec"},
    "image": {"ls": "images", "list": "images", "inspect": "inspect", "history": "history"},
    "system": {"df": "df", "info": "info", "events": "events"},
    **{m: {"ls": "ls", "list": "ls", "inspect": "inspect"}
       for m in ("volume", "network", "plugin", "secret", "config", "node", "context")},
    "service": {"ls": "ls", "ps": "ps", "inspect": "inspect", "logs": "logs"},
    "stack": {"ls": "ls", "ps": "ps", "services": "ls"},
    "buildx": {"ls": "ls", "du": "df", "inspect": "inspect", "version": "version"},
    "builder": {"du": "df", "ls": "ls", "inspect": "inspect"},
    "manifest": {"inspect": "inspect"},
}  # fmt: skip


def _docker_logs(what: str, o_args: list[Word]) -> CommandClass:
    o = parse_opts(o_args, "n", ("tail", "since", "until", "details", "timestamps", "n"))
    if o.has("-f", "--follow") and not o.has("--until"):
        return read_only(f"{what} -f: follows the log (never ends)", never_ends=True)
    return read_only(f"{what}: reads the log")


def _docker_exec(what: str, args: list[Word], ctx: Classifier, tty_default: bool) -> CommandClass:
    o = parse_opts(args, "euwn", ("env", "env-file", "user", "workdir", "detach-keys", "index"),
                   stop_at_operand=True)  # fmt: skip
    if len(o.operands) < 2:
        return changes(f"{what}: no command given")
    inner = o.operands[1:]
    tty = o.has("-t", "--tty") or (tty_default and not o.has("-T", "--no-TTY", "--no-tty"))
    found = ctx.words(inner)
    session = _is_shell(inner) or (o.has("-t", "--tty") and o.has("-i", "--interactive"))
    return CommandClass(
        found.changes,
        f"{what} runs {inner[0].value} in the container: {found.reason}",
        never_ends=found.never_ends,
        interactive=found.interactive or session or (tty and o.has("-i")),
    )


def docker(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    i = 0
    while i < len(args) and args[i].value.startswith("-") and not args[i].dynamic:
        if args[i].value in ("-v", "--version"):
            return read_only(f"{prog} --version: prints the version")
        i += 2 if args[i].value in _DOCKER_GLOBAL_VALUES else 1
    if i >= len(args):
        return read_only(f"{prog}: prints usage")
    if args[i].dynamic:
        return changes(f"{prog}: the sub-command comes from a variable")
    sub, rest = args[i].value, args[i + 1 :]
    if sub == "compose":
        return compose(f"{prog} compose", rest, ctx)
    if sub in _DOCKER_MANAGED:
        verb = rest[0].value if rest and not rest[0].dynamic else ""
        mapped = _DOCKER_MANAGED[sub].get(verb)
        if mapped is None:
            return changes(f"{prog} {sub} {verb}: changes the engine's {sub}s".rstrip())
        what, sub, rest = f"{prog} {sub} {verb}", mapped, rest[1:]
    else:
        what = f"{prog} {sub}"
    if sub == "exec":
        return _docker_exec(what, rest, ctx, tty_default=False)
    if sub == "logs":
        return _docker_logs(what, rest)
    if sub == "stats":
        if parse_opts(rest, "", ("format",)).has("--no-stream"):
            return read_only(f"{what} --no-stream: one sample")
        return read_only(f"{what} without --no-stream: streams (never ends)", never_ends=True)
    if sub == "events":
        if parse_opts(rest, "f", ("filter", "since", "until", "format")).has("--until"):
            return read_only(f"{what} --until: bounded")
        return read_only(f"{what} without --until: streams (never ends)", never_ends=True)
    if sub in _DOCKER_READ or sub in ("ls", "df"):
        return read_only(f"{what}: reads only")
    if sub in ("run", "create") and parse_opts(rest, "", (), stop_at_operand=False).has("-t"):
        return changes(f"{what}: starts a new container with a terminal", interactive=True)
    return changes(f"{what}: changes containers, images or the engine")


_COMPOSE_GLOBAL_VALUES = ("-f", "--file", "-p", "--project-name", "--project-directory",
                          "--env-file", "--profile", "--ansi", "--progress", "--parallel", "-H",
                          "--host", "--context", "--log-level")  # fmt: skip
_COMPOSE_READ = word_set("ps images top version ls port")


def compose(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    i = 0
    while i < len(args) and args[i].value.startswith("-") and not args[i].dynamic:
        if args[i].value in ("-v", "--version"):
            return read_only(f"{prog} --version: prints the version")
        i += 2 if args[i].value in _COMPOSE_GLOBAL_VALUES else 1
    if i >= len(args):
        return read_only(f"{prog}: prints usage")
    if args[i].dynamic:
        return changes(f"{prog}: the sub-command comes from a variable")
    sub, rest = args[i].value, args[i + 1 :]
    what = f"{prog} {sub}"
    if sub == "logs":
        return _docker_logs(what, rest)
    if sub == "config" or sub == "convert":
        if parse_opts(rest, "o", ("output", "format")).has("-o", "--output"):
            return changes(f"{what} -o: writes the file")
        return read_only(f"{what}: prints the configuration")
    if sub == "events":
        return read_only(f"{what}: streams (never ends)", never_ends=True)
    if sub in _COMPOSE_READ:
        return read_only(f"{what}: reads only")
    if sub == "exec":
        return _docker_exec(what, rest, ctx, tty_default=True)
    o = parse_opts(rest, "ft", ("file", "timeout", "scale", "pull", "wait-timeout"))
    if sub == "up" and not o.has("-d", "--detach", "--wait"):
        return changes(f"{what} in the foreground: recreates and never ends", never_ends=True)
    if sub == "run":
        return changes(f"{what}: starts a new container",
                       interactive=not o.has("-d", "--detach", "-T", "--no-TTY"))  # fmt: skip
    return changes(f"{what}: changes the project's containers")


def kubectl_exec(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    """`kubectl exec [-it] POD [-c C] -- cmd`: the inner command's class."""
    split = next((i for i, w in enumerate(args) if w.value == "--"), None)
    head, inner = (args, []) if split is None else (args[:split], args[split + 1 :])
    o = parse_opts(head, "ncf", ("namespace", "container", "filename", "context"))
    if split is None and len(o.operands) > 1:
        inner = o.operands[1:]  # the old form: kubectl exec POD cmd
    if not inner:
        return changes(f"{prog} exec: no command given")
    found = ctx.words(inner)
    session = _is_shell(inner) or (o.has("-t", "--tty") and o.has("-i", "--stdin"))
    return CommandClass(
        found.changes,
        f"{prog} exec runs {inner[0].value} in the pod: {found.reason}",
        never_ends=found.never_ends,
        interactive=found.interactive or session,
    )


WRAPPERS: dict[str, Rule] = {
    "sudo": sudo, "doas": sudo, "env": env, "timeout": timeout, "xargs": xargs,
    "watch": watch, "ssh": ssh, "eval": evaluate, "su": su, "nsenter": nsenter,
    "nice": simple_wrapper("n", ("adjustment",)), "nohup": nohup,
    "ionice": simple_wrapper("cnt", ("class", "classdata")),
    "time": simple_wrapper("fo", ("format", "output")),
    "command": simple_wrapper(""), "builtin": simple_wrapper(""), "exec": simple_wrapper("a"),
    "stdbuf": simple_wrapper("ioe", ("input", "output", "error")),
    "docker": docker, "docker-compose": compose, "podman": docker,
    **{name: shell for name in SHELLS},
}  # fmt: skip

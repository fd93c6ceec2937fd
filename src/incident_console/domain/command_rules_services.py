"""The allowlist's network and service clients: curl, wget, kubectl, redis-cli, SQL shells.

`curl` reads only as a GET with its output on the terminal; `kubectl` only with its reading
verbs (get, describe, logs, top...); `redis-cli` only with reading commands; SQL shells never
(the SQL is not analysed), and without a command they are interactive.
"""

from __future__ import annotations

from incident_console.domain.command_class import CommandClass, changes, read_only
from incident_console.domain.command_rules import (
    Classifier,
    Rule,
    dynamic_argument,
    parse_opts,
    word_set,
)
from incident_console.domain.command_wrappers import kubectl_exec
from incident_console.domain.shell_words import Word

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


_KUBECTL_GLOBAL_VALUES = ("-n", "--namespace", "--context", "--kubeconfig", "--cluster", "--user",
                          "-s", "--server", "--request-timeout", "--as", "--token")  # fmt: skip
_KUBECTL_READ = ("describe", "top", "explain", "api-resources", "api-versions", "version", "diff")


def kubectl(prog: str, args: list[Word], ctx: Classifier) -> CommandClass:
    verb: Word | None = None
    i = 0
    while i < len(args):
        if args[i].dynamic:
            return dynamic_argument(prog)
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
        return dynamic_argument(prog)
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


SERVICE_RULES: dict[str, Rule] = {
    "curl": curl, "wget": wget, "kubectl": kubectl, "redis-cli": redis_cli,
    "psql": database_client, "mysql": database_client, "mariadb": database_client,
    "mongo": database_client, "mongosh": database_client, "sqlite3": database_client,
    "yq": yq,
}  # fmt: skip

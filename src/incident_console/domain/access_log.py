"""Access-log lines as services write them: which request, which worker, in which format.

Pure, no I/O. The formats met on the seed's kind of server:

- gunicorn's default ``%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"``, which is
  the shape of nginx's ``combined`` too (the two are told apart only by who wrote them: the
  caller's `hint`, a process name);
- gunicorn custom formats carrying the worker's pid, ``%(p)s`` (written ``<8>``) anywhere on
  the line, the form that lets memory be tied to the worker that served the request;
- uvicorn's own access log (``INFO:     172.18.0.1:40000 - "GET /x HTTP/1.1" 200 OK``) and
  uvicorn workers under gunicorn (``[2024-01-01 10:00:00 +0000] [8] [INFO] 172.18.0.1:4 -
  "GET /x HTTP/1.1" 200``), whose ``[8]`` is the worker's pid;
- anything else with a quoted request line followed by a status (``"GET /x HTTP/1.1" 200``).

Paths are turned into routes (:func:`route_of`): ids, uuids and hex ids collapse, so that
``/users/123`` and ``/users/456`` are one route, ``/users/{id}``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "AccessLine",
    "LogFormat",
    "detect_format",
    "parse_access_line",
    "route_of",
]

_METHODS = "GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|CONNECT|TRACE"
_REQUEST = rf'"(?P<method>{_METHODS}) (?P<path>\S+) HTTP/[0-9.]+"'
#: host ident user [time] "request" status bytes "referer" "agent"
_COMBINED = re.compile(
    rf"^(?P<host>\S+) \S+ \S+ \[[^\]]+\] {_REQUEST} (?P<status>\d{{3}}) (?:\d+|-)"
    r'(?: "[^"]*" "[^"]*")?'
)
#: uvicorn's own: 'INFO:     172.18.0.1:40000 - "GET /x HTTP/1.1" 200 OK'
_UVICORN = re.compile(rf"^INFO:\s+\S+ - {_REQUEST} (?P<status>\d{{3}})\b")
#: uvicorn workers under gunicorn: '[stamp] [PID] [INFO] 172.18.0.1:4 - "GET /x HTTP/1.1" 200'
_UVICORN_GUNICORN = re.compile(
    rf"^\[[^\]]+\] \[(?P<pid>\d+)\] \[INFO\] \S+ - {_REQUEST} (?P<status>\d{{3}})\b"
)
_GENERIC = re.compile(rf"{_REQUEST} (?P<status>\d{{3}})\b")
#: gunicorn's %(p)s atom: '<8>', a word of its own outside the quoted fields.
_PID_ATOM = re.compile(r"(?:^|\s)<(\d{1,9})>(?=\s|$)")
_QUOTED = re.compile(r'"[^"]*"')

_NUMBER = re.compile(r"^\d+$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_HEX = re.compile(r"^(?=[^/]*\d)[0-9a-fA-F]{8,}$")
#: Routes are short: a path this long is cut (a route table must not hold megabyte keys).
MAX_ROUTE_CHARS = 120


class LogFormat:
    """The names of the formats :func:`parse_access_line` recognises (what the UI shows)."""

    GUNICORN_PID = "gunicorn with worker pid (%(p)s)"
    COMBINED = "combined (gunicorn default or nginx)"
    GUNICORN = "gunicorn default"
    NGINX = "nginx combined"
    UVICORN = "uvicorn"
    UVICORN_GUNICORN = "uvicorn workers under gunicorn (pid)"
    GENERIC = "request line and status"
    NONE = "no request lines"


@dataclass(frozen=True, slots=True)
class AccessLine:
    """One request a service logged.

    Attributes:
        method: 'GET', 'POST', ...
        path: the path as logged, without its query string.
        route: the method and the normalised path: 'GET /users/{id}'.
        status: the HTTP status.
        pid: the worker's pid (in the container's pid namespace) when the line carries it.
        format: the :class:`LogFormat` name of the line's format.
    """

    method: str
    path: str
    route: str
    status: int
    pid: int | None
    format: str


def route_of(method: str, path: str) -> str:
    """'GET', '/api/v1/users/123?x=1' -> 'GET /api/v1/users/{id}' (uuids and hex ids too)."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    if path.startswith(("http://", "https://")):  # a proxy's absolute form
        rest = path.split("://", 1)[1]
        path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    parts = []
    for segment in path.split("/"):
        if _NUMBER.match(segment):
            parts.append("{id}")
        elif _UUID.match(segment):
            parts.append("{uuid}")
        else:
            # A content hash in a file name ('app.3f9a0c1e.js') is an id too.
            parts.append(".".join("{hex}" if _HEX.match(p) else p for p in segment.split(".")))
    route = "/".join(parts) or "/"
    return f"{method} {route[:MAX_ROUTE_CHARS]}"


def _pid_outside_quotes(text: str) -> int | None:
    match = _PID_ATOM.search(_QUOTED.sub('""', text))
    return int(match.group(1)) if match else None


def parse_access_line(text: str, hint: str = "") -> AccessLine | None:
    """The request `text` logs, or None when it is no access-log line. Never raises.

    Args:
        text: one log line (docker's timestamp already taken off).
        hint: what wrote it, when known (a process name: 'gunicorn', 'nginx'), to name the
            combined format, which gunicorn's default and nginx's share.
    """
    if len(text) > 8192 or '"' not in text:
        return None
    fmt = ""
    pid: int | None = None
    match = _UVICORN_GUNICORN.match(text)
    if match:
        fmt, pid = LogFormat.UVICORN_GUNICORN, int(match.group("pid"))
    elif match := _UVICORN.match(text):
        fmt = LogFormat.UVICORN
    elif match := _COMBINED.match(text):
        pid = _pid_outside_quotes(text[match.end() :])
        if pid is not None:
            fmt = LogFormat.GUNICORN_PID
        elif "gunicorn" in hint:
            fmt = LogFormat.GUNICORN
        elif "nginx" in hint:
            fmt = LogFormat.NGINX
        else:
            fmt = LogFormat.COMBINED
    elif match := _GENERIC.search(text):
        pid = _pid_outside_quotes(text)
        fmt = LogFormat.GUNICORN_PID if pid is not None else LogFormat.GENERIC
    if not match:
        return None
    method, path = match.group("method"), match.group("path")
    return AccessLine(
        method=method,
        path=path.split("?", 1)[0][:MAX_ROUTE_CHARS],
        route=route_of(method, path),
        status=int(match.group("status")),
        pid=pid,
        format=fmt,
    )


@dataclass(frozen=True, slots=True)
class FormatGuess:
    """What a service's log looks like.

    Attributes:
        name: the most common :class:`LogFormat` among its request lines, or LogFormat.NONE.
        request_lines: lines that parsed as requests.
        lines: lines looked at.
        with_pid: request lines that carry the worker's pid.
    """

    name: str
    request_lines: int
    lines: int
    with_pid: int

    def describe(self) -> str:
        """'gunicorn with worker pid (%(p)s): 412 of 430 lines' or 'no request lines (12 lines)'."""
        if not self.request_lines:
            return f"{LogFormat.NONE} ({self.lines} lines seen)"
        return f"{self.name}: {self.request_lines} of {self.lines} lines are requests"


def detect_format(lines: Iterable[str], hint: str = "") -> FormatGuess:
    """The format of a service's log, from its lines (any number; never raises)."""
    names: Counter[str] = Counter()
    total = with_pid = 0
    for text in lines:
        total += 1
        line = parse_access_line(text, hint)
        if line is not None:
            names[line.format] += 1
            with_pid += line.pid is not None
    if not names:
        return FormatGuess(LogFormat.NONE, 0, total, 0)
    name = max(names.items(), key=lambda kv: (kv[1], kv[0]))[0]
    return FormatGuess(name, sum(names.values()), total, with_pid)

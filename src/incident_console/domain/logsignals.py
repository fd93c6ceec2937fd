"""What a container log line tells the on-call engineer: the gunicorn signals, tracebacks, errors.

The gunicorn texts are the ones its sources print (arbiter.py, workers/*.py):

- 21+: ``Worker (pid:7) was sent SIGKILL! Perhaps out of memory?`` (arbiter.reap_workers)
- 20.x: ``Worker with pid 7 was terminated due to signal 9`` (the same event, older wording)
- ``WORKER TIMEOUT (pid:7)`` (arbiter.murder_workers, at CRITICAL)
- ``Booting worker with pid: 7`` (arbiter.spawn_worker)
- ``Autorestarting worker after current request.`` (max-requests, sync/gthread/async workers)
- uvicorn workers: ``Maximum request limit of 1000 exceeded. Terminating process.``

Access lines (one per request served) are no signal: :func:`is_access_line` only tells them
apart, so the runbook can count requests per second without the journal keeping each one.
"""

from __future__ import annotations

import re

from incident_console.domain.events import LogSignal

__all__ = ["classify", "is_access_line"]

_MAX_SCAN = 8192

# Most specific first: gunicorn logs "WORKER TIMEOUT" at [CRITICAL] and "was sent SIGKILL!" at
# [ERROR], and those must win over the plain level.
_RULES: tuple[tuple[LogSignal, re.Pattern[str]], ...] = (
    (
        LogSignal.WORKER_KILLED,
        re.compile(
            r"was sent SIGKILL!|Perhaps out of memory\?"
            r"|Worker with pid \d+ was terminated due to signal 9\b"
        ),
    ),
    (LogSignal.WORKER_TIMEOUT, re.compile(r"WORKER TIMEOUT")),
    (LogSignal.WORKER_BOOT, re.compile(r"Booting worker with pid")),
    (
        LogSignal.WORKER_RECYCLE,
        re.compile(
            r"Autorestarting worker after current request"
            r"|Maximum request limit of \d+ exceeded"
        ),
    ),
    (LogSignal.TRACEBACK, re.compile(r"Traceback \(most recent call last\)")),
    (
        LogSignal.ERROR,
        re.compile(
            # [ERROR] (gunicorn), ERROR: (logging.basicConfig, uvicorn, postgres), " ERROR ",
            # "- ERROR -", "levelname": "ERROR"; FATAL/PANIC (postgres); nginx's [error]/[crit].
            r"(?<![\w-])(?:ERROR|CRITICAL|FATAL|PANIC)(?![\w-])"
            r"|\[(?:error|crit|alert|emerg)\]"
            r"|\blevel=(?:error|critical|fatal)\b"
            r"|\"level\"\s*:\s*\"(?:error|critical|fatal)\""
        ),
    ),
)


#: Every match of a rule contains one of these (the test over the rules' texts checks it): a
#: line with none of them carries no signal, told by one search for the words, not seven regexes.
_RULE_WORDS = (
    "SIGKILL", "out of memory", "due to signal 9", "WORKER TIMEOUT", "Booting worker",
    "Autorestarting worker", "Maximum request limit", "Traceback", "ERROR", "CRITICAL",
    "FATAL", "PANIC", "[error]", "[crit]", "[alert]", "[emerg]", "level",
)  # fmt: skip
_ANY_WORD = re.compile("|".join(re.escape(word) for word in _RULE_WORDS))


def classify(text: str) -> LogSignal | None:
    """The signal a log line carries, or None for an ordinary line. Never raises.

    Args:
        text: One log line (sanitized or not).

    Returns:
        The most specific `LogSignal` the line matches: gunicorn worker events before
        tracebacks, tracebacks before plain ERROR/CRITICAL levels. Access lines carry none.
    """
    if not isinstance(text, str):
        return None
    head = text[:_MAX_SCAN]
    # Almost every line carries no signal, and has none of the rules' words: the regexes
    # (the most of classify's cost at 1,000 lines/s) run only on lines that have one.
    if not _ANY_WORD.search(head):
        return None
    # The client writes the path and the user agent of an access line: a request for
    # "/Perhaps out of memory?" is no dead worker, a user agent saying ERROR no error.
    if _ACCESS.search(head):
        return None
    for signal, pattern in _RULES:
        if pattern.search(head):
            return signal
    return None


# One request served, as access logs write it: the quoted request line, then the status code.
# gunicorn (--access-logfile -, and nginx's common/combined formats alike):
#   172.18.0.3 - - [30/Nov/2026:16:15:05 +0000] "GET /api/v1/items HTTP/1.1" 200 44 "-" "curl"
# uvicorn (its access logger):
#   INFO:     172.18.0.1:43210 - "GET /api/v1/health HTTP/1.1" 200 OK
# \S+ cannot cross the space before HTTP/: no backtracking blow-up on hostile text.
_ACCESS = re.compile(
    r'"(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|CONNECT|TRACE|PROPFIND) \S+ HTTP/\d(?:\.\d)?"'
    r" [1-5]\d\d\b"
)


def is_access_line(text: str) -> bool:
    """True when the line is an access-log line: one request served. Never raises.

    Args:
        text: One log line (sanitized or not).

    Returns:
        True for gunicorn's/nginx's common log format and uvicorn's access lines.
    """
    if not isinstance(text, str):
        return False
    return _ACCESS.search(text[:_MAX_SCAN]) is not None

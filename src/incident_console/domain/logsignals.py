"""What a container log line tells the on-call engineer: the gunicorn signals, tracebacks, errors.

The gunicorn texts are the ones its sources print (arbiter.py, workers/*.py):

- 21+: ``Worker (pid:7) was sent SIGKILL! Perhaps out of memory?`` (arbiter.reap_workers)
- 20.x: ``Worker with pid 7 was terminated due to signal 9`` (the same event, older wording)
- ``WORKER TIMEOUT (pid:7)`` (arbiter.murder_workers, at CRITICAL)
- ``Booting worker with pid: 7`` (arbiter.spawn_worker)
- ``Autorestarting worker after current request.`` (max-requests, sync/gthread/async workers)
- uvicorn workers: ``Maximum request limit of 1000 exceeded. Terminating process.``
"""

from __future__ import annotations

import re

from incident_console.domain.events import LogSignal

__all__ = ["classify"]

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


def classify(text: str) -> LogSignal | None:
    """The signal a log line carries, or None for an ordinary line. Never raises.

    Args:
        text: One log line (sanitized or not).

    Returns:
        The most specific `LogSignal` the line matches: gunicorn worker events before
        tracebacks, tracebacks before plain ERROR/CRITICAL levels.
    """
    if not isinstance(text, str):
        return None
    head = text[:_MAX_SCAN]
    for signal, pattern in _RULES:
        if pattern.search(head):
            return signal
    return None

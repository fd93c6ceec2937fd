"""Access lines (one per request served) told apart from everything else a container logs."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from incident_console.domain.logsignals import classify, is_access_line

FIXTURES = Path(__file__).parent / "fixtures"


def test_gunicorn_20_access_capture() -> None:
    # Captured from /usr/bin/gunicorn 20.1 --access-logfile - (2 sync workers, max-requests 3):
    # 8 requests, boots, recycling and shutdown lines around them.
    lines = (FIXTURES / "gunicorn" / "gunicorn-20.1-access.log").read_text().splitlines()
    access = [line for line in lines if is_access_line(line)]
    assert len(access) == 8
    assert all(line.startswith("127.0.0.1 - - [30/Nov/2026:") for line in access)
    assert {line.split('"')[1].split()[0] for line in access} == {"GET", "POST", "HEAD"}
    # The gunicorn lines between them are no requests.
    assert not any(is_access_line(line) for line in lines if line.startswith("[2026-"))


def test_access_lines_carry_no_signal_whatever_the_client_wrote() -> None:
    lines = (FIXTURES / "gunicorn" / "gunicorn-20.1-access.log").read_text().splitlines()
    evil = next(line for line in lines if "evil" in line)
    assert is_access_line(evil) and classify(evil) is None  # its user agent says ERROR
    spoof = (
        '10.0.0.9 - - [30/Nov/2026:16:17:43 +0000] "GET /Worker%20(pid:7)%20was%20sent HTTP/1.1" '
        '404 23 "-" "was sent SIGKILL! Perhaps out of memory?"'
    )
    assert classify(spoof) is None
    # The worker-killed line itself is still one.
    assert classify("[2026-11-30 15:10:11 +0000] [1] [ERROR] Worker (pid:7) was sent SIGKILL!")


def test_uvicorn_nginx_and_lines_that_are_not_requests() -> None:
    yes = [
        'INFO:     172.18.0.1:43210 - "GET /api/v1/health HTTP/1.1" 200 OK',
        'INFO:     172.18.0.1:0 - "POST /api/v1/items HTTP/1.1" 500 Internal Server Error',
        '172.18.0.5 - - [30/Nov/2026:16:15:05 +0000] "GET / HTTP/2.0" 304 0 "-" "Mozilla/5.0"',
        '1.2.3.4 - bob [30/Nov/2026:16:15:05 +0000] "DELETE /x/1 HTTP/1.0" 204 -',
    ]
    no = [
        "[2026-11-30 16:17:43 +0000] [21998] [INFO] Autorestarting worker after current request.",
        "GET /api/v1/items HTTP/1.1",  # no quotes, no status: a request being logged, not served
        '"GET /api/v1/items HTTP/1.1"',
        'INFO:     172.18.0.1:0 - "GET /x HTTP/1.1" 999',
        "ERROR:    Exception in ASGI application",
        "",
    ]
    assert all(is_access_line(line) for line in yes)
    assert not any(is_access_line(line) for line in no)


@given(st.text())
def test_is_access_line_never_raises(text: str) -> None:
    assert is_access_line(text) in (True, False)


@given(st.text(max_size=500))
def test_any_path_without_whitespace_is_a_request(text: str) -> None:
    path = "".join(text.split())
    assert is_access_line(f'1.2.3.4 - - [x] "GET /{path} HTTP/1.1" 200 1 "-" "-"') is True


def test_non_text_is_no_access_line() -> None:
    assert is_access_line(None) is False  # type: ignore[arg-type]
    assert is_access_line(b'"GET / HTTP/1.1" 200') is False  # type: ignore[arg-type]


_FRAGMENTS = [
    "Worker (pid:7) was sent SIGKILL!", " Perhaps out of memory?", "WORKER TIMEOUT (pid:9)",
    "Booting worker with pid: 12", "Autorestarting worker after current request.",
    "Maximum request limit of 1000 exceeded", "Traceback (most recent call last):",
    "[ERROR]", "ERROR:", "-ERROR-", "level=error", '"level": "fatal"', "[crit]",
    "Worker with pid 7 was terminated due to signal 9", "GET /api/v1/items 200 took=12ms",
    '"GET /x HTTP/1.1" 200', "INFO", " ", "x", "é", "\t",
]  # fmt: skip


def _ordered_rules(text: str) -> object:
    """classify() as the rules say it, without its one-pass shortcut."""
    from incident_console.domain import logsignals

    head = text[: logsignals._MAX_SCAN]
    if logsignals._ACCESS.search(head):
        return None
    return next((signal for signal, rule in logsignals._RULES if rule.search(head)), None)


@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=6).map("".join))
def test_the_one_pass_shortcut_never_changes_the_answer(text: str) -> None:
    # classify() first asks one regex whether any rule could match; the answer must be the
    # one the rules give in their order (most specific first), on any mix of their texts.
    assert classify(text) == _ordered_rules(text)

"""Access-log lines: gunicorn (default, with %(p)s), nginx combined, uvicorn; routes; detection."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from incident_console.domain.access_log import (
    LogFormat,
    detect_format,
    parse_access_line,
    route_of,
)

#: Captured from the lab's gunicorn 20.1 with the lab's format (default + ' %(p)s').
LAB_GUNICORN = (
    '172.22.0.5 - - [01/Dec/2026:22:04:29 +0000] "GET /api/v1/users/5 HTTP/1.1" 200 56 "-" "-" <6>'
)
#: gunicorn's default access format (no pid).
GUNICORN_DEFAULT = (
    '127.0.0.1 - - [01/Dec/2026:22:04:24 +0000] "GET /api/v1/health HTTP/1.1" 200 26 "-" '
    '"Python-urllib/3.11"'
)
#: A common custom gunicorn format with the pid first and the request time in microseconds.
GUNICORN_PID_FIRST = (
    '<17> 10.0.0.3 - - [01/Dec/2026:10:00:00 +0000] "POST /api/v1/orders?x=1 HTTP/1.1" 201 12 '
    '"https://app.example.com/" "Mozilla/5.0 (X11; Linux x86_64)" 1534'
)
NGINX_COMBINED = (
    '203.0.113.7 - - [01/Dec/2026:10:00:01 +0000] "GET /static/app.3f9a0c1e.js HTTP/2.0" 304 0 '
    '"https://app.example.com/" "Mozilla/5.0 <script>"'
)
UVICORN = 'INFO:     172.18.0.1:40210 - "GET /api/v1/items/42 HTTP/1.1" 200 OK'
UVICORN_GUNICORN = (
    "[2026-12-01 10:00:00 +0000] [8] [INFO] 172.18.0.1:40000 - "
    '"DELETE /api/v1/users/6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f HTTP/1.1" 204'
)


@pytest.mark.parametrize(
    ("text", "hint", "route", "status", "pid", "fmt"),
    [
        (LAB_GUNICORN, "gunicorn", "GET /api/v1/users/{id}", 200, 6, LogFormat.GUNICORN_PID),
        (GUNICORN_DEFAULT, "gunicorn", "GET /api/v1/health", 200, None, LogFormat.GUNICORN),
        (GUNICORN_DEFAULT, "", "GET /api/v1/health", 200, None, LogFormat.COMBINED),
        (GUNICORN_PID_FIRST, "", "POST /api/v1/orders", 201, 17, LogFormat.GUNICORN_PID),
        (NGINX_COMBINED, "nginx", "GET /static/app.{hex}.js", 304, None, LogFormat.NGINX),
        (UVICORN, "", "GET /api/v1/items/{id}", 200, None, LogFormat.UVICORN),
        (
            UVICORN_GUNICORN,
            "gunicorn",
            "DELETE /api/v1/users/{uuid}",
            204,
            8,
            LogFormat.UVICORN_GUNICORN,
        ),
    ],
)
def test_formats(text: str, hint: str, route: str, status: int, pid: int | None, fmt: str) -> None:
    line = parse_access_line(text, hint)
    assert line is not None
    assert (line.route, line.status, line.pid, line.format) == (route, status, pid, fmt)


def test_nginx_agent_with_angle_brackets_is_no_pid() -> None:
    # '<script>' inside the quoted user agent is not gunicorn's %(p)s.
    line = parse_access_line(NGINX_COMBINED)
    assert line is not None and line.pid is None


@pytest.mark.parametrize(
    "text",
    [
        "[2026-12-01 22:04:20 +0000] [8] [INFO] Booting worker with pid: 8",
        "[2026-12-01 22:04:20 +0000] [1] [ERROR] Worker (pid:76) was sent SIGKILL!",
        "Traceback (most recent call last):",
        'INFO:     Application startup complete. "quoted"',
        "",
    ],
)
def test_non_requests(text: str) -> None:
    assert parse_access_line(text) is None


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("GET", "/users/123", "GET /users/{id}"),
        ("GET", "/users/123/orders/9?page=2", "GET /users/{id}/orders/{id}"),
        ("PUT", "/u/550e8400-e29b-41d4-a716-446655440000", "PUT /u/{uuid}"),
        ("GET", "/blobs/deadbeef01", "GET /blobs/{hex}"),
        ("GET", "/about", "GET /about"),
        ("GET", "/facade", "GET /facade"),  # hex letters, no digit: a word
        ("GET", "http://backend:8000/api/v1/x/7", "GET /api/v1/x/{id}"),
        ("GET", "/", "GET /"),
    ],
)
def test_routes(method: str, path: str, route: str) -> None:
    assert route_of(method, path) == route


def test_detect_names_the_format_and_says_no_request_lines() -> None:
    lines = [
        "[2026-12-01 22:04:20 +0000] [8] [INFO] Booting worker with pid: 8",
        LAB_GUNICORN,
        LAB_GUNICORN.replace("<6>", "<7>"),
        GUNICORN_DEFAULT + " <9>",
    ]
    guess = detect_format(lines, "gunicorn")
    assert guess.name == LogFormat.GUNICORN_PID
    assert (guess.request_lines, guess.lines, guess.with_pid) == (3, 4, 3)
    assert guess.describe() == f"{LogFormat.GUNICORN_PID}: 3 of 4 lines are requests"
    none = detect_format(["ready to accept connections", "redis 7.0"])
    assert none.name == LogFormat.NONE
    assert none.describe() == "no request lines (2 lines seen)"


@given(st.text(max_size=300))
def test_never_raises(text: str) -> None:
    line = parse_access_line(text)
    if line is not None:
        assert line.route.startswith(line.method + " ")
        assert 100 <= line.status <= 999


@given(st.text(alphabet='/ab1-"<> ?', max_size=80))
def test_request_shaped_text_never_raises(path: str) -> None:
    parse_access_line(f'1.2.3.4 - - [x] "GET /{path} HTTP/1.1" 200 1 "-" "-" <3>')
    route_of("GET", path)

"""Log text is data: escapes and control characters go, markup stays literal, length is bounded."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from incident_console.domain.events import LogSignal
from incident_console.domain.logsignals import classify
from incident_console.domain.text import MAX_LINE, sanitize

FIXTURES = Path(__file__).parent / "fixtures"


def test_csi_colours_and_cursor_moves_go() -> None:
    assert sanitize("\x1b[31;1mERROR\x1b[0m done\x1b[2K\x1b[1A") == "ERROR done"
    assert sanitize("\x9b31mred\x9b0m") == "red"


def test_osc_title_and_hyperlink_go_bel_or_st_terminated() -> None:
    assert sanitize("\x1b]0;pwned title\x07after") == "after"
    link = "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\"
    assert sanitize(link) == "click"


def test_dcs_and_single_escapes_go() -> None:
    assert sanitize("a\x1bP1$r0m\x1b\\b") == "ab"
    assert sanitize("\x1b(B\x1b7x\x1bc\x1b=y") == "xy"


def test_controls_go_tabs_become_spaces() -> None:
    assert sanitize("a\x00b\x07c\x08d\x7fe\x85f") == "abcdef"
    assert sanitize("k\tv") == "k       v"
    # Bidi overrides make a line read differently than it is.
    assert sanitize("user\u202eexe.txt") == "userexe.txt"


def test_carriage_return_keeps_the_last_segment() -> None:
    assert sanitize("10%\r20%\r30%") == "30%"
    assert sanitize("line\r\n") == "line\n"
    assert sanitize("a\rb\nc\rd") == "b\nd"


def test_markup_survives_literally() -> None:
    text = "[bold red]x[/] [link=https://x]y[/link] $accent"
    assert sanitize(text) == text


def test_bytes_and_surrogates() -> None:
    assert sanitize(b"ok \xff\x1b[1mbold") == "ok \ufffdbold"
    assert sanitize("a\udcffb") == "a\ufffdb"


def test_length_is_bounded_with_a_marker() -> None:
    out = sanitize("x" * 10_000)
    assert len(out) <= MAX_LINE
    assert out.endswith(f"… [+{10_000 - out.index('…')} chars]")
    assert sanitize("y" * 100, max_len=40).startswith("y" * 20)
    assert sanitize("short", max_len=40) == "short"


@settings(max_examples=500)
@given(st.text() | st.binary().map(lambda b: b.decode("latin-1")))
def test_sanitize_output_is_plain(text: str) -> None:
    out = sanitize(text)
    assert len(out) <= MAX_LINE
    assert not any(ord(c) < 32 and c != "\n" for c in out)
    assert not any(0x7F <= ord(c) <= 0x9F for c in out)
    assert sanitize(out) == out  # idempotent: nothing left to strip


@given(st.binary(max_size=300))
def test_sanitize_bytes(data: bytes) -> None:
    assert "\x1b" not in sanitize(data)


# --- log signals ---------------------------------------------------------------------------


def test_gunicorn_20_capture() -> None:
    lines = (FIXTURES / "gunicorn" / "gunicorn-20.1-sync.log").read_text().splitlines()
    signals = [classify(line) for line in lines]
    counts = {s: signals.count(s) for s in set(signals)}
    assert counts[LogSignal.WORKER_BOOT] == 7
    assert counts[LogSignal.WORKER_RECYCLE] == 3
    assert counts[LogSignal.WORKER_TIMEOUT] == 1
    assert counts[LogSignal.WORKER_KILLED] == 1
    assert counts[LogSignal.TRACEBACK] == 1
    assert counts[LogSignal.ERROR] == 1  # "[ERROR] Error handling request /boom"
    assert classify(lines[0]) is None  # "[INFO] Starting gunicorn 20.1.0"


def test_lab_gunicorn_capture() -> None:
    capture = FIXTURES / "lab" / "gunicorn-oom.log"  # committed: a missing capture fails
    lines = capture.read_text().splitlines()
    killed = [ln for ln in lines if classify(ln) is LogSignal.WORKER_KILLED]
    assert killed and all("signal 9" in ln or "SIGKILL" in ln for ln in killed)


def test_gunicorn_21_and_uvicorn_texts() -> None:
    cases = {
        "[2026-11-30 15:10:11 +0000] [1] [ERROR] Worker (pid:7) was sent SIGKILL! "
        "Perhaps out of memory?": LogSignal.WORKER_KILLED,
        "[2026-11-30 15:10:10 +0000] [1] [CRITICAL] WORKER TIMEOUT (pid:8)": (
            LogSignal.WORKER_TIMEOUT
        ),
        "[2026-11-30 15:10:11 +0000] [1] [WARNING] Worker with pid 9 was terminated due to "
        "signal 15": None,
        "WARNING:  Maximum request limit of 1000 exceeded. Terminating process.": (
            LogSignal.WORKER_RECYCLE
        ),
        "Traceback (most recent call last):": LogSignal.TRACEBACK,
        "ERROR:    Exception in ASGI application": LogSignal.ERROR,
        "ERROR:root:db down": LogSignal.ERROR,
        "2026-11-30 15:10:11,123 - app.db - CRITICAL - pool exhausted": LogSignal.ERROR,
        "2026-11-30 15:10:11.123 UTC [27] FATAL:  password authentication failed": (
            LogSignal.ERROR
        ),
        "2026/11/30 15:10:11 [error] 29#29: *1 upstream timed out": LogSignal.ERROR,
        'time=x level=error msg="boom"': LogSignal.ERROR,
        '{"level": "error", "msg": "boom"}': LogSignal.ERROR,
        'INFO:     172.18.0.1:0 - "GET /api/v1/health HTTP/1.1" 200 OK': None,
        "ValueError: no errors here, 0 errors": None,
        "GET /ERRORS_PAGE": None,
    }
    for text, expected in cases.items():
        assert classify(text) is expected, text


@given(st.text())
def test_classify_never_raises(text: str) -> None:
    assert classify(text) is None or isinstance(classify(text), LogSignal)

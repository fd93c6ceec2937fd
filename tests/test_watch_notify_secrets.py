"""Notifications leave the console redacted, and the journal never keeps a webhook's secret path.

Real channels: a command (this Python, reading the JSON on stdin) and a webhook served by a
local HTTP server on a loopback port."""

from __future__ import annotations

import http.server
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from incident_console.monitor.journal import Journal
from incident_console.watch.notify import Notifier
from incident_console.watch.policy import Notify

PW = "pw-9f3k2"
HOOK_TOKEN = "hooktoken-7Qx"


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/services/T0/B0/{HOOK_TOKEN}", bodies
    finally:
        server.shutdown()
        server.server_close()


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


async def test_event_is_redacted_on_every_channel(
    webhook: tuple[str, list[bytes]], tmp_path: Path
) -> None:
    url, bodies = webhook
    received = tmp_path / "stdin.json"
    command = [
        sys.executable,
        "-c",
        f"import sys; open({str(received)!r}, 'w').write(sys.stdin.read())",
    ]
    journal = Journal(tmp_path / "journal.jsonl")
    notifier = Notifier(Notify(command=command, webhook=url), journal)
    event = {
        "event": "probe_fails",
        "host": "prod",
        "summary": f"http://ops:{PW}@frontend/health failed",
        "evidence": {
            "probes": [{"url": f"http://ops:{PW}@frontend/health", "status": 502}],
            "log": [f"connecting with DB_PASSWORD={PW}"],
        },
    }
    outcomes = await notifier.deliver(event)
    journal.close()
    assert [o["ok"] for o in outcomes] == [True, True], outcomes

    assert len(bodies) == 1 and b"frontend/health" in bodies[0]
    assert PW.encode() not in bodies[0]
    stdin = _read(received)
    assert "frontend/health" in stdin and PW not in stdin
    kept = _read(tmp_path / "journal.jsonl")
    assert "webhook" in kept and "127.0.0.1" in kept
    assert PW not in kept and HOOK_TOKEN not in kept

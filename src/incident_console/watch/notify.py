"""Notifications: a JSON event to a command's stdin and/or POSTed to a webhook.

Delivery never blocks the watch loop and never stops it: each notification is a task, the
webhook POST runs in a thread with a timeout, the command is killed past its timeout, and every
outcome (delivered or not, and why) is journaled as a record of kind ``notification``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from incident_console.domain.redact import redact_record
from incident_console.monitor.journal import Journal
from incident_console.watch.policy import Notify

log = logging.getLogger(__name__)

#: How much of a failing command's output the journal keeps.
OUTPUT_KEEP = 300


def shown_url(url: str) -> str:
    """A webhook URL as the journal keeps it: scheme and host only.

    Chat webhooks carry their credential in the path (hooks.slack.com/services/T/B/SECRET),
    where no name says it is a secret: the journal and the report never see more than this.
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/…" if parts.scheme else "(webhook)"


def post_json(url: str, payload: bytes, timeout: float) -> int:  # noqa: ASYNC109 - in a thread
    """POST `payload` as JSON; returns the HTTP status (blocking: call it in a thread).

    Raises:
        OSError: the request failed (urllib's errors are OSErrors), or the status was not 2xx.
    """
    request = urllib.request.Request(
        url,
        data=payload,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "incident-console watch"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read(65536)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        with contextlib.suppress(Exception):
            exc.close()
        raise OSError(f"HTTP {exc.code} {exc.reason}") from None


class Notifier:
    """Sends watch events where the policy says, journaling every attempt.

    Args:
        settings: the policy's `notify` section.
        journal: where outcomes are recorded (None: only logged).
    """

    def __init__(self, settings: Notify, journal: Journal | None) -> None:
        self.settings = settings
        self.journal = journal
        self.sent = 0
        self.failed = 0
        self._tasks: set[asyncio.Task[list[dict[str, Any]]]] = set()

    @property
    def configured(self) -> bool:
        """Whether there is anywhere to send to."""
        return bool(self.settings.command or self.settings.webhook)

    def send(self, event: dict[str, Any]) -> None:
        """Deliver `event` in the background (on the running loop). Never raises."""
        task = asyncio.get_running_loop().create_task(self.deliver(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float = 15.0) -> None:  # noqa: ASYNC109
        """Wait for notifications in flight (at stop), at most `timeout` seconds."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def deliver(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Send `event` to every channel now; journal and return each channel's outcome."""
        # The evidence holds probe URLs, kernel and log lines: secrets leave here redacted,
        # as they would be in the journal.
        event = redact_record(event)
        payload = json.dumps(event, ensure_ascii=False, default=str).encode()
        outcomes: list[dict[str, Any]] = []
        if self.settings.command:
            outcomes.append(await self._command(self.settings.command, payload, event))
        if self.settings.webhook:
            outcomes.append(await self._webhook(self.settings.webhook, payload))
        ok = all(o["ok"] for o in outcomes)
        if outcomes:
            self.sent += ok
            self.failed += not ok
        if self.journal is not None:
            record: dict[str, Any] = {
                "kind": "notification",
                "host": event.get("host", ""),
                "event": event.get("event", ""),
                "target": event.get("target", ""),
                "summary": event.get("summary", ""),
                "delivered": ok and bool(outcomes),
                "channels": outcomes,
            }
            if not outcomes:
                record["error"] = "no notify command or webhook configured"
            self.journal.write(record)
        return outcomes

    async def _command(
        self, argv: list[str], payload: bytes, event: dict[str, Any]
    ) -> dict[str, Any]:
        started = time.monotonic()
        outcome: dict[str, Any] = {"channel": "command", "argv": argv, "ok": False}
        env = dict(os.environ)
        env.update(
            WATCH_EVENT=str(event.get("event", "")),
            WATCH_HOST=str(event.get("host", "")),
            WATCH_TARGET=str(event.get("target", "")),
            WATCH_SUMMARY=str(event.get("summary", "")),
        )
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            outcome["error"] = f"cannot run {argv[0]}: {exc.strerror or exc}"
            return outcome
        try:
            out, _ = await asyncio.wait_for(proc.communicate(payload), self.settings.timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            await proc.wait()
            outcome["error"] = f"{argv[0]} did not finish within {self.settings.timeout:g} s"
            return outcome
        outcome["exit_status"] = proc.returncode
        outcome["duration_s"] = round(time.monotonic() - started, 3)
        if proc.returncode != 0:
            text = out.decode("utf-8", "replace").strip()
            outcome["error"] = f"{argv[0]} exited {proc.returncode}: {text[-OUTPUT_KEEP:]}"
            return outcome
        outcome["ok"] = True
        return outcome

    async def _webhook(self, url: str, payload: bytes) -> dict[str, Any]:
        started = time.monotonic()
        shown = shown_url(url)
        outcome: dict[str, Any] = {"channel": "webhook", "url": shown, "ok": False}
        try:
            status = await asyncio.to_thread(post_json, url, payload, self.settings.timeout)
        except (OSError, ValueError) as exc:
            reason = str(getattr(exc, "reason", None) or exc).replace(url, shown)
            outcome["error"] = f"POST {shown}: {reason[:200] or type(exc).__name__}"
            return outcome
        outcome.update(ok=True, status=status, duration_s=round(time.monotonic() - started, 3))
        return outcome

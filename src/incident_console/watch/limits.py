"""Rate limits of watch's actions: restarts per target per hour with backoff, and notices.

Kept apart from the rule engine: these are the guards that stop a restart storm, and they are
small enough to read whole.
"""

from __future__ import annotations

from collections import deque
from typing import Literal

from incident_console.watch.policy import Limits

HOUR_S = 3600.0


class RestartLimiter:
    """At most N restarts per target in a sliding hour, each waiting twice as long as the last."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._done: dict[str, deque[float]] = {}
        self._escalated: set[str] = set()

    def recent(self, target: str, now: float) -> int:
        """Restarts of `target` in the hour before `now`."""
        done = self._done.setdefault(target, deque())
        while done and now - done[0] >= HOUR_S:
            done.popleft()
        return len(done)

    def check(self, target: str, now: float) -> tuple[str, float]:
        """('ok', 0), ('backoff', seconds left) or ('limit', seconds until a slot frees)."""
        count = self.recent(target, now)
        done = self._done[target]
        if count >= self.limits.restarts_per_hour:
            return "limit", (done[0] + HOUR_S - now) if done else HOUR_S
        if count:
            wait = min(self.limits.backoff * 2 ** (count - 1), self.limits.backoff_max)
            if now - done[-1] < wait:
                return "backoff", done[-1] + wait - now
        self._escalated.discard(target)
        return "ok", 0.0

    def note(self, target: str, now: float) -> None:
        """Count a restart (done, or intended in dry-run)."""
        self._done.setdefault(target, deque()).append(now)

    def unnote(self, target: str) -> None:
        """Take back the last counted restart of `target`: it was decided but not carried out."""
        done = self._done.get(target)
        if done:
            done.pop()

    def escalate_once(self, target: str) -> bool:
        """True the first time the limit stops `target`'s restarts (until a slot frees)."""
        if target in self._escalated:
            return False
        self._escalated.add(target)
        return True


class NotifyLimiter:
    """Edges always notify, a lasting condition every `renotify`, all at most N an hour."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._sent: dict[str, deque[float]] = {}
        self._escalated: set[str] = set()

    def allow(self, key: str, now: float, *, edge: bool) -> Literal["ok", "wait", "limit"]:
        """Whether a notification for `key` may go now (and count it if so)."""
        sent = self._sent.setdefault(key, deque())
        while sent and now - sent[0] >= HOUR_S:
            sent.popleft()
        if len(sent) >= self.limits.notifications_per_hour:
            return "limit"
        if not edge and sent and now - sent[-1] < self.limits.renotify:
            return "wait"
        self._escalated.discard(key)
        sent.append(now)
        return "ok"

    def escalate_once(self, key: str) -> bool:
        """True the first time `key` hits its hourly limit."""
        if key in self._escalated:
            return False
        self._escalated.add(key)
        return True

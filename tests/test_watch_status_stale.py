"""watch's status line says when its host's link is down: the numbers after it are the last
known ones, not the server now."""

from __future__ import annotations

from incident_console.domain.events import LinkChange
from incident_console.monitor.host_monitor import HostMonitor
from incident_console.transport.local import LocalHost
from incident_console.watch.policy import load_policy
from incident_console.watch.rules import RuleEngine
from incident_console.watch.runner import WatchedHost, WatchTarget, status_line


def test_status_line_says_the_link_is_stale() -> None:
    host = LocalHost()
    monitor = HostMonitor(host, sources=[])
    policy = load_policy()
    watched = WatchedHost(WatchTarget("prod", host), monitor, RuleEngine(policy), [])
    monitor.record(LinkChange(time=1796050000.0, state="connected"))
    assert "LINK" not in status_line(watched, 1796050010.0)
    monitor.record(LinkChange(time=1796050020.0, state="stale", reason="keepalive timeout"))
    line = status_line(watched, 1796050030.0)
    assert "LINK STALE since 14:47:00Z, last known" in line, line

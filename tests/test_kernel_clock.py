"""KernelClock: the replay's end, the kernel clock's drift, and which kills were seen live.

Measured on this machine: after an hour up, `dmesg --time-format iso` stamped a line written to
/dev/kmsg 0.8 s before the wall clock did. A `since` filter on stamps then dropped a kill that
happened right after the console started (tests/test_sources_events.py failed that way).
"""

from __future__ import annotations

from incident_console.domain.kernel_time import KernelClock

START = 1_800_000_000.0
DRIFT = 2.5  # the kernel's stamps run this far behind the wall clock


def test_the_replay_is_history_and_a_later_line_is_live_with_its_drift_corrected() -> None:
    clock = KernelClock(started=START)
    # The replay: a burst of old lines, 10 ms apart, the last one stamped 1 s before start.
    for i in range(50):
        when = clock.observe(START - 3600 + i * 70, START + 0.1 + i * 0.01)
        assert not clock.live
        assert not clock.is_live(when)
    # A kill printed 0.3 s after start, stamped with the drift, read 20 ms after it was printed.
    printed = START + 1.5
    when = clock.observe(printed - DRIFT, printed + 0.02)
    assert clock.live
    assert abs(when - printed) < 0.05
    assert clock.is_live(when)


def test_a_quiet_stream_is_live_after_the_pause() -> None:
    clock = KernelClock(started=START)
    clock.tick(START + 0.2)
    assert not clock.live
    clock.tick(START + 5.0)
    assert clock.live
    when = clock.observe(START + 6.0 - DRIFT, START + 6.01)
    assert clock.is_live(when)


def test_drift_is_the_smallest_recent_lag() -> None:
    clock = KernelClock(started=START)
    clock.tick(START + 1.0)
    for i, latency in enumerate((0.3, 0.01, 0.2)):
        printed = START + 2 + i
        clock.observe(printed - DRIFT, printed + latency)
    assert clock.offset is not None
    assert abs(clock.offset - (DRIFT + 0.01)) < 1e-6


def test_a_pause_inside_the_replay_does_not_make_old_lines_live() -> None:
    clock = KernelClock(started=START)
    clock.observe(START - 7200, START + 0.1)
    # A slow link stalls the replay for a second; the next line is two hours old.
    when = clock.observe(START - 7100, START + 1.2)
    assert not clock.live
    assert not clock.is_live(when)
    assert clock.offset is None

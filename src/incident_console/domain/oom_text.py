"""Every OOM kill in saved kernel text: a support bundle, `journalctl -k` output, a paste.

The text may be any printer's (dmesg with or without -T / --time-format iso / -x, /dev/kmsg,
syslog with or without dmesg's inner stamp, journalctl -k short / short-iso / short-precise /
short-unix) and may hold other programs' lines (syslog): only the kernel's are read.
"""

from __future__ import annotations

import re

from incident_console.domain.events import OomKill
from incident_console.domain.kernel_time import split_dmesg_line
from incident_console.domain.oom import OomAssembler

__all__ = ["kills_from_text"]

# A syslog / journal line of another program ("host dockerd[12]: ..."): not the kernel's, even
# when it quotes a kernel line (node-problem-detector does).
_OTHER_PROGRAM = re.compile(
    r"(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d{1,9})?|\d{4}-\d\d-\d\dT\S{8,40}|\d{9,11}\.\d{1,9})"
    r" \S{1,255} (?P<ident>[^\s:\[]{1,64})(?:\[\d{1,10}\])?: ",
    re.ASCII,
)


def kills_from_text(
    text: str,
    *,
    boot_time: float | None = None,
    year: int | None = None,
    source: str = "file",
) -> list[OomKill]:
    """Every kill in saved kernel text: dmesg (any -T/iso/-x), syslog, journalctl -k, a paste.

    Lines of other programs in a syslog file are skipped; a line without a time keeps the
    previous line's (0.0, unknown, before any): a kill's time is 0.0 when nothing told it.

    Args:
        text: The saved text.
        boot_time: The boot time of the host that printed it (since-boot stamps), if known.
        year: The year of yearless syslog / journalctl short stamps, if known.
        source: What the kills' `source` says (e.g. "file:/path/kern.log").
    """
    assembler = OomAssembler()
    kills: list[OomKill] = []
    last = 0.0
    for line in text.splitlines():
        other = _OTHER_PROGRAM.match(line)
        if other is not None and other["ident"] != "kernel":
            continue
        when, message = split_dmesg_line(line, boot_time, year)
        last = when if when is not None else last
        kills += assembler.feed(last, message, source)
    return kills + assembler.flush(source)

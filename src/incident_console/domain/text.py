"""Make text from containers and hosts safe to store and show: it is data, never markup.

A container's log can hold anything: colour codes, cursor movements, terminal title changes
(OSC), hyperlinks, progress bars redrawn with carriage returns, NULs, bidi overrides that make
a line read differently than it is. `sanitize` removes all of that and bounds the length. It
does not escape Rich/Textual markup: that is the UI's job (it shows text with `Text(...)`, never
`Text.from_markup`), and escaping here would corrupt the journal.
"""

from __future__ import annotations

import re

__all__ = ["MAX_LINE", "sanitize"]

MAX_LINE = 4096
"""Default bound on a sanitized text, in characters."""

_ESCAPES = re.compile(
    r"""
      \x1b\[[0-?]*[ -/]*[@-~]                       # CSI: colours, cursor movement
    | \x9b[0-?]*[ -/]*[@-~]                         # 8-bit CSI
    | (?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?    # OSC: titles, hyperlinks
    | (?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\|\x9c)?   # DCS, SOS, PM, APC
    | \x1b[ -/]*[0-~]                               # other ESC sequences: ESC ( B, ESC 7, ESC c
    """,
    re.VERBOSE,
)
# C0 except tab and newline, DEL, C1; and the bidi embedding/override/isolate controls.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SURROGATES = re.compile(r"[\ud800-\udfff]")


def _last_overwrite(line: str) -> str:
    # "10%\r20%\r30%" shows as "30%"; a trailing CR (CRLF endings) overwrites nothing.
    segments = [segment for segment in line.split("\r") if segment]
    return segments[-1] if segments else ""


def sanitize(text: str | bytes, max_len: int = MAX_LINE) -> str:
    """Turn arbitrary terminal output into plain, bounded text. Never raises.

    Args:
        text: A log line or any other text from the outside (bytes are decoded as UTF-8 with
            replacement characters).
        max_len: Longest result; longer text is cut and ends with a "… [+N chars]" marker.

    Returns:
        The text without escape sequences or control characters (newlines are kept, tabs
        become spaces, carriage-return overwrites keep the last segment of each line).
    """
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", errors="replace")
    elif not isinstance(text, str):
        text = str(text)
    text = _ESCAPES.sub("", text)
    if "\r" in text:
        text = "\n".join(_last_overwrite(line) for line in text.split("\n"))
    text = _CONTROLS.sub("", text)
    if "\t" in text:
        text = text.expandtabs(8)
    text = _SURROGATES.sub("\ufffd", text)
    limit = max(max_len, 0)
    if len(text) > limit:
        kept = max(limit - len(f"… [+{len(text)} chars]"), 0)
        text = text[:kept] + f"… [+{len(text) - kept} chars]"
    return text

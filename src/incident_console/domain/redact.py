"""Hide secrets before anything is written to the journal or shown on screen.

What counts as a secret: the value of a variable or field whose name says so (PASSWORD, PASSWD,
SECRET, TOKEN, *_KEY, CREDENTIAL, AUTH...), the password in a URL's userinfo
(``postgres://app:pw@db/app`` -> ``postgres://app:***@db/app``), the argument after a
``--password``-like flag, and the credentials of an ``Authorization:`` header. Redaction errs on
the side of hiding: a hidden harmless value costs little, a leaked password in a postmortem a lot.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["MASK", "is_secret_name", "redact_env", "redact_record", "redact_text"]

MASK = "***"

_SECRET_NAME = re.compile(
    r"PASSW(?:OR)?D|PASSPHRASE|SECRET|TOKEN|CREDENTIAL|AUTH|COOKIE|SESSION_?ID"
    r"|PRIVATE|API_?KEY|(?:^|[_.-])KEY(?:$|[_.-])|[A-Z]KEY$|^DB_?PASS$|_PASS$",
    re.IGNORECASE,
)
_URL_USERINFO = re.compile(
    r"(?<![A-Za-z0-9+.-])(?P<head>[A-Za-z][A-Za-z0-9+.-]{0,30}://[^:/@\s]*):(?P<pw>[^@/\s]+)@"
)
# NAME=value, NAME: value, "name": "value". The name and separator are matched first; the value
# only after a secret name, so that a plain pair's value can start the next pair ("a: b=c").
_KEY_SEP = re.compile(
    # The lookbehinds start names only at a boundary: linear time on long runs of letters.
    r"""(?<![A-Za-z0-9_.])(?<![A-Za-z0-9_.]-)["']?(?P<name>[A-Za-z_](?:[A-Za-z0-9_.]|-(?!-)){0,64})"""
    r"""["']?\s*[=:]\s*"""
)
# Bare values stop at Markdown's ` and | too: the report puts commands in code spans and tables.
_VALUE = re.compile(
    r""""(?:[^"\\\n]|\\.){0,1024}"|'[^'\n]{0,1024}'|[^\s,;&"'}\]`|]+|["'][^\s,;&}\]`|]*"""
)
_AUTH_HEADER = re.compile(
    r"(?P<head>\bAuthorization\s*[:=]\s*(?:Bearer|Basic|Token|Digest)?\s*)(?P<value>[^\s,;\"']+)",
    re.IGNORECASE,
)
_FLAG = re.compile(r"--?(?P<name>[A-Za-z][A-Za-z0-9_-]*)")


def is_secret_name(name: str) -> bool:
    """True when a variable/field name says its value is a secret (PASSWORD, API_KEY, ...)."""
    return bool(_SECRET_NAME.search(name))


def _mask_value(value: str) -> str:
    if value[:1] in ("'", '"') and value[-1:] == value[:1] and len(value) >= 2:
        return value[0] + MASK + value[0]
    return MASK


def _redact_urls(text: str) -> str:
    return _URL_USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)


def redact_text(text: str) -> str:
    """Redact secrets inside free text: NAME=value pairs, URL passwords, Authorization headers.

    Args:
        text: A log line, command output, a command line...

    Returns:
        The text with each secret value replaced by ``***`` (quotes kept).
    """
    if not isinstance(text, str):
        return text
    text = _AUTH_HEADER.sub(lambda m: m["head"] + MASK, text)

    parts: list[str] = []
    copied = position = 0
    while (m := _KEY_SEP.search(text, position)) is not None:
        position = m.end()
        name = m["name"]
        # Authorization headers were masked above, keeping their scheme word readable.
        if not is_secret_name(name) or name.lower() == "authorization":
            continue
        value = _VALUE.match(text, position)
        if value is None:
            continue
        position = value.end()
        if value[0].strip("'\"") != MASK:
            parts += [text[copied : value.start()], _mask_value(value[0])]
            copied = position
    parts.append(text[copied:])
    text = "".join(parts)
    return _redact_urls(text)


def redact_env(items: Iterable[str]) -> tuple[str, ...]:
    """Redact KEY=VALUE environment entries (docker inspect's Config.Env).

    A secret-looking key gets the value ``***`` (empty values stay empty: nothing to hide, and
    "unset" is worth seeing); any value's URL userinfo password is masked.
    """
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            continue
        key, sep, value = item.partition("=")
        if not sep:
            out.append(item)
        elif value and is_secret_name(key):
            out.append(f"{key}={MASK}")
        else:
            out.append(f"{key}={_redact_urls(value)}")
    return tuple(out)


def _redact_argv(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    hide_next = False
    for item in items:
        if hide_next and isinstance(item, str):
            out.append(MASK)
            hide_next = False
            continue
        hide_next = False
        if isinstance(item, str):
            flag = _FLAG.fullmatch(item)
            # "--password secret": the secret is the next argument.
            hide_next = bool(flag and is_secret_name(flag["name"]))
        out.append(redact_record(item))
    return out


def redact_record(obj: Any) -> Any:
    """Redact a journal record (dicts, lists, strings, numbers) recursively; returns a copy.

    Values under secret-looking keys become ``***``; strings elsewhere go through
    `redact_text`; lists are also read as argv (``["--token", "x"]``).
    """
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, dict):
        result: dict[Any, Any] = {}
        for key, value in obj.items():
            # "key" alone is the UI's key press in the journal, not a credential.
            secret = isinstance(key, str) and key.lower() != "key" and is_secret_name(key)
            if secret and isinstance(value, str | int | float) and value != "":
                result[key] = MASK
            else:
                result[key] = redact_record(value)
        return result
    if isinstance(obj, list | tuple):
        redacted = _redact_argv(list(obj))
        return tuple(redacted) if isinstance(obj, tuple) else redacted
    return obj

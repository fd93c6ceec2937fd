"""The console's TOML config: hosts, default theme, read-only, keymap.

Example (``~/.config/incident-console/config.toml``)::

    theme = "incident-dark"
    read_only = false

    [keymap]
    restart = "ctrl+r"     # binding id = key(s), comma separated

    [[hosts]]
    target = "prod"
    probes = ["https://app.example.com/api/v1/health"]
    read_only = true

An invalid file is reported in one line naming the file, the line and the key
(:class:`ConfigError`); the CLI prints it and exits 2.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class HostConfig(BaseModel):
    """One host the console watches."""

    model_config = ConfigDict(extra="forbid")

    target: str = Field(min_length=1)
    probes: list[str] = []
    read_only: bool = False

    @field_validator("probes")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not re.match(r"^https?://\S+$", url):
                raise ValueError(f"not an http(s) URL: {url!r}")
        return value


class Settings(BaseModel):
    """Everything the console reads from its config file (and the command line overrides)."""

    model_config = ConfigDict(extra="forbid")

    hosts: list[HostConfig] = []
    theme: str = "incident-dark"
    read_only: bool = False
    #: Binding id -> key(s), e.g. {"restart": "R", "help": "question_mark,f1"}.
    keymap: dict[str, str] = {}
    #: Extra folders of theme files (besides the shipped ones and the user theme folder).
    theme_dirs: list[Path] = []

    def host(self, target: str) -> HostConfig:
        """The config of `target`, or a default one when the file does not name it."""
        for host in self.hosts:
            if host.target == target:
                return host
        return HostConfig(target=target)


class ConfigError(ValueError):
    """An unusable config file; the message is one line: ``file:line: key: problem``."""


def load_settings(path: Path, *, required: bool) -> Settings:
    """Read the config file at `path`.

    Args:
        path: the file.
        required: when False (the default location), a missing file means default settings.

    Raises:
        ConfigError: unreadable, not TOML, or invalid; the message names file, line and key.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        if not required:
            return Settings()
        raise ConfigError(f"{path}: no such file") from error
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from error
    return parse_settings(text, path)


def parse_settings(text: str, path: Path) -> Settings:
    """Validate config text; see :func:`load_settings`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # tomllib's message already ends with "(at line N, column M)".
        raise ConfigError(f"{path}: {error}") from error
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        loc = first["loc"]
        key = ".".join(str(part) for part in loc) or "(top level)"
        line = find_key_line(text, loc)
        raise ConfigError(f"{path}:{line}: {key}: {first['msg']}") from error


def find_key_line(text: str, loc: tuple[Any, ...]) -> int:
    """The 1-based line where the key at `loc` is written (best effort; 1 if not found).

    Follows the path through ``[table]`` and ``[[array]]`` headers: ``("hosts", 1, "probes")``
    is the ``probes =`` line after the second ``[[hosts]]`` header.
    """
    lines = text.splitlines()
    start, end = 0, len(lines)
    found = 1
    prefix: list[str] = []
    for index, part in enumerate(loc):
        if isinstance(part, int):
            # The n-th [[prefix]] header, or the n-th item of an inline array: keep the key line.
            headers = _header_lines(lines, ".".join(prefix), array=True)
            if part < len(headers):
                start = headers[part]
                found = start + 1
                later = [h for h in _all_header_lines(lines) if h > start]
                end = later[0] if later else len(lines)
            continue
        name = str(part)
        dotted = ".".join([*prefix, name])
        key_re = re.compile(rf"^\s*[\"']?{re.escape(name)}[\"']?\s*=")
        key_line = next((i for i in range(start, end) if key_re.match(lines[i])), None)
        if key_line is not None and not (
            index + 1 < len(loc) and _header_lines(lines, dotted, array=True)
        ):
            found = key_line + 1
            start = key_line
            end = min(end, start + 1 + _value_extent(lines, key_line))
            prefix.append(name)
            continue
        headers = _header_lines(lines, dotted, array=True) or _header_lines(lines, dotted)
        if headers:
            start = headers[0]
            found = start + 1
            later = [h for h in _all_header_lines(lines) if h > start]
            end = later[0] if later else len(lines)
        prefix.append(name)
    return found


def _all_header_lines(lines: list[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if re.match(r"^\s*\[", line)]


def _header_lines(lines: list[str], dotted: str, *, array: bool = False) -> list[int]:
    pattern = (
        rf"^\s*\[\[\s*{re.escape(dotted)}\s*\]\]"
        if array
        else rf"^\s*\[\s*{re.escape(dotted)}\s*\]"
    )
    return [i for i, line in enumerate(lines) if re.match(pattern, line)]


def _value_extent(lines: list[str], key_line: int) -> int:
    """How many lines a value spans (multi-line arrays), so a nested loc stays inside it."""
    depth = 0
    for offset, line in enumerate(lines[key_line:]):
        depth += line.count("[") - line.count("]")
        if depth <= 0:
            return offset + 1
    return len(lines) - key_line

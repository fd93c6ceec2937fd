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

An invalid file is reported with every problem in it, one line each naming the file, the
line and the key (:class:`ConfigError`); the CLI prints them all and exits 2. A keymap entry
must name a binding id the console has (``restrat`` is reported, with the nearest id).
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

_URL = re.compile(r"^https?://\S+$")
T = TypeVar("T")


@dataclass
class HostConfig:
    """One host the console watches."""

    target: str
    probes: list[str] = field(default_factory=list)
    read_only: bool = False


@dataclass
class Settings:
    """Everything the console reads from its config file (and the command line overrides).

    Validated by hand rather than by a pydantic model: the console reads it before its first
    frame, and importing pydantic and building the models cost 0.3 s of that.
    """

    hosts: list[HostConfig] = field(default_factory=list)
    theme: str = "incident-dark"
    read_only: bool = False
    #: Binding id -> key(s), e.g. {"restart": "R", "help": "question_mark,f1"}.
    keymap: dict[str, str] = field(default_factory=dict)
    #: Extra folders of theme files (besides the shipped ones and the user theme folder).
    theme_dirs: list[Path] = field(default_factory=list)

    def host(self, target: str) -> HostConfig:
        """The config of `target`, or a default one when the file does not name it."""
        for host in self.hosts:
            if host.target == target:
                return host
        return HostConfig(target=target)

    def updated(self, **changes: Any) -> Settings:
        """A copy with `changes` (command-line flags over the file)."""
        return replace(self, **changes)


class ConfigError(ValueError):
    """An unusable config file: every problem in it, one line each (``file:line: key: problem``).

    ``str()`` is the first line (with how many more there are); ``errors`` holds them all.
    """

    def __init__(self, *errors: str) -> None:
        self.errors = list(errors) or ["invalid config"]
        more = len(self.errors) - 1
        super().__init__(self.errors[0] + (f" (and {more} more)" if more else ""))


class Invalid(ValueError):
    """A value that does not fit: where it is (keys and indexes) and what is wrong."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


def expect_table(value: object, loc: tuple[str | int, ...], known: set[str]) -> dict[str, Any]:
    """`value` as a TOML table with only `known` keys."""
    if not isinstance(value, Mapping):
        raise Invalid(loc, "Input should be a table")
    for key in value:
        if key not in known:
            raise Invalid((*loc, key), "Extra inputs are not permitted")
    return dict(value)


def expect_str(value: object, loc: tuple[str | int, ...], *, min_length: int = 0) -> str:
    if not isinstance(value, str):
        raise Invalid(loc, "Input should be a valid string")
    if len(value) < min_length:
        raise Invalid(loc, f"String should have at least {min_length} character")
    return value


def expect_bool(value: object, loc: tuple[str | int, ...]) -> bool:
    # TOML has booleans: "yes" is a string, and a typo must not switch read-only off.
    if not isinstance(value, bool):
        raise Invalid(loc, "Input should be a valid boolean (true or false)")
    return value


def expect_list(
    value: object, loc: tuple[str | int, ...], item: Callable[[object, tuple[str | int, ...]], Any]
) -> list[Any]:
    if not isinstance(value, list):
        raise Invalid(loc, "Input should be a valid list")
    return [item(v, (*loc, i)) for i, v in enumerate(value)]


def expect_str_map(value: object, loc: tuple[str | int, ...]) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise Invalid(loc, "Input should be a table")
    return {str(k): expect_str(v, (*loc, str(k))) for k, v in value.items()}


def _url(value: object, loc: tuple[str | int, ...]) -> str:
    text = expect_str(value, loc)
    if not _URL.match(text):
        raise Invalid(loc[:-1], f"Value error, not an http(s) URL: {text!r}")
    return text


class Problems:
    """Every value that does not fit, collected so a file with two mistakes reports both."""

    def __init__(self) -> None:
        self.found: list[Invalid] = []

    def take(self, read: Callable[[], T], default: T) -> T:
        """`read()`, or `default` after noting why it did not fit."""
        try:
            return read()
        except Invalid as error:
            self.found.append(error)
            return default

    def table(
        self, value: object, loc: tuple[str | int, ...], known: set[str]
    ) -> dict[str, Any] | None:
        """`value` as a table; every unknown key is noted (not only the first) and left out."""
        if not isinstance(value, Mapping):
            self.found.append(Invalid(loc, "Input should be a table"))
            return None
        table: dict[str, Any] = {}
        for key, item in value.items():
            if key in known:
                table[key] = item
            else:
                self.found.append(Invalid((*loc, key), "Extra inputs are not permitted"))
        return table

    def items(
        self,
        value: object,
        loc: tuple[str | int, ...],
        item: Callable[[object, tuple[str | int, ...]], T | None],
    ) -> list[T]:
        """Each item of a list read on its own: a bad second host does not hide a bad third."""
        if not isinstance(value, list):
            self.found.append(Invalid(loc, "Input should be a valid list"))
            return []
        out = []
        for index, entry in enumerate(value):
            try:
                got = item(entry, (*loc, index))
            except Invalid as error:
                self.found.append(error)
                continue
            if got is not None:
                out.append(got)
        return out


def _host(value: object, loc: tuple[str | int, ...], problems: Problems) -> HostConfig | None:
    table = problems.table(value, loc, {"target", "probes", "read_only"})
    if table is None:
        return None
    if "target" not in table:
        problems.found.append(Invalid((*loc, "target"), "Field required"))
    target = (
        problems.take(lambda: expect_str(table["target"], (*loc, "target"), min_length=1), "")
        if "target" in table
        else ""
    )
    probes = problems.items(table.get("probes", []), (*loc, "probes"), _url)
    read_only = problems.take(
        lambda: expect_bool(table.get("read_only", False), (*loc, "read_only")), True
    )
    return HostConfig(target=target, probes=probes, read_only=read_only) if target else None


def closest(word: str, choices: Collection[str]) -> str:
    """' (did you mean X?)' for the nearest of `choices`, or '' when none is near."""
    near = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {near[0]}?)" if near else ""


def _keymap(
    value: object, problems: Problems, known_actions: Collection[str] | None
) -> dict[str, str]:
    keymap: dict[str, str] = {}
    if not isinstance(value, Mapping):
        problems.found.append(Invalid(("keymap",), "Input should be a table"))
        return keymap
    for name, keys in value.items():
        loc: tuple[str | int, ...] = ("keymap", str(name))
        text: str | None = None
        try:
            text = expect_str(keys, loc, min_length=1)
        except Invalid as error:
            problems.found.append(error)
        if known_actions is not None and name not in known_actions:
            # Textual ignores an unknown binding id without a word: the remap would just not work.
            problems.found.append(
                Invalid(
                    loc,
                    f"unknown action{closest(str(name), known_actions)}; "
                    f"actions: {', '.join(sorted(known_actions))}",
                )
            )
            continue
        if text is not None:
            keymap[str(name)] = text
    return keymap


def collect_settings(
    data: object, known_actions: Collection[str] | None = None
) -> tuple[Settings, list[Invalid]]:
    """Settings from a parsed TOML document, and every value that did not fit.

    Args:
        data: the parsed document.
        known_actions: the binding ids a keymap may name; None to leave the keymap unchecked
            (the headless commands never load the UI that defines them).
    """
    problems = Problems()
    defaults = Settings()
    table = problems.table(data, (), {"hosts", "theme", "read_only", "keymap", "theme_dirs"})
    if table is None:
        return defaults, problems.found
    settings = Settings(
        hosts=problems.items(
            table.get("hosts", []), ("hosts",), lambda v, loc: _host(v, loc, problems)
        ),
        theme=problems.take(
            lambda: expect_str(table.get("theme", defaults.theme), ("theme",)), defaults.theme
        ),
        # A read_only that does not fit is taken as true, should the settings be used anyway.
        read_only=problems.take(
            lambda: expect_bool(table.get("read_only", False), ("read_only",)), True
        ),
        keymap=_keymap(table.get("keymap", {}), problems, known_actions),
        theme_dirs=[
            Path(p)
            for p in problems.items(table.get("theme_dirs", []), ("theme_dirs",), expect_str)
        ],
    )
    return settings, problems.found


def settings_from(data: object) -> Settings:
    """Settings from a parsed TOML document.

    Raises:
        Invalid: the first value that does not fit, with where it is.
    """
    settings, found = collect_settings(data)
    if found:
        raise found[0]
    return settings


def load_settings(
    path: Path,
    *,
    required: bool,
    known_actions: Callable[[], Collection[str]] | None = None,
) -> Settings:
    """Read the config file at `path`.

    Args:
        path: the file.
        required: when False (the default location), a missing file means default settings.
        known_actions: gives the binding ids a keymap may name (called only when the file
            has a keymap: finding them loads the UI); None leaves the keymap unchecked.

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
    return parse_settings(text, path, known_actions=known_actions)


def parse_settings(
    text: str,
    path: Path,
    *,
    known_actions: Callable[[], Collection[str]] | Collection[str] | None = None,
) -> Settings:
    """Validate config text; see :func:`load_settings`.

    Raises:
        ConfigError: every problem, in the order of the file's lines.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # tomllib's message already ends with "(at line N, column M)"; it stops at the first.
        raise ConfigError(f"{path}: {error}") from error
    actions = known_actions
    if callable(actions):
        actions = actions() if isinstance(data, Mapping) and data.get("keymap") else None
    settings, found = collect_settings(data, actions)
    if found:
        located = sorted(
            (find_key_line(text, error.loc), index, error) for index, error in enumerate(found)
        )
        raise ConfigError(
            *(
                f"{path}:{line}: {'.'.join(str(p) for p in error.loc) or '(top level)'}: "
                f"{error.message}"
                for line, _, error in located
            )
        )
    return settings


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

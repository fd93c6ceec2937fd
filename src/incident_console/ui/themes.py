"""Themes are TOML files: validated by a pydantic model, turned into ``textual.theme.Theme``.

The console ships ``incident-dark``, ``incident-light`` and ``projector`` in the top-level
``themes/`` folder; users add their own in :func:`locations.user_theme_dir`. A bad file is
reported in one line and skipped: a typo in a theme must never keep the console from opening
during an incident.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from textual.color import Color, ColorParseError
from textual.theme import Theme

DEFAULT_THEME = "incident-dark"

#: The variables our stylesheet uses beyond Textual's own; a theme may leave any of them out.
CUSTOM_VARIABLES = ("oom", "stale", "healthy", "unhealthy", "read-only", "signal", "search-match")

Glyphs = Literal["blocks", "plain"]


def _check_colour(value: str) -> str:
    try:
        Color.parse(value)
    except ColorParseError as error:
        raise ValueError(f"not a colour: {value!r}") from error
    return value


class ThemeColors(BaseModel):
    """The base colours Textual derives its palette from."""

    model_config = ConfigDict(extra="forbid")

    primary: str
    secondary: str | None = None
    accent: str | None = None
    warning: str | None = None
    error: str | None = None
    success: str | None = None
    foreground: str | None = None
    background: str | None = None
    surface: str | None = None
    panel: str | None = None

    @field_validator("*")
    @classmethod
    def _colour(cls, value: str | None) -> str | None:
        return None if value is None else _check_colour(value)


class ThemeFile(BaseModel):
    """One theme file."""

    model_config = ConfigDict(extra="forbid")

    name: str
    dark: bool = True
    #: "plain" draws sparklines and markers in ASCII (for projectors and screen sharing).
    glyphs: Glyphs = "blocks"
    colors: ThemeColors
    variables: dict[str, str] = {}

    @field_validator("variables")
    @classmethod
    def _variables(cls, value: dict[str, str]) -> dict[str, str]:
        for colour in value.values():
            _check_colour(colour)
        return value

    def to_theme(self) -> Theme:
        """The Textual theme, with every variable our stylesheet needs filled in."""
        c = self.colors
        defaults = {
            "oom": c.error or c.primary,
            "stale": c.secondary or c.primary,
            "healthy": c.success or c.primary,
            "unhealthy": c.error or c.primary,
            "read-only": c.warning or c.accent or c.primary,
            "signal": c.warning or c.primary,
            "search-match": c.accent or c.primary,
        }
        return Theme(
            name=self.name,
            dark=self.dark,
            variables={**defaults, **self.variables},
            **c.model_dump(),
        )


@dataclass(frozen=True, slots=True)
class LoadedTheme:
    """A theme ready to register, and what the console draws differently with it."""

    theme: Theme
    glyphs: Glyphs
    path: Path | None


class ThemeError(ValueError):
    """A theme file that cannot be used; the message is one line naming the file."""


def load_theme_file(path: Path) -> LoadedTheme:
    """Read and validate one theme file.

    Raises:
        ThemeError: the file is unreadable, not TOML, or not a valid theme.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ThemeError(f"{path}: {error.strerror or error}") from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ThemeError(f"{path}: {error}") from error
    try:
        model = ThemeFile.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise ThemeError(f"{path}: {key}: {first['msg']}") from error
    return LoadedTheme(theme=model.to_theme(), glyphs=model.glyphs, path=path)


def load_themes(folders: Iterable[Path]) -> tuple[list[LoadedTheme], list[str]]:
    """Every valid theme in `folders` (later folders override earlier ones by name).

    Returns:
        The themes, and one line per file that was skipped.
    """
    themes: dict[str, LoadedTheme] = {}
    errors: list[str] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                loaded = load_theme_file(path)
            except ThemeError as error:
                errors.append(f"theme skipped: {error}")
                continue
            themes[loaded.theme.name] = loaded
    return list(themes.values()), errors


def fallback_theme() -> LoadedTheme:
    """A built-in dark theme, used only when no theme file could be read at all."""
    model = ThemeFile(
        name=DEFAULT_THEME,
        colors=ThemeColors(primary="#4f9dde", error="#ef5f5f", success="#6ccf8e"),
    )
    return LoadedTheme(theme=model.to_theme(), glyphs="blocks", path=None)

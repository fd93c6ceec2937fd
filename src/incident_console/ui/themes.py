"""Themes are TOML files: validated (the config's checks), turned into ``textual.theme.Theme``.

The console ships ``incident-dark``, ``incident-light`` and ``projector`` in the top-level
``themes/`` folder; users add their own in :func:`locations.user_theme_dir`. A bad file is
reported in one line and skipped: a typo in a theme must never keep the console from opening
during an incident.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from textual.color import Color, ColorParseError
from textual.theme import Theme

from incident_console.config import Invalid, expect_bool, expect_str, expect_str_map, expect_table

DEFAULT_THEME = "incident-dark"

#: The variables our stylesheet uses beyond Textual's own; a theme may leave any of them out.
CUSTOM_VARIABLES = ("oom", "stale", "healthy", "unhealthy", "read-only", "signal", "search-match")

Glyphs = Literal["blocks", "plain"]


#: The base colours Textual derives its palette from; `primary` is required.
COLOUR_KEYS = (
    "primary", "secondary", "accent", "warning", "error", "success",
    "foreground", "background", "surface", "panel",
)  # fmt: skip


def _colour(value: object, loc: tuple[str | int, ...]) -> str:
    text = expect_str(value, loc)
    try:
        Color.parse(text)
    except ColorParseError:
        raise Invalid(loc, f"Value error, not a colour: {text!r}") from None
    return text


@dataclass(frozen=True, slots=True)
class ThemeFile:
    """One theme file, validated (by hand: the console reads its themes before its first
    frame, and pydantic cost 0.3 s of that)."""

    name: str
    colors: dict[str, str]
    dark: bool = True
    #: "plain" draws sparklines and markers in ASCII (for projectors and screen sharing).
    glyphs: Glyphs = "blocks"
    variables: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_data(cls, data: object) -> ThemeFile:
        """Raises: Invalid: the first value that does not fit, with where it is."""
        table = expect_table(data, (), {"name", "dark", "glyphs", "colors", "variables"})
        for required in ("name", "colors"):
            if required not in table:
                raise Invalid((required,), "Field required")
        colours = expect_table(table["colors"], ("colors",), set(COLOUR_KEYS))
        if "primary" not in colours:
            raise Invalid(("colors", "primary"), "Field required")
        glyphs = table.get("glyphs", "blocks")
        if glyphs not in ("blocks", "plain"):
            raise Invalid(("glyphs",), "Input should be 'blocks' or 'plain'")
        variables = expect_str_map(table.get("variables", {}), ("variables",))
        return cls(
            name=expect_str(table["name"], ("name",)),
            dark=expect_bool(table.get("dark", True), ("dark",)),
            glyphs=glyphs,
            colors={k: _colour(v, ("colors", k)) for k, v in colours.items()},
            variables={k: _colour(v, ("variables", k)) for k, v in variables.items()},
        )

    def to_theme(self) -> Theme:
        """The Textual theme, with every variable our stylesheet needs filled in."""
        c = {key: self.colors.get(key) for key in COLOUR_KEYS}
        primary = self.colors["primary"]
        defaults = {
            "oom": c["error"] or primary,
            "stale": c["secondary"] or primary,
            "healthy": c["success"] or primary,
            "unhealthy": c["error"] or primary,
            "read-only": c["warning"] or c["accent"] or primary,
            "signal": c["warning"] or primary,
            "search-match": c["accent"] or primary,
        }
        return Theme(
            name=self.name,
            dark=self.dark,
            variables={**defaults, **self.variables},
            **c,  # type: ignore[arg-type]
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
        model = ThemeFile.from_data(data)
    except Invalid as error:
        key = ".".join(str(part) for part in error.loc) or "(top level)"
        raise ThemeError(f"{path}: {key}: {error.message}") from error
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
        name=DEFAULT_THEME, colors={"primary": "#4f9dde", "error": "#ef5f5f", "success": "#6ccf8e"}
    )
    return LoadedTheme(theme=model.to_theme(), glyphs="blocks", path=None)


def theme_names(folders: Iterable[Path]) -> list[str]:
    """The names of the themes the console can switch to from `folders` (what `--theme` and
    the config's `theme` may name), sorted; the built-in fallback when none can be read."""
    themes, _errors = load_themes(folders)
    return sorted({loaded.theme.name for loaded in themes} or {DEFAULT_THEME})

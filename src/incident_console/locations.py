"""Where the console keeps its files: platformdirs paths, and the themes shipped with it."""

from __future__ import annotations

import sys
from pathlib import Path

import platformdirs

APP_NAME = "incident-console"


def config_dir() -> Path:
    """The user's config folder (``~/.config/incident-console`` on Linux)."""
    return platformdirs.user_config_path(APP_NAME)


def default_config_file() -> Path:
    """The config file read when `--config` is not given."""
    return config_dir() / "config.toml"


def user_theme_dir() -> Path:
    """The folder of the user's own theme files (``*.toml``)."""
    return config_dir() / "themes"


def builtin_theme_dirs() -> list[Path]:
    """The folders holding the themes shipped with the console, first found first.

    The wheel installs the top-level ``themes/`` folder as data files under
    ``<prefix>/share/incident-console/themes``; a source checkout (editable install) has it
    beside ``src/``.
    """
    candidates = [
        Path(__file__).resolve().parents[2] / "themes",
        Path(sys.prefix) / "share" / APP_NAME / "themes",
    ]
    return [path for path in candidates if path.is_dir()]

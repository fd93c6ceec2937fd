"""Config and theme files: valid ones load, invalid ones give one line naming file, line, key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from incident_console.config import ConfigError, load_settings, parse_settings
from incident_console.ui.themes import load_themes

THEMES = Path(__file__).resolve().parents[1] / "themes"


def test_valid_config_loads() -> None:
    text = (
        'theme = "projector"\nread_only = true\n[keymap]\nrestart = "R"\n'
        '[[hosts]]\ntarget = "prod"\nprobes = ["https://app.example.com/api/v1/health"]\n'
        "read_only = true\n"
    )
    settings = parse_settings(text, Path("c.toml"))
    assert settings.theme == "projector" and settings.read_only
    assert settings.keymap == {"restart": "R"}
    assert settings.host("prod").probes == ["https://app.example.com/api/v1/health"]
    assert settings.host("other").read_only is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('theme = "x"\nread_only = "maybe"\n', "c.toml:2: read_only:"),
        (
            '[[hosts]]\ntarget = "a"\n[[hosts]]\ntarget = "b"\nprobes = ["ftp://x"]\n',
            "c.toml:5: hosts.1.probes:",
        ),
        ('theme = "x"\ncolour = 1\n', "c.toml:2: colour: Extra inputs"),
        ("[keymap]\nhelp = 3\n", "c.toml:2: keymap.help:"),
        ("theme = \n", "c.toml: Invalid value (at line 1"),
    ],
)
def test_invalid_config_is_one_line_with_file_line_and_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, Path("c.toml"))
    message = str(caught.value)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_missing_default_config_is_fine_but_named_one_is_an_error(tmp_path: Path) -> None:
    assert load_settings(tmp_path / "none.toml", required=False).hosts == []
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "none.toml", required=True)


def test_cli_reports_bad_config_in_one_line_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[hosts]]\ntarget = "a"\nread_only = "yes please"\n')
    result = subprocess.run(
        [str(Path(sys.executable).parent / "incident-console"), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"incident-console: {config}:3: hosts.0.read_only: Input should be a valid boolean "
        "(true or false)"
    ]


def test_shipped_themes_load() -> None:
    themes, errors = load_themes([THEMES])
    assert errors == []
    names = {t.theme.name: t for t in themes}
    assert {"incident-dark", "incident-light", "projector"} <= set(names)
    assert names["projector"].glyphs == "plain"
    for loaded in themes:
        assert {"oom", "stale", "healthy", "unhealthy", "read-only"} <= set(loaded.theme.variables)


def test_bad_theme_file_is_reported_and_skipped(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text('name = "mine"\n[colors]\nprimary = "#123456"\n')
    (tmp_path / "bad.toml").write_text('name = "bad"\n[colors]\nprimary = "not-a-colour"\n')
    (tmp_path / "broken.toml").write_text("name = \n")
    themes, errors = load_themes([THEMES, tmp_path])
    assert "mine" in {t.theme.name for t in themes}
    assert "bad" not in {t.theme.name for t in themes}
    assert len(errors) == 2
    assert any("bad.toml: colors.primary" in e for e in errors)
    assert any("broken.toml" in e for e in errors)
    mine = next(t for t in themes if t.theme.name == "mine")
    assert mine.theme.variables["oom"] == "#123456"  # missing variables get defaults

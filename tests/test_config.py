"""Config and theme files: valid ones load, invalid ones give one line naming file, line, key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# Several mistakes at once: every one is reported, each on its own line, in the file's order.

#: (line of TOML, the key it is reported under, a piece of the message)
TOP_MISTAKES = [
    ('read_only = "yes"', "read_only", "valid boolean"),
    ("theme = 3", "theme", "valid string"),
    ("colour = 1", "colour", "Extra inputs are not permitted"),
    ('theme_dirs = "themes"', "theme_dirs", "valid list"),
]
HOST_MISTAKES = [
    ('read_only = "no"', "read_only", "valid boolean"),
    ('probes = ["ftp://x"]', "probes", "not an http(s) URL"),
    ("port = 22", "port", "Extra inputs are not permitted"),
    (None, "target", "Field required"),  # the target line left out: reported at [[hosts]]
]
KEYMAP_MISTAKES = [
    ('restrat = "ctrl+r"', "restrat", "unknown action (did you mean restart?)"),
    ("help = 3", "help", "valid string"),
    ('quti = "x"', "quti", "unknown action (did you mean quit?)"),
]
ACTIONS = {"restart", "help", "quit", "filter"}


def _subset(options: list[tuple[str | None, str, str]]) -> st.SearchStrategy[list[int]]:
    return st.lists(st.sampled_from(range(len(options))), unique=True)


@st.composite
def configs_with_mistakes(draw: st.DrawFn) -> tuple[str, list[tuple[int, str, str]]]:
    """A config text and the (line, key, message piece) each of its mistakes must give."""
    lines: list[str] = []
    expected: list[tuple[int, str, str]] = []

    def put(line: str, key: str | None = None, why: str = "") -> None:
        lines.append(line)
        if key is not None:
            expected.append((len(lines), key, why))

    for index in draw(_subset(TOP_MISTAKES)):
        text, key, why = TOP_MISTAKES[index]
        put(str(text), key, why)
    if draw(st.booleans()):
        put("# a comment between mistakes")
    for host in range(draw(st.integers(0, 3))):
        mistakes = [HOST_MISTAKES[i] for i in draw(_subset(HOST_MISTAKES))]
        missing_target = any(text is None for text, _, _ in mistakes)
        put("[[hosts]]", f"hosts.{host}.target" if missing_target else None, "Field required")
        if not missing_target:
            put(f'target = "host{host}"')
        for text, key, why in mistakes:
            if text is not None:
                put(text, f"hosts.{host}.{key}", why)
    keymap = [KEYMAP_MISTAKES[i] for i in draw(_subset(KEYMAP_MISTAKES))]
    if keymap or draw(st.booleans()):
        put("[keymap]")
        put('filter = "ctrl+f"')  # a valid remap among the bad ones
        for text, key, why in keymap:
            put(str(text), f"keymap.{key}", why)
    return "\n".join(lines) + "\n", expected


@settings(max_examples=200, deadline=None)
@given(configs_with_mistakes())
def test_every_mistake_is_reported_with_its_line(
    case: tuple[str, list[tuple[int, str, str]]],
) -> None:
    text, expected = case
    if not expected:
        parse_settings(text, Path("c.toml"), known_actions=ACTIONS)
        return
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, Path("c.toml"), known_actions=ACTIONS)
    errors = caught.value.errors
    assert len(errors) == len(expected), (text, errors)
    for error, (line, key, why) in zip(errors, expected, strict=True):
        assert error.startswith(f"c.toml:{line}: {key}: "), (text, errors)
        assert why in error and "\n" not in error, error
    # str() stays one line (the first), saying how many more there are.
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    assert str(caught.value) == errors[0] + more


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        (
            '[keymap]\nrestrat = "ctrl+r"\nrestart = "R"\n',
            ["c.toml:2: keymap.restrat: unknown action (did you mean restart?); actions: "
             "filter, help, quit, restart"],
        ),
        (
            '[keymap]\nzzz = "z"\n',  # nothing near: no guess, the list only
            ["c.toml:2: keymap.zzz: unknown action; actions: filter, help, quit, restart"],
        ),
    ],
)  # fmt: skip
def test_keymap_names_are_checked_against_the_actions(text: str, lines: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, Path("c.toml"), known_actions=ACTIONS)
    assert caught.value.errors == lines


def test_keymap_is_unchecked_without_actions_and_actions_found_only_when_needed() -> None:
    """Headless commands pass no actions; the console's are found only for a keymap."""
    assert parse_settings('[keymap]\nrestrat = "x"\n', Path("c.toml")).keymap == {"restrat": "x"}

    def no_ui() -> set[str]:
        raise AssertionError("the UI's bindings were looked up for a config without a keymap")

    assert parse_settings('theme = "projector"\n', Path("c.toml"), known_actions=no_ui).theme

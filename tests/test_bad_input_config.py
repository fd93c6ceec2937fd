"""Bad input to the console's config and theme, through the installed `incident-console`.

Each is one line per problem naming what was wrong (file and line where there is one) and
the exit code README.md's "Exit codes" documents: 2 for a config with problems (every one
of them), 1 for a theme no theme file defines (with the themes there are), before any app
opens.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from incident_console.commands.console import binding_ids
from incident_console.config import parse_settings

SCRIPT = str(Path(sys.executable).with_name("incident-console"))
THEMES = "themes: incident-dark, incident-light, projector"


def run(args: list[str], home: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The real command, with a HOME of its own (no user config or theme folder)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env["HOME"] = str(home)
    return subprocess.run(
        [SCRIPT, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def free_port() -> int:
    """A loopback port nothing listens on: where serve would listen, were it not refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    "command", [[], ["serve", "--port", str(free_port())]], ids=["console", "serve"]
)
def test_keymap_typo_names_file_line_and_the_closest_action(
    tmp_path: Path, command: list[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('theme = "incident-dark"\n\n[keymap]\nrestrat = "ctrl+r"\n')
    done = run([*command, "--config", str(config)], tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    prefix = f"incident-console: {config}:4: keymap.restrat: unknown action (did you mean restart?)"
    assert lines[0].startswith(prefix), lines[0]
    known = lines[0].split("; actions: ", 1)[1].split(", ")
    assert {"restart", "help", "quit", "theme", "filter"} <= set(known)
    assert known == sorted(known)


def test_config_with_two_errors_reports_both(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        'theme = "incident-dark"\nread_only = "yes"\n\n[[hosts]]\ntarget = "prod"\n'
        'probes = ["ftp://prod/"]\n'
    )
    done = run(["--config", str(config)], tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"incident-console: {config}:2: read_only: Input should be a valid boolean (true or false)",
        f"incident-console: {config}:6: hosts.0.probes: Value error, not an http(s) URL: "
        "'ftp://prod/'",
    ]


def test_watch_reports_every_config_error_too(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('read_only = 1\ncolour = "red"\n')
    done = run(["watch", "--config", str(config), "-q"], tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"incident-console: {config}:1: read_only: Input should be a valid boolean (true or false)",
        f"incident-console: {config}:2: colour: Extra inputs are not permitted",
    ]


def test_unknown_theme_flag_exits_1_with_the_themes(tmp_path: Path) -> None:
    done = run(["--theme", "nosuch"], tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"incident-console: --theme: unknown theme 'nosuch'; {THEMES}"
    ]
    assert "incident journal" not in done.stderr  # no console was opened, no journal made


def test_unknown_theme_in_config_names_its_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('read_only = true\ntheme = "nosuch"\n')
    done = run(["--config", str(config)], tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"incident-console: {config}:2: theme: unknown theme 'nosuch'; {THEMES}"
    ]


def test_a_theme_of_the_users_own_is_known(tmp_path: Path) -> None:
    """The list comes from the theme files, the user's folder too, not from a fixed list."""
    folder = tmp_path / ".config" / "incident-console" / "themes"
    folder.mkdir(parents=True)
    (folder / "mine.toml").write_text('name = "mine"\n[colors]\nprimary = "#123456"\n')
    done = run(["--theme", "nosuch"], tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().endswith("themes: incident-dark, incident-light, mine, projector"), (
        done.stderr
    )


def test_serve_refuses_an_unknown_theme_before_it_listens(tmp_path: Path) -> None:
    done = run(["serve", "--theme", "nosuch", "--port", str(free_port())], tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"incident-console: --theme: unknown theme 'nosuch'; {THEMES}"
    ]


@pytest.mark.parametrize("keymap", ['restart = "ctrl+r"', 'help = "f1"\nquit = "ctrl+q"'])
def test_real_binding_ids_pass(keymap: str) -> None:
    """README's example keymap, and others, are valid against the console's real bindings."""
    settings = parse_settings(f"[keymap]\n{keymap}\n", Path("c.toml"), known_actions=binding_ids)
    assert settings.keymap and set(settings.keymap) <= binding_ids()

"""Bad input never becomes a traceback: hypothesis over the loaders and parsers users feed.

Every loader either returns a value or raises its own error type whose message is one line
naming the file (and line where it has one). Anything else escaping is a bug.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incident_console.config import ConfigError, parse_settings
from incident_console.domain.kernel_time import split_dmesg_line
from incident_console.runbook.importer import import_markdown
from incident_console.runbook.loader import RunbookError, parse_runbook
from incident_console.runbook.units import parse_duration, parse_size
from incident_console.transport.targets import parse_target
from incident_console.watch.policy import parse_policy

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that looks like YAML/TOML often enough to get past the first parser.
_TOKENS = st.sampled_from(
    [
        "name: x\n", "title: t\n", "steps:\n", "  - id: a\n", "    kind: check\n",
        "    run: [docker, ps]\n", "    title: s\n", "vars:\n", "  a: 1\n", "- ", ": ",
        "[", "]", "{", "}", "'", '"', "\t", "  ", "\n", "#", "&a ", "*a ", "!!python/object ",
        "[hosts.a]\n", 'target = "ssh://u@h:22"\n', "read_only = true\n", "theme = 1\n",
        "= ", "[[", "]]\n", "\x00", "\ufeff", "é", "9" * 30, "-1", "null", "~",
    ]
)  # fmt: skip
STRUCTURED = st.lists(_TOKENS, max_size=40).map("".join)
TEXT = st.one_of(st.text(max_size=400), STRUCTURED)


def _one_line(message: str) -> None:
    assert message and "\n" not in message.strip(), repr(message)
    assert "Traceback" not in message


@FUZZ
@given(TEXT)
def test_runbook_loader_never_raises_anything_else(text: str) -> None:
    try:
        parse_runbook(text, "rb.yaml")
    except RunbookError as exc:
        assert exc.errors
        for error in exc.errors:
            assert error.file == "rb.yaml" and error.line >= 1 and error.column >= 1
            _one_line(str(error))


@FUZZ
@given(TEXT)
def test_watch_policy_loader_never_raises_anything_else(text: str) -> None:
    try:
        parse_policy(text, "policy.yaml")
    except Exception as exc:
        errors = getattr(exc, "errors", None)
        assert errors, f"{type(exc).__name__}: {exc}"
        for error in errors:
            _one_line(str(error))
            assert str(error).startswith("policy.yaml:")


@FUZZ
@given(TEXT)
def test_config_loader_never_raises_anything_else(text: str) -> None:
    try:
        parse_settings(text, Path("config.toml"))
    except ConfigError as exc:
        _one_line(str(exc))
        assert str(exc).startswith("config.toml")


@FUZZ
@given(TEXT)
def test_markdown_import_never_raises_anything_else(text: str) -> None:
    try:
        out = import_markdown(text, source="notes.md")
    except (ValueError, RunbookError) as exc:
        _one_line(str(exc))
    else:
        assert isinstance(out, str)


@FUZZ
@given(st.text(max_size=80))
def test_target_parser_one_line_value_errors(text: str) -> None:
    try:
        parse_target(text)
    except ValueError as exc:
        _one_line(str(exc))


@FUZZ
@given(st.text(max_size=40))
def test_duration_and_size_parsers_one_line_value_errors(text: str) -> None:
    for parse in (parse_duration, parse_size):
        try:
            parse(text)
        except ValueError as exc:
            _one_line(str(exc))


@FUZZ
@given(st.text(max_size=200), st.one_of(st.none(), st.floats(allow_nan=True)))
def test_dmesg_line_splitter_never_raises(line: str, boot: float | None) -> None:
    when, rest = split_dmesg_line(line, boot)
    assert isinstance(rest, str)
    assert when is None or when == when  # never NaN

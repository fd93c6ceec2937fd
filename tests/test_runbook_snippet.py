"""A runbook's shell snippet gets its variables as positional parameters, never as shell text.

Run on a real LocalHost with `sh`: a hostile value (a container name or `--set` value holding
`;`, `$(...)`, quotes, a glob) must come out of the snippet exactly as it went in, in every
quoting context the author may have put the reference in, and must never run."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from incident_console.runbook.actions import step_argv
from incident_console.runbook.schema import Step, snippet_argv
from incident_console.transport.local import LocalHost


def _hostile(tmp_path: Path) -> tuple[str, Path]:
    marker = tmp_path / f"pwned-{uuid.uuid4().hex[:8]}"
    value = f'svc\'; touch {marker}; echo "$(touch {marker})" `touch {marker}` * end'
    return value, marker


@pytest.mark.parametrize(
    "snippet",
    [
        "printf '%s\\n' {{service}}",
        'printf "%s\\n" "{{service}}"',
        "printf '%s\\n' '{{service}}'",
        "printf '%s\\n' \"pre {{service}} post\"",
        "printf '%s\\n' 'pre {{service}} post'",
    ],
)
async def test_hostile_variable_is_one_literal_word(snippet: str, tmp_path: Path) -> None:
    value, marker = _hostile(tmp_path)
    step = Step(id="s", title="t", kind="diagnose", run=snippet)
    argv = step_argv(step, {"service": value})
    assert value not in argv[2], "the value was spliced into the shell text"
    host = LocalHost()
    await host.connect()
    try:
        result = await host.run(argv, timeout=10)
    finally:
        await host.close()
    assert result.exit_status == 0, result.stderr
    expected = value
    if "pre " in snippet:
        expected = f"pre {value} post"
    assert result.stdout == expected + "\n"
    assert not marker.exists()


def test_a_reference_used_twice_is_one_parameter() -> None:
    argv = snippet_argv("echo {{a}} {{b}} {{a}}", {"a": "1", "b": "2"})
    assert argv == ["sh", "-c", 'echo "${1}" "${2}" "${1}"', "runbook-step", "1", "2"]


def test_unknown_variable_raises_key_error() -> None:
    with pytest.raises(KeyError):
        snippet_argv("echo {{nope}}", {})


def test_argv_steps_render_each_element_without_a_shell() -> None:
    step = Step(id="s", title="t", kind="diagnose", run=["docker", "logs", "{{container}}"])
    assert step_argv(step, {"container": "a; rm -rf /"}) == ["docker", "logs", "a; rm -rf /"]


async def test_docker_go_templates_are_kept_literally_and_run(tmp_path: Path) -> None:
    # {{range}}...{{end}}, {{.X}} and {{ json . }} are docker's, not runbook variables: they
    # pass `runbook check`, survive render and snippet_argv, and reach the program as written.
    from incident_console.runbook.loader import parse_runbook

    snippet = (
        "printf '%s|' '{{range .Mounts}}{{.Source}}{{end}}' \"{{ json . }}\" {{container}} "
        "'{{if .State.Running}}up{{else}}down{{end}}'"
    )
    text = (
        "name: t\ntitle: t\nsteps:\n  - id: s\n    title: t\n    kind: diagnose\n"
        f"    run: {snippet!r}\n"
    ).replace("\\'", "''")
    runbook = parse_runbook(text, "t.yaml")
    step = runbook.steps[0]
    argv = step_argv(step, {"container": "web-1"})
    assert argv[4:] == ["web-1"], "only {{container}} is a variable"
    host = LocalHost()
    await host.connect()
    try:
        result = await host.run(argv, timeout=10)
    finally:
        await host.close()
    assert result.stdout == (
        "{{range .Mounts}}{{.Source}}{{end}}|{{ json . }}|web-1|"
        "{{if .State.Running}}up{{else}}down{{end}}|"
    )

"""Runbooks and watch policies are read by one YAML validator: the same broken text gets the
same line-numbered message from both (only the file's kind differs)."""

from __future__ import annotations

import pytest

from incident_console.runbook.loader import RunbookError, parse_runbook
from incident_console.watch.policy import PolicyError, parse_policy


@pytest.mark.parametrize(
    "text", ["a: [1,\nb: 2\n", "- just\n- a list\n", "x: \x07\n", "name: [unclosed\n"]
)
def test_same_yaml_problem_same_message(text: str) -> None:
    with pytest.raises(RunbookError) as runbook:
        parse_runbook(text, "f.yaml")
    with pytest.raises(PolicyError) as policy:
        parse_policy(text, "f.yaml")
    r, p = runbook.value.errors[0], policy.value.errors[0]
    assert (r.file, r.line, r.column) == (p.file, p.line, p.column)
    if r.message.startswith("YAML:"):
        assert r.message == p.message
    else:
        assert "is a mapping" in r.message and "is a mapping" in p.message

"""`output_matches` can fail: an empty pattern is a load error, an empty match never passes.

The check runs against a real HostMonitor on LocalHost (no sources: it only reads the output).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from incident_console.monitor.host_monitor import HostMonitor
from incident_console.runbook.checks import Checker
from incident_console.runbook.engine import CheckStatus, StepRecord
from incident_console.runbook.loader import RunbookError, parse_runbook
from incident_console.runbook.schema import Check, Step
from incident_console.transport.local import LocalHost

RUNBOOK = """\
name: t
title: test
steps:
  - id: look
    title: Look
    kind: diagnose
    run: [docker, ps]
    checks:
      - output_matches: {pattern}
"""


@pytest.mark.parametrize("pattern", ["''", "'  '", "'.*'", "'(x)?'", "'^'", "'{{container}}*'"])
def test_a_pattern_that_matches_nothing_is_a_load_error_with_its_line(pattern: str) -> None:
    with pytest.raises(RunbookError) as caught:
        parse_runbook(RUNBOOK.format(pattern=pattern), "t.yaml")
    error = str(caught.value.errors[0])
    assert error.startswith("t.yaml:9:") and "could not fail" in error, error


def test_a_real_pattern_still_loads() -> None:
    runbook = parse_runbook(RUNBOOK.format(pattern="'{{container}}'"), "t.yaml")
    assert runbook.steps[0].checks[0].output_matches == "{{container}}"


@pytest.fixture
async def checker() -> AsyncIterator[Checker]:
    monitor = HostMonitor(LocalHost(), sources=[])
    await monitor.start()
    yield Checker(monitor)
    await monitor.stop()


async def _verdict(
    checker: Checker, pattern: str, output: str, variables: dict[str, str]
) -> tuple[CheckStatus, str]:
    step = Step(id="s", title="s", kind="diagnose", run=["true"], checks=[])
    record = StepRecord(step, output=output)
    check = Check.model_construct(output_matches=pattern)  # as if the loader had let it by
    result = await checker.evaluate(check, record, variables, {})
    return result.status, result.detail


async def test_an_unknown_variable_fails_instead_of_matching_everything(checker: Checker) -> None:
    output = "icl_backend_1  Up 3 minutes (healthy)  icl-lab\n"
    status, detail = await _verdict(checker, "{{container}}", output, {"container": ""})
    assert status is CheckStatus.FAILED and detail == "container unknown: nothing to look for"
    status, detail = await _verdict(
        checker, "{{container}}", output, {"container": "icl_backend_1"}
    )
    assert status is CheckStatus.PASSED and "icl_backend_1" in detail


async def test_a_value_is_matched_literally_and_empty_matches_do_not_pass(checker: Checker) -> None:
    status, _ = await _verdict(
        checker, "{{container}}", "icl_backendX1\n", {"container": "icl.backend.1"}
    )
    assert status is CheckStatus.FAILED  # '.' in a name is no wildcard
    status, detail = await _verdict(checker, "x*", "no such letter\n", {})
    assert status is CheckStatus.FAILED and "found ''" not in detail
    status, detail = await _verdict(checker, "", "anything\n", {})
    assert status is CheckStatus.FAILED and "empty pattern" in detail

"""Shared test setup. Fixtures that start real components live in their own plugin modules."""

from __future__ import annotations

import os

import pytest

# Real components (docker engine, sshd) are required in CI: a missing one fails there and
# may only skip elsewhere, with the reason.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

pytest_plugins = ["fixtures_sshd", "fixtures_lab", "fixtures_labserver"]


#: Modules with labs of their own and minutes of load (a leak measured, a runbook watched):
#: tests/run runs them in the lab server's pass, whose VM mostly waits, to even out the two.
SECOND_PASS_MODULES = frozenset(
    {"test_leak_lab.py", "test_runbook_from_nothing.py", "test_lab_host_memory.py"}
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "pass2: run in tests/run's second pass (own labs)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every test on the lab server VM is in the `labserver` pass (tests/run runs it beside the
    # rest), whether it is marked by hand or only asks for the VM.
    for item in items:
        if item.path.name in SECOND_PASS_MODULES:
            item.add_marker(pytest.mark.pass2)
        if "lab_server" in getattr(item, "fixturenames", ()) and not item.get_closest_marker(
            "labserver"
        ):
            item.add_marker(pytest.mark.labserver)

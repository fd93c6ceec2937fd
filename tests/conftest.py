"""Shared test setup. Fixtures that start real components live in their own plugin modules."""

from __future__ import annotations

import os

import pytest

# Real components (docker engine, sshd) are required in CI: a missing one fails there and
# may only skip elsewhere, with the reason.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

pytest_plugins = ["fixtures_sshd", "fixtures_lab", "fixtures_labserver"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every test on the lab server VM is in the `labserver` pass (tests/run runs it beside the
    # rest), whether it is marked by hand or only asks for the VM.
    for item in items:
        if "lab_server" in getattr(item, "fixturenames", ()) and not item.get_closest_marker(
            "labserver"
        ):
            item.add_marker(pytest.mark.labserver)

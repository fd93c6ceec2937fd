"""Shared test setup. Fixtures that start real components live in their own plugin modules."""

from __future__ import annotations

import os

# Real components (docker engine, sshd) are required in CI: a missing one fails there and
# may only skip elsewhere, with the reason.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

pytest_plugins = ["fixtures_sshd", "fixtures_lab", "fixtures_labserver"]

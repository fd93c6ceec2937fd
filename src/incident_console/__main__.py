"""`python -m incident_console`: the same as the `incident-console` command."""

from __future__ import annotations

from incident_console.cli import main

main()

"""Every rule of the allowlist, by program name: what the classifier looks a program up in."""

from __future__ import annotations

from incident_console.domain.command_rules import TEXT_RULES, Rule
from incident_console.domain.command_rules_services import SERVICE_RULES
from incident_console.domain.command_rules_system import SYSTEM_RULES
from incident_console.domain.command_wrappers import WRAPPERS

RULES: dict[str, Rule] = {**TEXT_RULES, **SYSTEM_RULES, **SERVICE_RULES, **WRAPPERS}

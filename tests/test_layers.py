"""The layers below ui/ never load textual or rich (ARCHITECTURE.md), checked in a fresh interpreter."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import incident_console

LOWER_LAYERS = ("domain", "transport", "sources", "monitor", "report", "runbook", "lab")


def _modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(incident_console.__path__, "incident_console."):
        layer = info.name.split(".")[1]
        if layer in LOWER_LAYERS:
            names.append(info.name)
    return names


def test_lower_layers_exist() -> None:
    found = {name.split(".")[1] for name in _modules()}
    assert {"domain", "transport", "monitor"} <= found


def test_no_textual_or_rich_below_ui() -> None:
    modules = _modules()
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", (
        f"textual/rich loaded by the lower layers: {out.stdout.strip()}"
    )

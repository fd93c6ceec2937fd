"""No path to a server around the door: nothing outside the monitor writes, runs or restarts.

The monitor hands its callers a HostView (no run, write_text, docker); this walks the source so
that no module outside the layers that own the transport host (transport/, monitor/, the
monitor's sources/, and lab/, which drives its own local stack) calls a host's `write_text`,
`docker`, `stream`, `start`, or `run` with an argv the classifier does not call read-only.
"""

from __future__ import annotations

import ast
from pathlib import Path

from incident_console.domain.commands import classify_argv

SRC = Path(__file__).resolve().parent.parent / "src" / "incident_console"
#: The layers that hold the transport host by design.
OWNERS = ("transport", "monitor", "sources", "lab")
#: Methods of a Host that reach the server.
REACHING = {"run", "write_text", "docker", "stream", "start"}


def _literal_argv(node: ast.expr) -> list[str] | None:
    if isinstance(node, ast.List) and all(
        isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts
    ):
        return [e.value for e in node.elts]  # type: ignore[attr-defined]
    return None


def side_doors(tree: ast.AST) -> list[str]:
    """Calls on a host-like receiver that could change the server, as 'line: text'."""
    found: list[str] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in REACHING:
            continue
        receiver = ast.unparse(node.func.value)
        last = receiver.rsplit(".", 1)[-1].lower()
        if "host" not in last:
            continue  # a Path's write_text, asyncio.run, a runner's run
        if node.func.attr == "run" and node.args:
            argv = _literal_argv(node.args[0])
            if argv is not None and classify_argv(argv).read_only:
                continue
        found.append(f"{node.lineno}: {ast.unparse(node)[:100]}")
    return found


def test_the_walker_finds_side_doors() -> None:
    code = (
        "async def f(monitor, host, self):\n"
        "    await monitor.host.write_text('/srv/dc.yml', 'x')\n"
        "    await host.run(['docker', 'restart', 'backend'])\n"
        "    await self._host.run(argv)\n"
        "    client = await self.host.docker()\n"
        "    await host.run(['cat', '/proc/meminfo'])\n"
        "    Path('x').write_text('y')\n"
        "    asyncio.run(main())\n"
    )
    assert [line.split(":")[0] for line in side_doors(ast.parse(code))] == ["2", "3", "4", "5"]


def test_no_module_outside_the_monitor_reaches_a_server_but_through_the_door() -> None:
    offenders = [
        f"{path.relative_to(SRC)}:{hit}"
        for path in sorted(SRC.rglob("*.py"))
        if path.relative_to(SRC).parts[0] not in OWNERS
        for hit in side_doors(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert offenders == []


def test_inside_the_monitor_only_the_door_runs_commands_or_writes() -> None:
    # host_monitor.py hands the transport host to the sources and the door, and probes compose
    # and inspects containers (reads); the door (door.py) is the one place that writes.
    monitor = SRC / "monitor" / "host_monitor.py"
    hits = side_doors(ast.parse(monitor.read_text(encoding="utf-8")))
    assert [h for h in hits if "write_text" in h or ".run(" in h] == []

"""No `asyncio.wait_for` inside a `while` loop of the product.

On Python 3.11, wait_for can swallow a cancellation that lands just as its inner awaitable
completes; inside a long-lived loop the task then carries on and a stop waits forever (seen
in the sampler and the kernel-log follower). `asyncio.timeout` has no such window. This walks
the source so a new loop cannot bring the bug back."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "incident_console"


def _wait_for_in_while(tree: ast.AST) -> list[int]:
    found: list[int] = []

    def visit(node: ast.AST, in_loop: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, False)
                continue
            if (
                in_loop
                and isinstance(child, ast.Call)
                and isinstance(child.func, ast.Attribute)
                and child.func.attr == "wait_for"
            ):
                found.append(child.lineno)
            visit(child, in_loop or isinstance(child, ast.While))

    visit(tree, False)
    return found


def test_the_walker_finds_wait_for_in_a_while_loop() -> None:
    code = "async def f(e):\n    while True:\n        await asyncio.wait_for(e.wait(), 1)\n"
    assert _wait_for_in_while(ast.parse(code)) == [3]


def test_no_wait_for_in_while_loops() -> None:
    offenders = [
        f"{path.relative_to(SRC)}:{line}"
        for path in sorted(SRC.rglob("*.py"))
        for line in _wait_for_in_while(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert offenders == []

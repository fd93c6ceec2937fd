"""Load a runbook from YAML, with every error pointing at its line and column.

ruamel.yaml keeps the position of every key and item; pydantic's error locations are mapped
back onto them, so `runbook check` can say `oom.yaml:14:7: steps[2].kind: ...`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from incident_console.runbook.schema import ACTIONS, CHECKS, VARIABLE_REF, Runbook
from incident_console.runbook.units import DurationError, parse_duration

Path_ = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class LoadError:
    """One problem in a runbook file, 1-based line and column."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class RunbookError(Exception):
    """A runbook could not be loaded; `errors` holds every problem found."""

    def __init__(self, errors: list[LoadError]) -> None:
        self.errors = errors
        super().__init__(str(errors[0]) if errors else "invalid runbook")


def _position(tree: Any, path: Path_) -> tuple[int, int]:
    """The 0-based (line, column) of the deepest node of `path` that exists in `tree`."""
    node = tree
    line, col = 0, 0
    if isinstance(node, CommentedMap | CommentedSeq):
        line, col = node.lc.line, node.lc.col
    for part in path:
        if isinstance(node, CommentedMap) and part in node:
            line, col = node.lc.key(part)
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line, col = node.lc.item(part)
            node = node[part]
        else:
            break
    return line, col


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top)"


def _strings(node: Any, path: Path_ = ()) -> Iterator[tuple[Path_, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _strings(value, (*path, i))
    elif isinstance(node, str):
        yield path, node


# Union members and validator tags pydantic appends to a location: not keys of the file.
_NOT_KEYS = {"str", "list[str]", "bool", "int", "function-after", "function-before"}


def _pydantic_errors(file: str, tree: Any, exc: ValidationError) -> list[LoadError]:
    errors: list[LoadError] = []
    seen: set[tuple[int, str]] = set()
    raw = [
        (tuple(p for p in e["loc"] if not (isinstance(p, str) and p in _NOT_KEYS)), e)
        for e in exc.errors()
    ]
    # A union (run: text or list) reports once per member: keep the deepest, most specific one.
    locs = {loc for loc, _ in raw}
    for loc, err in raw:
        if any(other[: len(loc)] == loc and len(other) > len(loc) for other in locs):
            continue
        if err["type"] == "extra_forbidden":
            message = f"{_dotted(loc)}: unknown field {loc[-1]!r}"
            if len(loc) == 3 and loc[0] == "steps":
                message += f" (a step's action is one of: {', '.join(ACTIONS)})"
            elif len(loc) == 5 and loc[2] == "checks":
                message += f" (checks: {', '.join(CHECKS)})"
        elif err["type"] == "missing":
            message = f"{_dotted(loc)}: required field missing"
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            message = f"{_dotted(loc)}: {msg}"
        line, col = _position(tree, loc)
        if (line, message) in seen:  # a union reports the same problem once per member
            continue
        seen.add((line, message))
        errors.append(LoadError(file, line + 1, col + 1, message))
    return errors


def _semantic_errors(file: str, tree: Any, runbook: Runbook) -> list[LoadError]:
    """What pydantic cannot see: unknown variables, duplicate ids, bad durations."""
    errors: list[LoadError] = []

    def add(path: Path_, message: str) -> None:
        line, col = _position(tree, path)
        errors.append(LoadError(file, line + 1, col + 1, message))

    known = runbook.known_variables
    for path, text in _strings(tree):
        for match in VARIABLE_REF.finditer(text):
            if match.group(1) not in known:
                add(path, f"{_dotted(path)}: unknown variable {match.group(1)!r}")
    for key in ("requires",):
        for i, name in enumerate(runbook.requires):
            if name not in known:
                add((key, i), f"requires[{i}]: unknown variable {name!r}")
    ids: set[str] = set()
    for i, step in enumerate(runbook.steps):
        if step.id in ids:
            add(("steps", i, "id"), f"steps[{i}].id: duplicate step id {step.id!r}")
        ids.add(step.id)
        for j, name in enumerate(step.requires):
            if name not in known:
                add(("steps", i, "requires", j), f"steps[{i}].requires: unknown variable {name!r}")
        durations: list[tuple[Path_, str]] = [
            (("steps", i, "timeout"), step.timeout),
            (("steps", i, "settle"), step.settle),
        ]
        if step.wait is not None:
            durations.append((("steps", i, "wait"), step.wait))
        for j, check in enumerate(step.checks):
            if check.memory_below is not None:
                durations.append(
                    (("steps", i, "checks", j, "memory_below", "for"), check.memory_below.for_)
                )
            if check.http_status is not None:
                durations.append(
                    (
                        ("steps", i, "checks", j, "http_status", "interval"),
                        check.http_status.interval,
                    )
                )
        for path, value in durations:
            if VARIABLE_REF.search(value):
                continue
            try:
                parse_duration(value)
            except DurationError as exc:
                add(path, f"{_dotted(path)}: {exc}")
    return errors


def validate_yaml(
    text: str,
    file: str,
    model: type[M],
    semantic: Callable[[str, Any, M], list[LoadError]],
    error: Callable[[list[LoadError]], Exception],
    shape: str,
) -> M:
    """Parse YAML text into `model`, every problem mapped to its line and column.

    Shared by runbooks and watch policies: YAML errors, a top level that is not a mapping
    (`shape` says what it should hold), pydantic errors, then `semantic` checks.

    Raises:
        The exception `error` builds from the list of problems.
    """
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(io.StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise error([LoadError(file, line, col, f"YAML: {problem}")]) from None
    except YAMLError as exc:
        # e.g. ReaderError on a control character: its text runs over two lines.
        first = (str(exc).strip().splitlines() or ["invalid YAML"])[0]
        raise error([LoadError(file, 1, 1, f"YAML: {first}")]) from None
    if not isinstance(tree, CommentedMap):
        raise error([LoadError(file, 1, 1, shape)])
    try:
        value = model.model_validate(tree)
    except ValidationError as exc:
        raise error(_pydantic_errors(file, tree, exc)) from None
    errors = semantic(file, tree, value)
    if errors:
        raise error(errors)
    return value


def parse_runbook(text: str, file: str = "<runbook>") -> Runbook:
    """Parse and validate runbook text.

    Raises:
        RunbookError: with every problem found, each with its line and column.
    """
    return validate_yaml(
        text,
        file,
        Runbook,
        _semantic_errors,
        RunbookError,
        "a runbook is a mapping (name, title, steps)",
    )


def builtin_dir() -> Path:
    """The folder of the runbooks shipped with the package."""
    return Path(str(resources.files("incident_console.runbook") / "builtin"))


def list_builtin() -> list[Path]:
    """The built-in runbook files, by name."""
    return sorted(builtin_dir().glob("*.yaml"))


def resolve(name_or_file: str) -> Path:
    """A runbook file from a built-in name (`oom-after-deploy`) or a path.

    Raises:
        RunbookError: neither a file nor a built-in runbook.
    """
    path = Path(name_or_file)
    if path.is_file():
        return path
    builtin = builtin_dir() / f"{name_or_file}.yaml"
    if builtin.is_file():
        return builtin
    names = ", ".join(p.stem for p in list_builtin()) or "none"
    raise RunbookError(
        [LoadError(name_or_file, 0, 0, f"no such runbook file or built-in (built-ins: {names})")]
    )


def load_runbook(name_or_file: str | Path) -> Runbook:
    """Load a runbook by built-in name or path.

    Raises:
        RunbookError: unreadable or invalid, every error with its line.
    """
    path = resolve(str(name_or_file))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunbookError([LoadError(str(path), 0, 0, f"cannot read: {exc}")]) from None
    return parse_runbook(text, str(path))

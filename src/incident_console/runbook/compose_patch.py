"""Round-trip edits of a compose file that keep its comments, order and quoting.

Only the keys asked for change: environment variables (list or mapping form), the memory limit
(`mem_limit` and/or `deploy.resources.limits.memory`), the reservation, and options of the
service's `command:` (`--workers 2`). The caller shows :func:`unified_diff` before writing.
"""

from __future__ import annotations

import difflib
import io
import re
import shlex
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import ScalarString

from incident_console.runbook.units import parse_size

MemoryKey = Literal["auto", "mem_limit", "deploy"]


class ComposeError(ValueError):
    """The compose file cannot take the edit; the message names the file and the service."""


def _yaml(text: str) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long command lines
    # Follow the file's own list style: `- x` under its key, or indented by two.
    offset = 0
    lines = text.splitlines()
    for i, line in enumerate(lines):
        stripped = line.lstrip(" ")
        if stripped.startswith("- ") and i > 0:
            prev = lines[i - 1]
            prev_indent = len(prev) - len(prev.lstrip(" "))
            if prev.rstrip().endswith(":"):
                offset = max(0, len(line) - len(stripped) - prev_indent)
                break
    if offset >= 2:
        yaml.indent(mapping=2, sequence=offset + 2, offset=offset)
    else:
        yaml.indent(mapping=2, sequence=2, offset=0)
    return yaml


class ComposeFile:
    """A compose file held as a ruamel round-trip tree."""

    def __init__(self, text: str, path: str = "docker-compose.yml") -> None:
        self.path = path
        self.original = text
        self._yaml = _yaml(text)
        try:
            self.tree: Any = self._yaml.load(io.StringIO(text))
        except YAMLError as exc:
            raise ComposeError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(self.tree, CommentedMap) or not isinstance(
            self.tree.get("services"), CommentedMap
        ):
            raise ComposeError(f"{path}: no services: mapping (is it a compose file?)")

    # Reading ---------------------------------------------------------------------------

    @property
    def version(self) -> str:
        return str(self.tree.get("version", ""))

    def service(self, name: str) -> CommentedMap:
        services = self.tree["services"]
        if name not in services:
            known = ", ".join(services) or "none"
            raise ComposeError(f"{self.path}: no service {name!r} (services: {known})")
        svc = services[name]
        if svc is None:
            svc = services[name] = CommentedMap()
        return svc  # type: ignore[no-any-return]

    def _deploy_resources(self, name: str, create: bool) -> CommentedMap | None:
        node: Any = self.service(name)
        for key in ("deploy", "resources"):
            if not isinstance(node.get(key), CommentedMap):
                if not create:
                    return None
                node[key] = CommentedMap()
            node = node[key]
        return node  # type: ignore[no-any-return]

    def memory_limit(self, name: str) -> str | None:
        """The limit the file asks for: deploy.resources.limits.memory, else mem_limit."""
        resources = self._deploy_resources(name, create=False)
        if resources is not None and isinstance(resources.get("limits"), CommentedMap):
            value = resources["limits"].get("memory")
            if value is not None:
                return str(value)
        value = self.service(name).get("mem_limit")
        return None if value is None else str(value)

    def limit_under_deploy(self, name: str) -> bool:
        """True when the limit is only under `deploy:` (compose v1 needs --compatibility)."""
        svc = self.service(name)
        return svc.get("mem_limit") is None and self.memory_limit(name) is not None

    def environment(self, name: str) -> dict[str, str]:
        env = self.service(name).get("environment")
        if isinstance(env, CommentedMap):
            return {str(k): "" if v is None else str(v) for k, v in env.items()}
        out: dict[str, str] = {}
        if isinstance(env, CommentedSeq):
            for item in env:
                key, _, value = str(item).partition("=")
                out[key] = value
        return out

    # Editing ---------------------------------------------------------------------------

    def set_environment(self, name: str, values: Mapping[str, str]) -> None:
        """Set environment variables, keeping the list or mapping form the file uses."""
        svc = self.service(name)
        env = svc.get("environment")
        if env is None:
            env = svc["environment"] = CommentedMap()
        if isinstance(env, CommentedMap):
            sample = next(iter(env.values()), None)
            for key, value in values.items():
                env[key] = _like(env.get(key, sample), value)
            return
        if not isinstance(env, CommentedSeq):
            raise ComposeError(f"{self.path}: services.{name}.environment is neither list nor map")
        for key, value in values.items():
            for i, item in enumerate(env):
                if str(item).partition("=")[0] == key:
                    env[i] = _like(item, f"{key}={value}")
                    break
            else:
                env.append(_like(env[-1] if env else None, f"{key}={value}"))

    def _where(self, name: str, key: MemoryKey) -> tuple[bool, bool]:
        """(write mem_limit, write deploy) for `key`."""
        if key == "mem_limit":
            return True, False
        if key == "deploy":
            return False, True
        svc = self.service(name)
        has_plain = svc.get("mem_limit") is not None or svc.get("mem_reservation") is not None
        resources = self._deploy_resources(name, create=False)
        has_deploy = resources is not None and bool(
            resources.get("limits") or resources.get("reservations")
        )
        if has_plain or has_deploy:
            return has_plain, has_deploy
        # File format 2.x has no deploy:, 3.x has no mem_limit; the compose spec takes both.
        if self.version.startswith("2"):
            return True, False
        return False, True

    def set_memory_limit(self, name: str, value: str, key: MemoryKey = "auto") -> None:
        """Set the hard memory limit where the file keeps it (or where `key` says)."""
        plain, deploy = self._where(name, key)
        if plain:
            svc = self.service(name)
            old = svc.get("mem_limit")
            swap = svc.get("memswap_limit")
            svc["mem_limit"] = _like(old, value)
            # docker refuses memswap_limit below mem_limit; equal to it means "no swap": keep so.
            if swap is not None and (str(swap) == str(old) or 0 <= _size(swap) < _size(value)):
                svc["memswap_limit"] = _like(swap, value)
        if deploy:
            resources = self._deploy_resources(name, create=True)
            assert resources is not None
            limits = resources.setdefault("limits", CommentedMap())
            limits["memory"] = value

    def set_memory_reservation(self, name: str, value: str, key: MemoryKey = "auto") -> None:
        """Set the memory reservation next to the limit."""
        plain, deploy = self._where(name, key)
        if plain:
            self.service(name)["mem_reservation"] = value
        if deploy:
            resources = self._deploy_resources(name, create=True)
            assert resources is not None
            reservations = resources.setdefault("reservations", CommentedMap())
            reservations["memory"] = value

    def set_command_args(self, name: str, args: Mapping[str, str]) -> None:
        """Set options of the service's `command:` (`--workers 2`), appending absent ones."""
        svc = self.service(name)
        command = svc.get("command")
        if command is None:
            raise ComposeError(
                f"{self.path}: service {name!r} has no command: to set "
                f"{', '.join(args)} in; set them through its environment instead"
            )
        if isinstance(command, str):
            items = shlex.split(command)
            for option, value in args.items():
                _set_option(items, option, value, lambda v: v)
            svc["command"] = _like(command, shlex.join(items))
            return
        if not isinstance(command, CommentedSeq):
            raise ComposeError(f"{self.path}: services.{name}.command is neither text nor list")
        for option, value in args.items():
            # Keep each item's quoting style: only the values change, in place.
            _set_option(command, option, value, lambda v: _like(command[-1], v))

    def dump(self) -> str:
        out = io.StringIO()
        self._yaml.dump(self.tree, out)
        return out.getvalue()


def _size(value: Any) -> int:
    try:
        return parse_size(str(value))
    except ValueError:
        return -1  # "-1" (unlimited swap) and the like: leave them alone


def _like(sample: Any, value: str) -> Any:
    """`value` in the same quoting style as `sample` (a ruamel scalar string), else plain."""
    if isinstance(sample, ScalarString):
        return type(sample)(value)
    return value


def _set_option(items: Any, option: str, value: str, make: Callable[[str], Any]) -> None:
    for i, item in enumerate(items):
        if str(item) == option and i + 1 < len(items):
            items[i + 1] = _like(items[i + 1], value)
            return
        if str(item).startswith(option + "="):
            items[i] = _like(item, f"{option}={value}")
            return
    items.extend([make(option), make(value)])


def unified_diff(old: str, new: str, path: str) -> str:
    """The change as `diff -u` shows it (empty when nothing changed)."""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"{path} (now)",
            tofile=f"{path} (proposed)",
        )
    )


def backup_path(path: str, now: float | None = None, seq: int = 0) -> str:
    """`docker-compose.yml.incident-console-20261130T150102Z.bak`, next to the file.

    `seq` > 0 gives `...Z-2.bak` and so on: two changes within one second (two compose_set
    steps, a step run again) must not share a backup, or the second overwrites the original.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    suffix = f"-{seq + 1}" if seq else ""
    return f"{path}.incident-console-{stamp}{suffix}.bak"


_BAK = re.compile(r"\.incident-console-\d{8}T\d{6}Z(?:-\d+)?\.bak$")


def is_backup(path: str) -> bool:
    """True for a path :func:`backup_path` made."""
    return bool(_BAK.search(path))

"""Which of a project's compose files to patch, and every file compose must be given again.

A production stack is often started from a base file and an override (`-f docker-compose.yml
-f docker-compose.prod.yml`). Compose records them all, in order, in the containers' label
`com.docker.compose.project.config_files` (relative to `.project.working_dir` when they are
relative), and v2 the env file in `.project.environment_file`. Two rules follow:

- a change goes to the file that holds the service's settings: the last file that sets its
  memory (later files win in compose's merge), else the last file that names the service;
- a recreate passes every file, in that order, and the env file: with the first file alone
  compose would build the service WITHOUT the override, i.e. without the limit just written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from incident_console.runbook.compose_patch import ComposeError, ComposeFile

__all__ = ["MEMORY_KEYS", "label_files", "settings_file", "split_files"]

#: Service keys that hold memory settings (compose v1/v2 and the compose spec).
MEMORY_KEYS = ("mem_limit", "mem_reservation", "memswap_limit")


def _absolute(name: str, working_dir: str) -> str:
    return os.path.join(working_dir, name) if working_dir and not os.path.isabs(name) else name


def label_files(config_files: Sequence[str], working_dir: str) -> list[str]:
    """The compose files of the labels, absolute, in compose's order, each once."""
    out: list[str] = []
    for name in config_files:
        path = _absolute(name.strip(), working_dir)
        if path and path not in out:
            out.append(path)
    return out


def split_files(value: str) -> list[str]:
    """The `compose_files` variable ('a.yml,b.yml') as a list (empty parts dropped)."""
    return [p for p in (part.strip() for part in value.split(",")) if p]


def _sets_memory(compose: ComposeFile, service: str) -> bool:
    svc = compose.tree["services"].get(service)
    if not isinstance(svc, Mapping):
        return False
    if any(svc.get(key) is not None for key in MEMORY_KEYS):
        return True
    deploy = svc.get("deploy")
    resources = deploy.get("resources") if isinstance(deploy, Mapping) else None
    return isinstance(resources, Mapping) and bool(
        resources.get("limits") or resources.get("reservations")
    )


def settings_file(texts: Mapping[str, str | None], service: str) -> tuple[str, str]:
    """The file of `texts` (path -> text, compose's order; None: unreadable) to patch.

    Returns:
        (path, why): the last file that sets the service's memory, else the last one that
        names the service, else the last file; '' when `texts` is empty.
    """
    paths = list(texts)
    if not paths:
        return "", "no compose files in the labels"
    if len(paths) == 1:
        return paths[0], "label com.docker.compose.project.config_files"
    sets_memory: list[str] = []
    names: list[str] = []
    unread: list[str] = []
    for path, text in texts.items():
        if text is None:
            unread.append(os.path.basename(path))
            continue
        try:
            compose = ComposeFile(text, path)
        except ComposeError:
            unread.append(os.path.basename(path))
            continue
        if service in compose.tree["services"]:
            names.append(path)
            if _sets_memory(compose, service):
                sets_memory.append(path)
    count = f"of the project's {len(paths)} compose files"
    tail = f" ({', '.join(unread)} could not be read)" if unread else ""
    if sets_memory:
        return sets_memory[-1], f"the last {count} that sets {service}'s memory{tail}"
    if names:
        return names[-1], (
            f"no file sets {service}'s memory: the last {count} that names {service} "
            f"(later files override earlier ones){tail}"
        )
    return paths[-1], f"no file names {service}: the last {count}{tail}"

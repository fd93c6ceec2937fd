"""`lab up --host-memory SIZE`: one cgroup parent for every lab container, standing for a server.

The seed's server had no container limits: its RAM was the only bound, and when the stack
outgrew it the kernel killed whatever scored highest. On this machine's engine the lab gets
that bound without a VM: every container is started under the cgroup parent `/<name>`
(compose's `cgroup_parent`), and the lab writes the parent's memory limit before compose
starts anything (cgroup v1 memory.limit_in_bytes and memsw, or v2 memory.max with no swap).
The kernel then OOM-kills at the parent's limit, an ancestor of every container's own cgroup.

The parent is absolute (`/name`): runc joins a relative one onto dockerd's own cgroup, which
on a host where dockerd is not in the root cgroup is somewhere else entirely. `remove` takes
the parent out of every hierarchy runc made it in, once the containers are gone.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from incident_console.domain.memory import parse_limit
from incident_console.lab.model import LabError

CGROUP_ROOT = Path("/sys/fs/cgroup")


def parent_name(project: str) -> str:
    """The cgroup parent of a lab project: `incident-console-lab-<project>`."""
    return f"incident-console-lab-{project}"


@dataclass(frozen=True, slots=True)
class ParentUsage:
    """The parent cgroup as read now (None where a file did not read).

    Attributes:
        limit_bytes: its memory limit (None: no limit).
        used_bytes: its memory usage (every container's, the page cache included).
        oom_kills: kills of tasks in it and below it (v1 counts each cgroup's own in
            memory.oom_control, so its children's are added; v2 memory.events is hierarchical).
    """

    limit_bytes: int | None
    used_bytes: int | None
    oom_kills: int | None


class HostMemoryCgroup:
    """The memory cgroup `/<name>` on this machine, cgroup v1 or v2.

    Args:
        name: the parent's name (no slashes), see :func:`parent_name`.
        root: where the cgroup filesystems are mounted.
    """

    def __init__(self, name: str, root: Path = CGROUP_ROOT) -> None:
        if not name or "/" in name or name.startswith("."):
            raise LabError(f"bad cgroup parent name {name!r}")
        self.name = name
        self.root = root
        self.v1 = (root / "memory" / "memory.limit_in_bytes").exists()

    @property
    def cgroup_parent(self) -> str:
        """What compose's `cgroup_parent` says (absolute: see the module docstring)."""
        return f"/{self.name}"

    @property
    def directory(self) -> Path:
        """The parent's memory cgroup folder."""
        return self.root / "memory" / self.name if self.v1 else self.root / self.name

    @property
    def limit_file(self) -> Path:
        """The file that holds its limit (memory.limit_in_bytes, or memory.max on v2)."""
        return self.directory / ("memory.limit_in_bytes" if self.v1 else "memory.max")

    def create(self, limit_bytes: int) -> None:
        """Make the parent (if needed) and write its limit; no swap beyond it.

        Raises:
            LabError: the cgroup filesystem refused (not root, no memory controller).
        """
        if limit_bytes <= 0:
            raise LabError("the host memory must be a positive size")
        try:
            self.directory.mkdir(exist_ok=True)
            if self.v1:
                # memsw may not go below the limit: raise it first when growing, after when not.
                memsw = self.directory / "memory.memsw.limit_in_bytes"
                old = self.usage().limit_bytes  # None: no limit yet, so this lowers it
                if memsw.exists() and old is not None and limit_bytes > old:
                    memsw.write_text(str(limit_bytes))
                self.limit_file.write_text(str(limit_bytes))
                if memsw.exists():
                    memsw.write_text(str(limit_bytes))
            else:
                with contextlib.suppress(OSError):  # the controllers for the containers below
                    (self.directory / "cgroup.subtree_control").write_text("+memory")
                self.limit_file.write_text(str(limit_bytes))
                swap = self.directory / "memory.swap.max"
                if swap.exists():
                    swap.write_text("0")
        except OSError as exc:
            raise LabError(
                f"cannot set the lab's host memory in {self.directory}: "
                f"{exc.strerror or exc} (--host-memory needs root and a memory cgroup)"
            ) from None

    def exists(self) -> bool:
        """Whether the parent is there (in the memory hierarchy)."""
        return self.directory.is_dir()

    def _read(self, name: str) -> str | None:
        try:
            return (self.directory / name).read_text()
        except OSError:
            return None

    def _kills(self, folder: Path) -> int | None:
        try:
            events = (folder / ("memory.oom_control" if self.v1 else "memory.events")).read_text()
        except OSError:
            return None
        return next(
            (int(v) for k, _, v in (ln.partition(" ") for ln in events.splitlines())
             if k == "oom_kill" and v.strip().isdigit()),
            None,
        )  # fmt: skip

    def usage(self) -> ParentUsage:
        """The parent's limit, usage and kill count now."""
        limit_text = self._read(self.limit_file.name)
        used_text = self._read("memory.usage_in_bytes" if self.v1 else "memory.current")
        kills = self._kills(self.directory)
        if self.v1 and kills is not None:
            with contextlib.suppress(OSError):
                for child in self.directory.iterdir():
                    if child.is_dir():
                        kills += self._kills(child) or 0
        used = used_text.strip() if used_text else ""
        return ParentUsage(
            limit_bytes=parse_limit(limit_text) if limit_text is not None else None,
            used_bytes=int(used) if used.isdigit() else None,
            oom_kills=kills,
        )

    def _everywhere(self) -> list[Path]:
        """The parent in every hierarchy runc made it in (v1: one per controller)."""
        if not self.v1:
            return [self.directory]
        found = []
        with contextlib.suppress(OSError):
            for hierarchy in sorted(self.root.iterdir()):
                candidate = hierarchy / self.name
                if candidate.is_dir():
                    found.append(candidate)
        return found

    def remove(self, timeout_s: float = 15.0) -> list[str]:
        """Remove the parent everywhere, its empty children first; nothing there is no error.

        Returns:
            What could not be removed (one line each; empty when all went).
        """
        deadline = time.monotonic() + timeout_s
        left: list[str] = []
        for folder in self._everywhere():
            while True:
                try:
                    # Children docker left behind (empty cgroups) go first, deepest first.
                    for child in sorted(
                        (p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)
                    ):
                        child.rmdir()
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    # EBUSY while the last container's processes are still exiting.
                    if time.monotonic() >= deadline:
                        left.append(f"{folder}: {exc.strerror or exc}")
                        break
                    time.sleep(0.5)
        return left

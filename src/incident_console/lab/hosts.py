"""Where a lab runs: this machine's docker engine, or a lab server reached over SSH.

`Lab` runs every docker/compose command, writes its files and reads the kernel log through a
:class:`LabHost`, so the same stack and the same code serve `lab up` here and `lab server up`
in a VM. Commands are argv lists; the SSH one becomes shell text only in transport's
`command_line` (see lab/remote.py).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from incident_console.lab.image import ensure_image
from incident_console.lab.model import LabError
from incident_console.lab.oom import read_kernel_log


@dataclass(frozen=True, slots=True)
class RunResult:
    """A finished command: exit status, stdout and stderr (stderr is '' when merged)."""

    returncode: int
    stdout: str
    stderr: str


class LabHost(Protocol):
    """What a lab needs from the machine its stack runs on."""

    #: For messages: 'this machine', 'lab server 127.0.0.1:2222'.
    where: str
    #: The address the stack's ports are published on, on the host.
    publish_address: str
    #: Healthcheck interval, timeout and start period (s): each check starts a python3.
    healthcheck_s: tuple[int, int, int]

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 60.0,
        cwd: Path | None = None,
        merge_stderr: bool = False,
    ) -> RunResult:
        """Run `argv` to completion (FileNotFoundError when the program is missing here).

        Raises:
            subprocess.TimeoutExpired: it ran longer than `timeout`.
        """

    def stack_dir(self, local: Path) -> str:
        """Where the stack's files live on the host, for the files staged in `local`."""

    def push_tree(self, local: Path, remote: str) -> None:
        """Make `remote` hold the files of `local` (nothing to do when they are one place)."""

    def remove_tree(self, remote: str) -> None:
        """Remove the stack's folder on the host."""

    def read_text(self, path: str) -> str:
        """A text file of the host (OSError when it cannot be read)."""

    def kernel_log(self) -> list[str]:
        """The kernel ring buffer's lines (KernelLogUnavailable when it cannot be read)."""

    def ensure_image(self) -> bool:
        """Make the lab image on the host's engine unless it is there; True when made now."""


class LocalLabHost:
    """This machine: subprocess argv lists, the local docker engine, files in place."""

    where = "this machine"
    publish_address = "127.0.0.1"
    healthcheck_s = (5, 4, 5)

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 60.0,
        cwd: Path | None = None,
        merge_stderr: bool = False,
    ) -> RunResult:
        """See :meth:`LabHost.run`."""
        done = subprocess.run(
            list(argv),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            text=True,
            timeout=timeout,
            check=False,
        )
        return RunResult(done.returncode, done.stdout, done.stderr or "")

    def stack_dir(self, local: Path) -> str:
        """The staged files are the stack's files."""
        return str(local)

    def push_tree(self, local: Path, remote: str) -> None:
        """Nothing to copy: compose reads the files where they were written."""

    def remove_tree(self, remote: str) -> None:
        """Remove the folder."""
        shutil.rmtree(remote, ignore_errors=True)

    def read_text(self, path: str) -> str:
        """Read the file."""
        return Path(path).read_text()

    def kernel_log(self) -> list[str]:
        """`dmesg` here."""
        return read_kernel_log()

    def ensure_image(self) -> bool:
        """The lab image from this machine's /usr (see lab/image.py)."""
        try:
            return ensure_image()
        except Exception as exc:  # ImageError, or docker missing
            raise LabError(str(exc)) from None

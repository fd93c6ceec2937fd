"""Where each container's cgroup files are: read from its init pid, not guessed.

`/proc/<pid>/cgroup` of the container's main process (inspect's State.Pid) names its folder
whatever the driver or a compose `cgroup_parent` made of it (domain.sampler's
cgroup_dirs_from_proc). Read once per container start; the stats source guesses from the
driver only where the file does not read.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from incident_console.domain.sampler import cgroup_dirs_from_proc
from incident_console.transport.base import Host, TransportError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from incident_console.sources.inventory import ContainerRef

#: /proc/<pid>/cgroup reads in flight at once (over SSH each is a round trip).
CGROUP_READS = 8
#: The states whose containers have a live init pid.
LIVE = ("running", "restarting", "")


class CgroupFolders:
    """(container id, init pid) -> (memory folder, cpu folder), found from the pid."""

    def __init__(self) -> None:
        self.found: dict[tuple[str, int], tuple[str, str]] = {}
        self._unreadable: set[tuple[str, int]] = set()

    async def find(self, host: Host, refs: Mapping[str, ContainerRef], version: str) -> None:
        """Read the folders of the containers not seen at this pid yet; forget the gone.

        Steady state reads nothing. Where the file cannot be read (the pid ended, a hidepid
        /proc) or does not name the container, nothing is recorded and the caller guesses.
        """
        wanted = [
            (cid, ref.pid)
            for cid, ref in refs.items()
            if not ref.gone
            and ref.pid > 0
            and ref.state in LIVE
            and (cid, ref.pid) not in self.found
            and (cid, ref.pid) not in self._unreadable
        ]
        if wanted:
            gate = asyncio.Semaphore(CGROUP_READS)

            async def read(cid: str, pid: int) -> None:
                async with gate:
                    try:
                        text = await host.read_text(f"/proc/{pid}/cgroup")
                    except (TransportError, OSError):
                        text = ""
                dirs = cgroup_dirs_from_proc(text, version, cid)
                if dirs is None:
                    self._unreadable.add((cid, pid))
                else:
                    self.found[(cid, pid)] = dirs

            await asyncio.gather(*(read(cid, pid) for cid, pid in wanted))
        # A long watch sees thousands of containers come and go: keep only the known.
        known = set(refs)
        for key in [k for k in self.found if k[0] not in known]:
            del self.found[key]
        self._unreadable = {k for k in self._unreadable if k[0] in known}

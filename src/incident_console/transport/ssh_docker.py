"""The remote docker socket forwarded over the host's SSH connection to a private local socket.

No process starts on the server (unlike DOCKER_HOST=ssh://, which runs `docker system
dial-stdio` per connection). The docker SDK is blocking and the forwarded socket is served by
the event loop, so the client is built and used only in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from typing import TYPE_CHECKING

from incident_console.transport.base import DockerUnavailable, command_line
from incident_console.transport.lazy import lazy_import

if TYPE_CHECKING:
    import asyncssh
else:
    asyncssh = lazy_import("asyncssh")

if TYPE_CHECKING:
    import docker

REMOTE_DOCKER_SOCKET = "/var/run/docker.sock"


class DockerForward:
    """A local unix socket (in a 0700 temp dir) forwarded to the server's docker socket."""

    def __init__(self, remote: str = REMOTE_DOCKER_SOCKET) -> None:
        self.remote = remote
        self._dir = tempfile.mkdtemp(prefix="incident-console-docker-")
        self.local = os.path.join(self._dir, "docker.sock")
        self._listener: asyncssh.SSHListener | None = None

    async def attach(self, conn: asyncssh.SSHClientConnection) -> None:
        """(Re)establish the forward on `conn`, on the same local path."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.local)
        self._listener = await conn.forward_local_path(self.local, self.remote)

    def close(self) -> None:
        """Stop forwarding and remove the private dir."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        shutil.rmtree(self._dir, ignore_errors=True)


def build_client(local_socket: str, where: str) -> docker.DockerClient:
    """Build and ping a client on the forwarded socket. Call in a worker thread only."""
    import docker as docker_sdk

    try:
        client = docker_sdk.DockerClient(base_url=f"unix://{local_socket}", timeout=60)
        client.ping()
    except docker_sdk.errors.DockerException as exc:
        raise DockerUnavailable(f"docker on {where}: {exc}") from None
    except OSError as exc:
        raise DockerUnavailable(f"docker on {where}: {exc}") from None
    return client


async def remote_socket_problem(conn: asyncssh.SSHClientConnection, remote: str) -> str | None:
    """Why the remote docker socket cannot be used, or None if it looks usable.

    Asked only after the ping failed: the forward cannot tell 'missing' from 'denied'.
    """
    with contextlib.suppress(asyncssh.Error, OSError, TimeoutError):
        for argv, problem in (
            (["test", "-S", remote], f"no docker engine: {remote} does not exist on the server"),
            (
                ["test", "-w", remote],
                f"permission denied on {remote} (add the user to the docker group)",
            ),
        ):
            res = await asyncio.wait_for(conn.run(command_line(argv), check=False), 15)
            if res.exit_status != 0:
                return problem
    return None

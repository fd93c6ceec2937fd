"""Host key verification for SshHost: known_hosts lookup, trust on first use, changed keys.

asyncssh gets a known_hosts *callable* (`HostKeyPolicy.known_hosts`) that returns the keys
our files hold for the host; a key it offers that is not among them reaches
`HostKeyPolicy.validate`, which tells an unknown host (refused unless trust-on-first-use was
asked for) from a changed key (always refused). Verification is never switched off.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from incident_console.transport.base import HostKeyError
from incident_console.transport.lazy import lazy_import

if TYPE_CHECKING:
    import asyncssh
else:
    asyncssh = lazy_import("asyncssh")

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
GLOBAL_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"


def check_identity_files(paths: Sequence[str]) -> None:
    """Refuse a `-i` key file that is not there before connecting, naming it.

    asyncssh reports a missing one as a bare "No such file or directory", naming no file.

    Raises:
        ValueError: one line naming the file and what is wrong with it.
    """
    for path in paths:
        full = os.path.expanduser(path)
        if not os.path.lexists(full):
            raise ValueError(f"-i {full}: no such key file")
        if not os.path.exists(full):
            raise ValueError(f"-i {full}: a symbolic link to a file that is not there")
        if os.path.isdir(full):
            raise ValueError(f"-i {full}: a directory, not a key file")
        if not os.access(full, os.R_OK):
            raise ValueError(f"-i {full}: permission denied")


def host_pattern(host: str, port: int | None) -> str:
    """How OpenSSH names a host in known_hosts: 'host' on port 22, '[host]:port' otherwise."""
    return host if port in (None, 22) else f"[{host}]:{port}"


def hashed_host(pattern: str, salt: bytes | None = None) -> str:
    """An OpenSSH hashed known_hosts name: |1|base64(salt)|base64(HMAC-SHA1(salt, pattern))."""
    salt = os.urandom(20) if salt is None else salt
    digest = hmac.new(salt, pattern.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def fingerprint(key: asyncssh.SSHKey) -> str:
    """The 'SHA256:...' fingerprint ssh-keygen -l shows."""
    return str(key.get_fingerprint("sha256"))


@dataclass
class _Verdict:
    """What validate() decided, read after a failed handshake to raise the right error."""

    kind: str  # "unknown" | "changed" | "revoked"
    where: str
    offered: str
    known: tuple[str, ...] = ()


class HostKeyPolicy:
    """Checks server host keys against known_hosts files for one SshHost.

    Args:
        known_hosts: the file to check and record keys in (default ~/.ssh/known_hosts).
        accept_new: trust an unknown host's key on first use and record it.
        hash_names: record new hosts hashed, as Debian's OpenSSH does (HashKnownHosts yes).
    """

    def __init__(
        self, known_hosts: str | None = None, *, accept_new: bool = False, hash_names: bool = True
    ) -> None:
        self.path = os.path.expanduser(known_hosts or DEFAULT_KNOWN_HOSTS)
        # The system-wide file is trusted too, as OpenSSH does, unless a file was named.
        self._extra: Sequence[str] = () if known_hosts else (GLOBAL_KNOWN_HOSTS,)
        self.accept_new = accept_new
        self.hash_names = hash_names
        self.verdict: _Verdict | None = None
        self._pending: tuple[str, int | None, asyncssh.SSHKey] | None = None

    def _match(
        self, host: str, addr: str, port: int | None
    ) -> tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey], list[asyncssh.SSHKey]]:
        """(trusted keys, @cert-authority keys, @revoked keys) our files hold for the host."""
        keys: list[asyncssh.SSHKey] = []
        cas: list[asyncssh.SSHKey] = []
        revoked: list[asyncssh.SSHKey] = []
        for path in (self.path, *self._extra):
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    data = f.read()
            except (FileNotFoundError, PermissionError, IsADirectoryError):
                continue
            try:
                table = asyncssh.import_known_hosts(data)
            except (ValueError, asyncssh.KeyImportError) as exc:
                raise HostKeyError(f"{path}: unreadable known_hosts file: {exc}") from None
            found = table.match(host, addr, port)
            keys.extend(found[0])
            cas.extend(found[1])
            revoked.extend(found[2])
        return keys, cas, revoked

    def known_hosts(self, host: str, addr: str, port: int | None) -> tuple[Any, ...]:
        """The asyncssh known_hosts callable: (trusted keys, CA keys, revoked keys)."""
        self.verdict = None
        self._pending = None
        # Revoked keys go to asyncssh too: it refuses them before asking validate(), so
        # trust-on-first-use can never accept (and record) a key known_hosts marks @revoked.
        return self._match(host, addr, port)

    def validate(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        """Called by asyncssh for a key the known_hosts callable did not list."""
        port_or_none = None if port == 22 else port
        where = f"{host}:{port}"
        known, _, revoked = self._match(host, addr, port_or_none)
        if key in revoked:
            self.verdict = _Verdict("revoked", f"{host}:{port}", fingerprint(key))
            return False
        if known:
            self.verdict = _Verdict(
                "changed", where, fingerprint(key), tuple(map(fingerprint, known))
            )
            return False
        if not self.accept_new:
            self.verdict = _Verdict("unknown", where, fingerprint(key))
            return False
        # Recorded once the handshake proved the server holds the private key (record_pending).
        self._pending = (host, port_or_none, key)
        return True

    def record_pending(self) -> None:
        """Write a key accepted on first use into the known_hosts file."""
        if self._pending is None:
            return
        host, port, key = self._pending
        self._pending = None
        pattern = host_pattern(host, port)
        name = hashed_host(pattern) if self.hash_names else pattern
        public = key.export_public_key("openssh").decode().split()
        line = f"{name} {public[0]} {public[1]}\n"
        folder = os.path.dirname(self.path)
        if folder:
            os.makedirs(folder, mode=0o700, exist_ok=True)
        needs_newline = False
        try:
            with open(self.path, "rb") as f:
                f.seek(0, os.SEEK_END)
                if f.tell():
                    f.seek(-1, os.SEEK_END)
                    needs_newline = f.read(1) != b"\n"
        except FileNotFoundError:
            pass
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(("\n" if needs_newline else "") + line)

    def error(self) -> HostKeyError | None:
        """The HostKeyError for the last refused key, if a key was refused."""
        v = self.verdict
        if v is None:
            return None
        if v.kind == "revoked":
            return HostKeyError(
                f"REVOKED host key for {v.where} ({v.offered}): {self.path} marks it @revoked; "
                f"refusing to connect"
            )
        if v.kind == "changed":
            return HostKeyError(
                f"HOST KEY CHANGED for {v.where}: {self.path} holds {', '.join(v.known)} "
                f"but the server offers {v.offered}; refusing to connect (possible "
                f"man-in-the-middle). If the change is expected, remove the old key with "
                f"ssh-keygen -R and connect again."
            )
        return HostKeyError(
            f"unknown host key for {v.where} ({v.offered}), not in {self.path}; "
            f"verify it and pass --accept-new-host-key to trust it"
        )

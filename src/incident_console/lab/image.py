"""The lab's image, made offline: `docker import` of a minimal rootfs built here.

No registry is needed. The rootfs holds only empty mount points, a tiny /etc and the usr-merge
links; every lab service bind-mounts the host's /usr read-only, so Debian's python3 and
gunicorn run inside.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import time
from pathlib import Path

#: The tag of the lab image. Bump the number when the rootfs layout changes.
LAB_IMAGE = "incident-console-lab:1"

_DIRS = {
    "/tmp": 0o1777,
    "/etc": 0o755,
    "/proc": 0o555,
    "/sys": 0o555,
    "/dev": 0o755,
    "/run": 0o755,
    "/app": 0o755,
    "/usr": 0o755,
    "/root": 0o700,
    "/var": 0o755,
    "/var/tmp": 0o1777,
}
_FILES = {
    "/etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    "/etc/group": "root:x:0:\nnogroup:x:65534:\n",
    "/etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
}
_USR_MERGE = ("bin", "sbin", "lib", "lib64")


class ImageError(Exception):
    """The lab image could not be made; the message is one line."""


def rootfs_tar(root: Path = Path("/")) -> bytes:
    """The rootfs as an uncompressed tar, in memory (a few KiB).

    Args:
        root: the system whose /usr the containers will mount (its usr-merge links and loader
            cache are copied); a lab server's image passes its own rootfs.
    """
    buf = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, mode in sorted(_DIRS.items()):
            info = tarfile.TarInfo(path.lstrip("/"))
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, now
            tar.addfile(info)
        # Only the links the host has: they point into the /usr we mount.
        for name in _USR_MERGE:
            host_path = root / name
            if host_path.is_symlink() or host_path.is_dir():
                info = tarfile.TarInfo(name)
                info.type, info.linkname, info.mode, info.mtime = (
                    tarfile.SYMTYPE,
                    f"usr/{name}",
                    0o777,
                    now,
                )
                tar.addfile(info)
        files = dict(_FILES)
        # The loader cache spares ld.so a directory search at every python3 start.
        ld_cache = root / "etc/ld.so.cache"
        if ld_cache.is_file():
            files["/etc/ld.so.cache"] = ld_cache.read_bytes().decode("latin-1")
        for path, text in files.items():
            data = text.encode("latin-1")
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o644, now
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def image_exists(tag: str = LAB_IMAGE) -> bool:
    """Whether the local engine has `tag`."""
    done = subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False)
    return done.returncode == 0


def ensure_image(tag: str = LAB_IMAGE) -> bool:
    """Make the lab image unless the engine already has it.

    Returns:
        True when it was built now, False when it was reused.

    Raises:
        ImageError: `docker import` failed.
    """
    if image_exists(tag):
        return False
    done = subprocess.run(
        ["docker", "import", "--message", "incident-console lab rootfs", "-", tag],
        input=rootfs_tar(),
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip().splitlines()
        raise ImageError(
            f"docker import of the lab image failed: {err[-1] if err else done.returncode}"
        )
    return True

"""The lab server's disk image: Debian 13 from debootstrap, built once and cached.

The image is today's typical compose server (cgroup v2 with systemd, docker 26, compose v2,
journald, `kernel.dmesg_restrict=1`, a non-root `deploy` user in the docker group), made
offline from the Debian registry the machine's apt already uses. It lives in the user cache
dir under a name that holds the recipe's hash: a changed recipe builds a new image. A build
happens in a temp folder renamed into place at the end, so an interrupted build never leaves
a half image behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from incident_console.lab.image import LAB_IMAGE, rootfs_tar
from incident_console.lab.model import LabError

#: Overrides the Debian mirror read from the machine's apt configuration.
MIRROR_ENV = "INCIDENT_CONSOLE_LAB_MIRROR"
#: Overrides where built images are kept.
CACHE_ENV = "INCIDENT_CONSOLE_LAB_SERVER_CACHE"

SUITE = "trixie"
PACKAGES = (
    "systemd-sysv,dbus,udev,openssh-server,python3,gunicorn,docker.io,docker-cli,"
    "docker-compose,iproute2,ifupdown,isc-dhcp-client,procps,linux-image-cloud-amd64,"
    "initramfs-tools,kmod,ca-certificates"
)
DISK_SIZE = "4G"
#: Where the lab's container rootfs tar is kept inside the VM (`docker import`ed at `up`).
VM_LAB_TAR = "/var/lib/incident-console/lab-rootfs.tar"
DEPLOY_USER = "deploy"

_CONFIG_FILES = {
    "/etc/hostname": "labserver\n",
    "/etc/hosts": "127.0.0.1 localhost\n127.0.1.1 labserver\n",
    "/etc/fstab": "/dev/vda / ext4 rw,relatime 0 1\n",
    "/etc/network/interfaces": (
        "auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n"
    ),
    # Say it, though Debian's kernel defaults to it: this is the setting the console must meet.
    "/etc/sysctl.d/90-incident-console-lab.conf": "kernel.dmesg_restrict = 1\n",
    # TCG is slow: no DNS lookups of the client at every login.
    "/etc/ssh/sshd_config.d/incident-console-lab.conf": "UseDNS no\n",
}

#: Everything that decides the image's content; its hash names the cached image.
RECIPE: dict[str, object] = {
    "version": 1,
    "suite": SUITE,
    "variant": "minbase",
    "packages": PACKAGES,
    "disk_size": DISK_SIZE,
    "files": _CONFIG_FILES,
    "user": DEPLOY_USER,
    "lab_image": LAB_IMAGE,
    "lab_tar": VM_LAB_TAR,
}


def recipe_hash() -> str:
    """A short hash of :data:`RECIPE` (the cache key)."""
    text = json.dumps(RECIPE, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_root() -> Path:
    """Where images are kept: $INCIDENT_CONSOLE_LAB_SERVER_CACHE or <user cache>/lab-server."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    return platformdirs.user_cache_path("incident-console") / "lab-server"


@dataclass(frozen=True, slots=True)
class VmImage:
    """A built image folder.

    Attributes:
        directory: the folder (disk.img, vmlinuz, initrd.img, the lab key, the host key).
    """

    directory: Path

    @property
    def disk(self) -> Path:
        """The raw ext4 disk (the base of every run's overlay; never written by a run)."""
        return self.directory / "disk.img"

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"

    @property
    def key(self) -> Path:
        """The lab's private key (0600), authorized for `deploy` and `root` in the image."""
        return self.directory / "id_ed25519"

    @property
    def host_key(self) -> Path:
        """The VM's ed25519 host public key, read from the image when it was built."""
        return self.directory / "ssh_host_ed25519_key.pub"

    def known_hosts_line(self, port: int) -> str:
        """The known_hosts line for the VM on 127.0.0.1:`port` (no trust on first use)."""
        fields = self.host_key.read_text().split()
        return f"[127.0.0.1]:{port} {fields[0]} {fields[1]}\n"

    def complete(self) -> bool:
        """Whether every file a boot needs is there."""
        return all(p.is_file() for p in (self.disk, self.kernel, self.initrd, self.key))


def image_dir() -> Path:
    """The folder of the image for the current recipe (it may not exist yet)."""
    return cache_root() / f"debian-{SUITE}-{recipe_hash()}"


# -- the Debian mirror ---------------------------------------------------------------------


def _release_suite(suites: list[str]) -> bool:
    # 'bookworm' or 'trixie', not 'bookworm-security' or 'bookworm-updates'.
    return any(s and "-" not in s and "/" not in s for s in suites)


def mirror_from_apt(etc: Path = Path("/etc/apt")) -> str | None:
    """The first Debian archive URI in the machine's apt sources, or None.

    Reads deb822 `*.sources` files and the one-line `sources.list` format, and takes the
    first `deb` source whose suite is a release (not -security or -updates).
    """
    for path in sorted(glob.glob(str(etc / "sources.list.d" / "*.sources"))):
        with contextlib.suppress(OSError):
            for stanza in re.split(r"\n\s*\n", Path(path).read_text()):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line:
                        continue
                    name, _, value = line.partition(":")
                    fields[name.strip().lower()] = value.strip()
                enabled = fields.get("enabled", "yes").lower() != "no"
                if enabled and "deb" in fields.get("types", "").split():
                    uris = fields.get("uris", "").split()
                    if uris and _release_suite(fields.get("suites", "").split()):
                        return uris[0]
    lists = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list"))]
    for list_file in lists:
        with contextlib.suppress(OSError):
            for line in list_file.read_text().splitlines():
                words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb" and _release_suite([words[2]]):
                    return words[1]
    return None


def debian_mirror(override: str | None = None) -> str:
    """The mirror to debootstrap from: `override`, $INCIDENT_CONSOLE_LAB_MIRROR, or apt's.

    Raises:
        LabError: none of them names one.
    """
    mirror = override or os.environ.get(MIRROR_ENV) or mirror_from_apt()
    if not mirror:
        raise LabError(
            "no Debian mirror found in /etc/apt/sources.list(.d); "
            f"name one with --mirror or {MIRROR_ENV}"
        )
    return mirror


# -- building --------------------------------------------------------------------------------


def _run(argv: list[str], what: str, timeout: float = 1800.0) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise LabError(f"{argv[0]} is not installed (needed to {what})") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{argv[0]} did not finish within {timeout:g} s ({what})") from None
    if done.returncode != 0:
        lines = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise LabError(f"{what} failed: {lines[-1] if lines else done.returncode}")


@contextlib.contextmanager
def _build_lock(root: Path) -> Iterator[None]:
    # Two `up`s at once (two tests, two shells) build once: the second waits, then reuses.
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _mounts_under(folder: Path) -> list[str]:
    prefix = str(folder.resolve()) + "/"
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            # Field 5 is the mount point, with spaces and such octal-escaped.
            point = line.split()[4].encode().decode("unicode_escape")
            if point.startswith(prefix):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def remove_build(folder: Path) -> None:
    """Remove a build folder safely, even one an interrupted debootstrap left mounts in.

    debootstrap mounts /proc and /sys (and may bind /dev) inside the rootfs; a plain rmtree of
    an interrupted build would walk into them. They are unmounted first, and `rm` never
    crosses into another file system.

    Raises:
        LabError: a mount could not be undone (the folder is left for the user to look at).
    """
    if not folder.exists():
        return
    for point in _mounts_under(folder):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    left = _mounts_under(folder)
    if left:
        raise LabError(f"cannot remove {folder}: {left[0]} is still mounted")
    subprocess.run(["rm", "-rf", "--one-file-system", "--", str(folder)], check=False)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)


def _authorize(rootfs: Path, home: str, public_key: str, uid_gid: str | None) -> None:
    ssh_dir = rootfs / home.lstrip("/") / ".ssh"
    ssh_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(ssh_dir, 0o700)
    _write(ssh_dir / "authorized_keys", public_key, 0o600)
    if uid_gid:
        uid, gid = (int(n) for n in uid_gid.split(":"))
        for p in (ssh_dir, ssh_dir / "authorized_keys"):
            os.chown(p, uid, gid)


def _passwd_ids(rootfs: Path, user: str) -> str:
    for line in (rootfs / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return f"{fields[2]}:{fields[3]}"
    raise LabError(f"useradd made no {user!r} in the image's /etc/passwd")


def _configure(rootfs: Path, build: Path) -> None:
    for path, text in _CONFIG_FILES.items():
        _write(rootfs / path.lstrip("/"), text)
    _run(
        ["chroot", str(rootfs), "useradd", "-m", "-s", "/bin/bash", "-G", "docker", DEPLOY_USER],
        "create the deploy user",
    )
    public = (build / "id_ed25519.pub").read_text()
    _authorize(rootfs, f"/home/{DEPLOY_USER}", public, _passwd_ids(rootfs, DEPLOY_USER))
    # root's login is the lab's own (reading the kernel log for `lab load`, stopping the VM);
    # the console under test logs in as deploy.
    _authorize(rootfs, "/root", public, None)
    host_pub = rootfs / "etc/ssh/ssh_host_ed25519_key.pub"
    if not host_pub.is_file():
        raise LabError("openssh-server made no ed25519 host key in the image")
    shutil.copyfile(host_pub, build / "ssh_host_ed25519_key.pub")
    lab_tar = rootfs / VM_LAB_TAR.lstrip("/")
    lab_tar.parent.mkdir(parents=True, exist_ok=True)
    # Made from the image's own /etc/ld.so.cache and usr-merge links, not this machine's.
    lab_tar.write_bytes(rootfs_tar(rootfs))
    for pattern, name in (("vmlinuz-*", "vmlinuz"), ("initrd.img-*", "initrd.img")):
        found = sorted((rootfs / "boot").glob(pattern))
        if not found:
            raise LabError(f"the image has no /boot/{pattern}")
        shutil.copyfile(found[-1], build / name)


def build_image(
    mirror: str | None = None, progress: Callable[[str], None] | None = None
) -> tuple[VmImage, float | None]:
    """The image for the current recipe, built now unless it is cached.

    Needs root (debootstrap, chroot) and the packages debootstrap, e2fsprogs.

    Returns:
        The image, and the seconds the build took (None when it was reused).

    Raises:
        LabError: a build step failed (one line: which, and its last error line).
    """
    say = progress or (lambda _msg: None)
    final = VmImage(image_dir())
    if final.complete():
        return final, None
    with _build_lock(cache_root()):
        if final.complete():  # built by someone else while we waited
            return final, None
        if os.geteuid() != 0:
            raise LabError(
                "building the lab server image needs root (debootstrap, chroot): run "
                "`sudo incident-console lab server up` once; later runs reuse the image"
            )
        source = debian_mirror(mirror)
        t0 = time.monotonic()
        # We hold the lock: any other build folder is one an interrupted build left.
        for stale in cache_root().glob(".build-*"):
            remove_build(stale)
        build = cache_root() / f".build-{recipe_hash()}-{os.getpid()}"
        build.mkdir(parents=True)
        try:
            _run(
                [
                    "ssh-keygen",
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "incident-console-lab",
                    "-f",
                    str(build / "id_ed25519"),
                ],
                "make the lab key",
            )
            rootfs = build / "rootfs"
            say(f"debootstrap {SUITE} from {source} (about a minute) ...")
            _run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={PACKAGES}",
                    SUITE,
                    str(rootfs),
                    source,
                ],
                "debootstrap",
            )
            _configure(rootfs, build)
            say("making the disk image ...")
            _run(
                [
                    "mkfs.ext4",
                    "-q",
                    "-F",
                    "-d",
                    str(rootfs),
                    "-L",
                    "labroot",
                    str(build / "disk.img"),
                    DISK_SIZE,
                ],
                "mkfs.ext4",
            )
            remove_build(rootfs)
            # Runs read the base through their overlays only: keep it from being written.
            os.chmod(build / "disk.img", 0o444)
            (build / "recipe.json").write_text(json.dumps(RECIPE, indent=2, sort_keys=True))
            shutil.rmtree(final.directory, ignore_errors=True)  # an incomplete older one
            os.rename(build, final.directory)
        finally:
            remove_build(build)
        return final, time.monotonic() - t0


def purge_images() -> list[Path]:
    """Remove every cached image (all recipes). Returns the folders removed."""
    root = cache_root()
    removed = []
    with _build_lock(root):
        for entry in root.iterdir():
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed

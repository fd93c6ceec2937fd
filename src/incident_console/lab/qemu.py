"""The lab server's qemu process: its command line, whether it runs, how it ends."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from incident_console.lab.model import LabError
from incident_console.lab.vm import VmImage

_TROUBLE = re.compile(r"Kernel panic|Oops|BUG:|Out of memory")


def run_tool(argv: list[str], what: str, timeout: float = 120.0) -> None:
    """Run qemu-img or qemu (which daemonizes itself) to completion.

    Raises:
        LabError: not installed, or failed (its last error line).
    """
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise LabError(
            f"{argv[0]} is not installed (apt-get install qemu-system-x86 qemu-utils)"
        ) from None
    if done.returncode != 0:
        lines = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise LabError(f"{what} failed: {lines[-1] if lines else done.returncode}")


def qemu_argv(
    image: VmImage,
    mib: int,
    overlay: Path,
    console_log: Path,
    pidfile: Path,
    forwards: list[tuple[int, int]],
) -> list[str]:
    """qemu's command line: the image's kernel, the overlay disk, TCP forwards on 127.0.0.1.

    Args:
        image: the cached image (kernel, initrd).
        mib: the VM's memory in MiB.
        overlay: the run's qcow2 disk.
        console_log: where the serial console goes.
        pidfile: where qemu writes its pid once daemonized.
        forwards: (port on 127.0.0.1, port in the VM) pairs.
    """
    fwd = ",".join(f"hostfwd=tcp:127.0.0.1:{here}-:{there}" for here, there in forwards)
    return [
        "qemu-system-x86_64",
        "-name", "incident-console-lab-server",
        # KVM does not run a standard kernel on this machine kind (issue 14): software only.
        # One TCG thread: with one per vCPU (MTTCG) the kernel patching its own code (static
        # keys, e.g. at "crng init done") raced the other vCPU and oopsed on int3 (1 boot
        # in 5 here). Two vCPUs still, as the seed's server had.
        "-accel", "tcg,thread=single",
        "-smp", "2",
        "-m", f"{mib}M",
        "-nodefaults",
        "-display", "none",
        "-serial", f"file:{console_log}",
        "-kernel", str(image.kernel),
        "-initrd", str(image.initrd),
        "-append", "console=ttyS0 root=/dev/vda rw net.ifnames=0 panic=1",
        # A panic ends qemu (instead of a reboot loop), so `up` and `status` see it.
        "-no-reboot",
        "-drive", f"file={overlay},format=qcow2,if=virtio",
        "-netdev", f"user,id=n0,{fwd}",
        "-device", "virtio-net-pci,netdev=n0",
        "-daemonize",
        "-pidfile", str(pidfile),
    ]  # fmt: skip


def is_our_qemu(pid: int, overlay: Path) -> bool:
    """Whether `pid` is a live qemu running `overlay` (a recycled pid never matches)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(b"qemu-system" in a for a in cmdline[:1]) and any(
        str(overlay).encode() in a for a in cmdline
    )


def stop_qemu(pid: int, overlay: Path) -> None:
    """SIGTERM, then SIGKILL after 15 s; returns once it is gone."""
    if not is_our_qemu(pid, overlay):
        return
    # The disk is a throwaway overlay: nothing to flush, so no guest shutdown to wait for.
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and is_our_qemu(pid, overlay):
        time.sleep(0.2)
    if is_our_qemu(pid, overlay):
        os.kill(pid, signal.SIGKILL)
        while is_our_qemu(pid, overlay):
            time.sleep(0.1)


def last_console_line(console_log: Path) -> str:
    """The console line that says most: the last panic/Oops/OOM line, else the last line."""
    with contextlib.suppress(OSError):
        lines = [ln.strip() for ln in console_log.read_text(errors="replace").splitlines()]
        lines = [ln for ln in lines if ln]
        trouble = [ln for ln in lines if _TROUBLE.search(ln)]
        if trouble:
            return trouble[-1]
        return lines[-1] if lines else "(empty)"
    return "(no console log)"

"""The busy engine a new user's console meets, built the way it happens on a real server.

Two compose projects of the lab on the same engine, both with a `backend` service: the one the
user will load and fix, and a neighbour whose backend was OOM-killed before the console was
started. Everything is made with the product's own `incident-console lab` commands (their
output is kept with the captures), and removed at the end with `Lab.down`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from incident_console.lab.lab import Lab
from incident_console.lab.oom import KernelOomKill

#: The console and lab commands of the environment the tests run in.
CONSOLE = str(Path(sys.executable).parent / "incident-console")


def run_cli(args: list[str], log: Path, timeout: float) -> str:
    """Run `incident-console ARGS`, appending its output to `log`; returns the output.

    Raises:
        AssertionError: it exited non-zero (with its last lines).
    """
    done = subprocess.run(
        [CONSOLE, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    with log.open("a") as f:
        f.write(f"$ incident-console {' '.join(args)}\n{done.stdout}(exit {done.returncode})\n\n")
    if done.returncode != 0:
        raise AssertionError(f"incident-console {' '.join(args)}: {done.stdout[-800:]}")
    return done.stdout


@dataclass
class BusyEngine:
    """What was on the engine before the console started.

    Attributes:
        loaded: the lab the user loads and fixes.
        neighbour: another compose project with a `backend`, OOM-killed earlier.
        neighbour_kills: the kernel's kills in the neighbour's backend (before the console).
        backend_lines_before: lines the loaded backend had logged before the console started.
        log: where the lab commands' output went.
        loaded_backend_ids: every container id the loaded backend has had (a recreate adds one).
    """

    loaded: Lab
    neighbour: Lab
    neighbour_kills: list[KernelOomKill]
    backend_lines_before: list[str]
    log: Path
    loaded_backend_ids: list[str] = field(default_factory=list)

    def lab_args(self, lab: Lab) -> list[str]:
        """`--project P --dir D`: how the lab commands find `lab`."""
        return ["--project", lab.project, "--dir", str(lab.directory)]

    def loaded_kills(self) -> list[KernelOomKill]:
        """The kernel's kills in every container the loaded backend has had."""
        current = self.loaded.container_id("backend")
        if current and current not in self.loaded_backend_ids:
            self.loaded_backend_ids.append(current)
        from incident_console.lab.oom import oom_kills

        kills: list[KernelOomKill] = []
        for cid in self.loaded_backend_ids:
            kills += oom_kills(cid)
        return kills

    def down(self) -> None:
        """Remove both projects (containers, networks, volumes, files)."""
        for lab in (self.loaded, self.neighbour):
            try:
                lab.down()
            except Exception as exc:  # noqa: BLE001 - the other one is removed all the same
                with self.log.open("a") as f:
                    f.write(f"lab down {lab.project}: {exc}\n")


def build(root: Path, log: Path, neighbour_oom_timeout: float = 200.0) -> BusyEngine:
    """Bring both projects up, then OOM-kill the neighbour's backend; the caller calls down().

    Project names are short (the logs pane shows 20 characters of a container's name) and
    unique to this process, so two test runs on one engine never meet.
    """
    suffix = os.getpid() % 100000
    loaded = Lab(f"icsc{suffix}", root / "loaded")
    neighbour = Lab(f"icsn{suffix}", root / "neighbour")
    engine = BusyEngine(loaded, neighbour, [], [], log)
    try:
        # Both up at once: the engine is shared, but compose mostly waits for healthchecks.
        ups = [
            subprocess.Popen(
                [CONSOLE, "lab", "up", *engine.lab_args(lab), *extra],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for lab, extra in ((loaded, []), (neighbour, ["--extra", "2"]))
        ]
        for lab, proc in zip((loaded, neighbour), ups, strict=True):
            out, _ = proc.communicate(timeout=240)
            with log.open("a") as f:
                f.write(
                    f"$ incident-console lab up {lab.project}\n{out}(exit {proc.returncode})\n\n"
                )
            if proc.returncode != 0:
                raise AssertionError(f"lab up {lab.project} failed: {out[-800:]}")
        run_cli(
            [
                "lab",
                "load",
                *engine.lab_args(neighbour),
                "--until-oom",
                "--rate",
                "8",
                "--duration",
                str(neighbour_oom_timeout),
            ],
            log,
            timeout=neighbour_oom_timeout + 60,
        )
        engine.neighbour_kills = neighbour.oom_kills()
        if not engine.neighbour_kills:
            raise AssertionError("the neighbour's load ended without a kernel OOM kill")
        engine.loaded_backend_ids.append(loaded.backend_container_id())
        # What the backend said before anyone looked: gunicorn's boot lines, the healthchecks.
        time.sleep(1)
        engine.backend_lines_before = [ln for ln in loaded.logs("backend").splitlines() if ln]
        with log.open("a") as f:
            f.write(
                f"loaded backend logged {len(engine.backend_lines_before)} lines before the "
                f"console; neighbour kills: {[k.pid for k in engine.neighbour_kills]}\n"
            )
    except BaseException:
        engine.down()
        raise
    return engine

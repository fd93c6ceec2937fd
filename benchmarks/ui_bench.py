"""The console's own figures, measured on the real app (ui_probe.py) over the benchmark's sshd.

- time to the first frame and to the first row with data (process spawn -> screen)
- docker health event -> the row's Health cell; kernel OOM line -> the row's OOM count
- the highest log rate the log pane keeps up with while key presses are answered within 100 ms
- the console's CPU and RSS idle (54 containers sampled), and while following a container
  logging 1,000 lines/s
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from procstat import CpuMeter, rss_bytes

HERE = Path(__file__).resolve().parent
UI_PROBE = HERE / "ui_probe.py"
#: A rate is kept up with when the pane gets this share of the lines and keys answer in time.
KEEP_UP_SHARE = 0.95
KEY_LIMIT_MS = 100.0
#: ... and the newest line in the pane is at most this old (it shows the latest, not a backlog).
LAG_LIMIT_S = 1.0


class UiProbe:
    """ui_probe.py in a child process: commands on its stdin, JSON figures from its stdout."""

    def __init__(self, target: str, identity: Path, known_hosts: Path) -> None:
        argv = [sys.executable, str(UI_PROBE), target, "--t0", repr(time.time())]
        argv += ["--identity", str(identity), "--known-hosts", str(known_hosts)]
        env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.lines: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError), self._cond:
                self.lines.append(json.loads(line))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def wait(self, kind: str, timeout: float, after: int = 0) -> dict[str, Any]:
        """The first line of `kind` at index >= `after`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for rec in self.lines[after:]:
                    if rec.get("t") == kind:
                        return rec
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise RuntimeError(f"ui probe: no {kind} within {timeout:g} s")
                self._cond.wait(min(left, 1.0))

    def ask(self, command: str, kind: str, timeout: float) -> dict[str, Any]:
        mark = len(self.lines)
        self.send(command)
        return self.wait(kind, timeout, mark)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.send("quit")
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
            if self.proc.poll() is None:
                self.proc.kill()


def docker(*argv: str) -> str:
    return subprocess.run(
        ["docker", *argv], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


def start_health_container(project: str, image: str) -> str:
    """A container whose health follows a file: healthy while /tmp/ok exists."""
    return docker(
        "run", "-d", "--name", f"{project}-health",
        "--label", f"com.docker.compose.project={project}",
        "-v", "/usr:/usr:ro", "--memory", "32m",
        "--health-cmd", "/usr/bin/test -f /tmp/ok", "--health-interval", "1s",
        "--health-retries", "1", "--health-timeout", "2s",
        image, "/usr/bin/python3", "-c",
        "import time, pathlib; pathlib.Path('/tmp/ok').touch(); time.sleep(86400)",
    )  # fmt: skip


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cpu_rss_window(pid: int, seconds: float) -> tuple[float, list[float]]:
    """% of a core `pid` used over `seconds`, and its RSS in MB: first, last, max."""
    meter = CpuMeter(lambda: [pid])
    meter.poll()
    rss: list[int] = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        time.sleep(1)
        meter.poll()
        if (r := rss_bytes(pid)) is not None:
            rss.append(r)
    cpu = meter.total() / (time.monotonic() - t0) * 100
    if not rss:
        return cpu, []
    return cpu, [round(rss[0] / 2**20, 1), round(rss[-1] / 2**20, 1), round(max(rss) / 2**20, 1)]


def window(out: dict[str, Any], pid: int, seconds: float, window_key: str, prefix: str) -> None:
    """The console's CPU and RSS over `seconds` into `out` (`<prefix>_cpu_pct_core`, ...)."""
    cpu, rss = cpu_rss_window(pid, seconds)
    out[window_key] = round(seconds, 1)
    out[f"{prefix}_cpu_pct_core"] = cpu
    if rss:
        out[f"{prefix}_rss_mb_first_last_max"] = rss


def measure_ui(
    lab: Any,
    target: str,
    identity: Path,
    known_hosts: Path,
    start_logger: Any,
    *,
    quick: bool,
    soak_s: float,
    idle_s: float,
    oom_timeout: float,
    kills_wanted: int,
) -> dict[str, Any]:
    """Every UI figure; what was measured is kept if a later step fails (key `ui_error`)."""
    from incident_console.lab.image import LAB_IMAGE

    out: dict[str, Any] = {}
    health_id = start_health_container(lab.project, LAB_IMAGE)
    loggers: list[str] = []
    probe = UiProbe(target, identity, known_hosts)
    try:
        out["first_frame_s"] = probe.wait("first_frame", 60)["s"]
        out["first_row_data_s"] = probe.wait("first_row_data", 90)["s"]

        # Health: docker's health_status event time -> the row shows the new state.
        lat: list[float] = []
        probe.ask(f"health {health_id} healthy 30", "health", 40)
        for _ in range(2 if quick else 5):
            for wanted, argv in (
                ("unhealthy", ["exec", health_id, "/usr/bin/rm", "-f", "/tmp/ok"]),
                ("healthy", ["exec", health_id, "/usr/bin/touch", "/tmp/ok"]),
            ):
                mark = len(probe.lines)
                probe.send(f"health {health_id} {wanted} 20")
                docker(*argv)
                rec = probe.wait("health", 30, mark)
                if rec.get("screen_s") is not None:
                    lat.append(rec["screen_s"])
        out["health_to_screen_s"] = [round(x, 3) for x in sorted(lat)]
        if lat:
            out["health_to_screen_p95_s"] = sorted(lat)[min(len(lat) - 1, int(0.95 * len(lat)))]

        # Log pane: increasing rates until the pane falls behind or keys get slow.
        rates = [1000, 2000, 4000, 8000] if quick else [500, 1000, 2000, 3000, 4000, 6000, 8000]
        steps: list[dict[str, Any]] = []
        best = 0
        for rate in rates:
            cid = start_logger(lab, rate, f"logger{rate}")
            loggers.append(cid)
            probe.ask(f"follow {cid}", "following", 10)
            time.sleep(2)
            rec = probe.ask(f"logs {4 if quick else 10}", "logs", 60)
            docker("rm", "-f", cid)
            loggers.remove(cid)
            ok = (
                rec["lines_per_s"] >= KEEP_UP_SHARE * rate
                and rec["key_p95_ms"] <= KEY_LIMIT_MS
                and (rec.get("lag_p95_s") or 0.0) <= LAG_LIMIT_S
            )
            steps.append({"rate": rate, **{k: v for k, v in rec.items() if k != "t"}, "ok": ok})
            if not ok:
                break
            best = rate
        out["log_pane_steps"] = steps
        out["log_pane_max_lines_per_s"] = best

        # The console idle: 54 containers sampled every second, nothing followed.
        log(f"console idle window {idle_s:.0f} s (pid {probe.proc.pid})")
        window(out, probe.proc.pid, idle_s, "idle_window_s", "ui_idle")

        # Soak: the console following a container logging 1,000 lines/s.
        cid = start_logger(lab, 1000, "logger-soak")
        loggers.append(cid)
        probe.ask(f"follow {cid}", "following", 10)
        time.sleep(3)
        log(f"console following 1,000 lines/s for {soak_s:.0f} s (pid {probe.proc.pid})")
        window(out, probe.proc.pid, soak_s, "soak_window_s", "ui_logs")
        docker("rm", "-f", cid)
        loggers.remove(cid)

        # OOM: the lab's load until the kernel kills workers; kernel line -> event, -> row.
        if oom_timeout <= 0:  # --no-oom
            return out
        stop = threading.Event()
        loader = threading.Thread(
            target=lambda: lab.load(duration_s=oom_timeout, rate=8.0, stop=stop), daemon=True
        )
        loader.start()
        mark = len(probe.lines)
        probe.send(f"oom {kills_wanted} {oom_timeout}")
        try:
            probe.wait("oom_done", oom_timeout + 30, mark)
        finally:
            stop.set()
            loader.join(30)
        shown = [r for r in probe.lines[mark:] if r.get("t") == "oom_screen"]
        event = sorted(r["event_s"] for r in shown)
        screen = sorted(r["screen_s"] for r in shown)
        out["oom_kills_seen"] = len(shown)
        out["oom_event_latencies_s"] = [round(x, 3) for x in event]
        out["oom_screen_latencies_s"] = [round(x, 3) for x in screen]
        if shown:
            out["oom_latency_p95_s"] = event[min(len(event) - 1, int(0.95 * len(event)))]
            out["oom_to_screen_p95_s"] = screen[min(len(screen) - 1, int(0.95 * len(screen)))]
    except RuntimeError as exc:
        out["ui_error"] = str(exc)
    finally:
        probe.stop()
        for cid in [*loggers, health_id]:
            subprocess.run(["docker", "rm", "-f", cid], capture_output=True, check=False)
    return out

"""Benchmarks against what users run today: `python benchmarks/run.py [--quick] [--json FILE]`.

Everything runs on this machine: a real sshd on loopback (the tests' SshdServer, started inside
its own pid namespace so every process our collection starts there is counted exactly), the lab
with 50 idle containers plus the leaking backend (its own compose project, removed at the end),
and the console's collection side (HostMonitor over SSH) in a child process measured from /proc.

Figures (each beside its baseline, in the same run):
  1. server CPU s/min of our collection vs `docker stats` vs glances (containers plugin)
  2. processes started on the server per minute in steady state (ours)
  3. the console's own CPU and RSS with 50 containers, and while tailing 1,000 lines/s
  4. the real console (ui_bench.py): first frame, health/OOM -> screen, log pane max rate
     with key latency, CPU/RSS following 1,000 lines/s
  5. time to the first data over SSH
  6. a fleet: the console's CPU and RSS at 1, 5, 10, 20 hosts
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests"), str(HERE.parent / "src")]

from procstat import (  # noqa: E402
    CpuMeter,
    engine_pids,
    ns_last_pid,
    rss_bytes,
)
from ui_bench import measure_ui  # noqa: E402

import fixtures_sshd  # noqa: E402 - the tests' sshd, reused as is
from fixtures_sshd import SshdServer, _free_port, descendants  # noqa: E402
from incident_console.lab.image import LAB_IMAGE  # noqa: E402
from incident_console.lab.lab import Lab  # noqa: E402

PROBE = HERE / "console_probe.py"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def namespaced_sshd(root: Path) -> None:
    """Make SshdServer start sshd as pid 1 of a new pid namespace (via a wrapper script).

    SshdServer starts the module's SSHD path; pointing it at this wrapper is the one change.
    Pids in a fresh namespace are handed out in order, so ns_last_pid counts every fork.
    """
    wrapper = root / "sshd-in-pidns"
    wrapper.write_text('#!/bin/sh\nexec unshare --pid --fork --kill-child /usr/sbin/sshd "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    fixtures_sshd.SSHD = str(wrapper)


class Probe:
    """The console's collection side (console_probe.py) in a child process."""

    def __init__(self, servers: list[SshdServer], follow: list[str] = ()) -> None:  # type: ignore[assignment]
        argv = [sys.executable, str(PROBE)]
        for s in servers:
            argv += ["--identity", str(s.client_key)]
        kh = servers[0].root.parent / "known_hosts_all"
        kh.write_text("".join(s.known_hosts.read_text() for s in servers))
        argv += ["--known-hosts", str(kh)]
        for cid in follow:
            argv += ["--follow", cid]
        argv += [s.target for s in servers]
        self.t0 = time.monotonic()
        env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
        self.lines: list[dict[str, Any]] = []
        self.first_data: dict[int, float] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                rec = json.loads(line)
                rec["wall"] = time.time()
                if rec.get("t") == "first_data":
                    self.first_data[rec["host"]] = time.monotonic() - self.t0
                self.lines.append(rec)

    def wait_first_data(self, hosts: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.first_data) < hosts:
            if self.proc.poll() is not None:
                why = "; ".join(r["error"] for r in self.of("error")) or "see stderr"
                raise RuntimeError(f"console probe exited with {self.proc.returncode}: {why}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(self.first_data)}/{hosts} hosts sent data")
            time.sleep(0.1)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.lines if r.get("t") == kind]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def window(
    seconds: float, meters: dict[str, CpuMeter], rss_of: Callable[[], int | None] | None = None
) -> dict[str, Any]:
    """Poll `meters` once a second for `seconds`; CPU s/min per meter, and RSS samples."""
    for m in meters.values():
        m.poll()
    rss: list[int] = []
    t0 = time.monotonic()
    while (elapsed := time.monotonic() - t0) < seconds:
        time.sleep(min(1.0, seconds - elapsed))
        for m in meters.values():
            m.poll()
        if rss_of is not None and (r := rss_of()) is not None:
            rss.append(r)
    elapsed = time.monotonic() - t0
    out: dict[str, Any] = {"seconds": round(elapsed, 1)}
    for name, m in meters.items():
        out[f"{name}_cpu_s_per_min"] = m.total() * 60 / elapsed
        out[f"{name}_by_process"] = {k: round(v, 3) for k, v in m.by_name().items() if v > 0}
    if rss:
        out["rss_mb_first"] = rss[0] / 2**20
        out["rss_mb_last"] = rss[-1] / 2**20
        out["rss_mb_max"] = max(rss) / 2**20
    return out


def engine_meter() -> CpuMeter:
    return CpuMeter(engine_pids, count_new_from_zero=False)


def pid_meter(pid: int) -> CpuMeter:
    return CpuMeter(lambda: [pid])


def start_logger(lab: Lab, rate: int, name: str = "logger") -> str:
    """A container in the lab's project printing `rate` lines a second; returns its id."""
    code = (
        "import sys, time\n"
        f"rate = {rate}\n"
        "n = 0\n"
        "t = time.monotonic()\n"
        "while True:\n"
        "    for _ in range(rate // 10):\n"
        "        n += 1\n"
        "        sys.stdout.write(f'GET /api/v1/items 200 line={n} worker=3 took=12ms\\n')\n"
        "    sys.stdout.flush()\n"
        "    t += 0.1\n"
        "    time.sleep(max(0.0, t - time.monotonic()))\n"
    )
    out = subprocess.run(
        [
            "docker", "run", "-d", "--name", f"{lab.project}-{name}",
            "--label", f"com.docker.compose.project={lab.project}",
            "-v", "/usr:/usr:ro", "--memory", "64m",
            LAB_IMAGE, "/usr/bin/python3", "-u", "-c", code,
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def glances_argv() -> tuple[list[str] | None, str]:
    """glances streaming its containers plugin to stdout, or why it cannot run."""
    exe = shutil.which("glances")
    if exe is None:
        return None, "glances is not installed (apt-get install glances)"
    argv = [exe, "--stdout", "docker", "-t", "1"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=12)
        text = done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        text = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
    if "docker:" not in text:
        first = (text.strip().splitlines() or ["no output"])[0]
        return None, f"glances --stdout docker printed no container data: {first[:160]}"
    return argv, ""


def measure_ours(
    sshd: SshdServer,
    leader: int,
    idle_rate: float,
    w: float,
    follow: list[str] = (),  # type: ignore[assignment]
) -> tuple[dict[str, Any], Probe]:
    """Our collection over SSH: server CPU (session tree + engine delta), forks, console use."""
    probe = Probe([sshd], follow)
    probe.wait_first_data(1, 60)
    time.sleep(min(10.0, w / 5))  # past the start-up burst (inventory, kernel-log replay)
    tree = CpuMeter(lambda: descendants(sshd.proc.pid))  # type: ignore[union-attr]
    before = ns_last_pid(leader)
    res = window(
        w,
        {"server_tree": tree, "engine": engine_meter(), "console": pid_meter(probe.proc.pid)},
        lambda: rss_bytes(probe.proc.pid),
    )
    after = ns_last_pid(leader)
    forks = after - before - 1  # minus the `cat` that read `after`
    res["processes_started"] = forks
    res["engine_delta_cpu_s_per_min"] = res["engine_cpu_s_per_min"] - idle_rate
    res["server_cpu_s_per_min"] = res["server_tree_cpu_s_per_min"] + max(
        0.0, res["engine_delta_cpu_s_per_min"]
    )
    return res, probe


def measure_cli(argv: list[str], idle_rate: float, w: float, warm: float) -> dict[str, Any]:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(warm)
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"{argv[0]} exited {proc.returncode}: {err.strip()[-200:]}")
        cli = CpuMeter(lambda: [proc.pid, *descendants(proc.pid)])
        res = window(w, {"cli": cli, "engine": engine_meter()})
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()
    res["engine_delta_cpu_s_per_min"] = res["engine_cpu_s_per_min"] - idle_rate
    res["server_cpu_s_per_min"] = res["cli_cpu_s_per_min"] + max(
        0.0, res["engine_delta_cpu_s_per_min"]
    )
    return res


def measure_fleet(
    servers: list[SshdServer], sizes: list[int], w: float, first_data_s: float
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in sizes:
        probe = Probe(servers[:n])
        try:
            try:
                probe.wait_first_data(n, first_data_s)
            except RuntimeError as exc:
                out[str(n)] = {"error": str(exc)}
                log(f"fleet {n}: {exc}")
                continue
            time.sleep(3)
            pid = probe.proc.pid
            res = window(w, {"console": pid_meter(pid)}, lambda pid=pid: rss_bytes(pid))
        finally:
            probe.stop()
        out[str(n)] = {
            "console_cpu_pct_core": res["console_cpu_s_per_min"] / 60 * 100,
            "console_rss_mb": res.get("rss_mb_max"),
            "first_data_all_s": max(probe.first_data.values()),
        }
        log(f"fleet {n}: {out[str(n)]}")
    return out


def table(r: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = []

    def add(name: str, key: str, fmt: str = "{:.3f}") -> None:
        if key in r and r[key] is not None:
            rows.append((name, fmt.format(r[key])))

    add("idle engine CPU s/min (baseline)", "idle_engine_cpu_s_per_min")
    add("ours: server CPU s/min", "ours_server_cpu_s_per_min")
    add("  session tree (sshd+awk+dmesg)", "ours_session_tree_cpu_s_per_min")
    add("  engine delta", "ours_engine_delta_cpu_s_per_min")
    add("docker stats: server CPU s/min", "docker_stats_server_cpu_s_per_min")
    add("glances: server CPU s/min", "glances_server_cpu_s_per_min")
    add("ours / docker stats", "ours_to_docker_stats_ratio", "1/{:.0f}")
    add("ours / glances", "ours_to_glances_ratio", "1/{:.0f}")
    add("processes started on server per min", "server_processes_per_min", "{:.2f}")
    add("console CPU % core (50 containers)", "console_cpu_pct_core", "{:.2f}")
    add("console RSS MB (max)", "console_rss_mb_max", "{:.1f}")
    add("first data over SSH (monitor), s", "first_data_over_ssh_s", "{:.2f}")
    add("UI: first frame, s", "first_frame_s", "{:.2f}")
    add("UI: first row with data over SSH, s", "first_row_data_s", "{:.2f}")
    add("UI: health event -> row p95 s", "health_to_screen_p95_s")
    add("OOM line -> OomKill event p95 s", "oom_latency_p95_s")
    add("OOM line -> row on screen p95 s", "oom_to_screen_p95_s")
    add("UI: log pane max lines/s (keys < 100 ms)", "log_pane_max_lines_per_s", "{:.0f}")
    for step in r.get("log_pane_steps") or []:
        rows.append(
            (f"  at {step['rate']} lines/s: pane lines/s, key p95 ms",
             f"{step['lines_per_s']:.0f}, {step['key_p95_ms']:.0f}")
        )  # fmt: skip
    add("UI: console CPU % core idle (54 containers)", "ui_idle_cpu_pct_core", "{:.1f}")
    if r.get("ui_idle_rss_mb_first_last_max"):
        rows.append(("UI: RSS MB first/last/max (idle)", str(r["ui_idle_rss_mb_first_last_max"])))
    add("UI: console CPU % core (1000 lines/s soak)", "ui_logs_cpu_pct_core", "{:.1f}")
    if r.get("ui_logs_rss_mb_first_last_max"):
        rows.append(("UI: RSS MB first/last/max (soak)", str(r["ui_logs_rss_mb_first_last_max"])))
    if r.get("ui_error"):
        rows.append(("UI error", str(r["ui_error"])[:70]))
    for n, f in (r.get("fleet") or {}).items():
        if "error" in f:
            rows.append((f"fleet {n} hosts", f["error"][:70]))
            continue
        rows.append(
            (f"fleet {n} hosts: console CPU % / RSS MB",
             f"{f['console_cpu_pct_core']:.1f} / {f['console_rss_mb']:.0f}")
        )  # fmt: skip
    for k, v in (r.get("skipped") or {}).items():
        rows.append((f"skipped: {k}", v))
    width = max(len(a) for a, _ in rows)
    return "\n".join(f"{a:<{width}}  {b}" for a, b in rows)


def run_ui(args: argparse.Namespace, r: dict[str, Any], lab: Lab, sshd: SshdServer) -> None:
    """The real console's figures (first frame, to-screen latencies, log pane, soak)."""
    quick = args.quick
    soak = 45.0 if quick else 600.0
    log(
        "the real console (make_app, headless run_test) over SSH: first frame, health "
        f"and OOM to screen, log pane rates, {soak:.0f} s soak at 1,000 lines/s"
    )
    ui = measure_ui(
        lab, sshd.target, sshd.client_key, sshd.known_hosts, start_logger,
        quick=quick, soak_s=soak, idle_s=20.0 if quick else 600.0,
        oom_timeout=0.0 if args.no_oom else (150.0 if quick else 300.0),
        kills_wanted=2 if quick else 5,
    )  # fmt: skip
    r.update(ui)
    r["soak_note"] = f"console CPU/RSS over {soak:.0f} s" + (
        " (--quick; the full run: 600 s)" if quick else ""
    )


def run(args: argparse.Namespace, r: dict[str, Any]) -> None:
    """Run every measurement, filling `r` as figures come (a failure keeps what was measured)."""
    quick = args.quick
    w = 20.0 if quick else 120.0
    r.update(
        {
            "command": "python benchmarks/run.py" + (" --quick" if quick else ""),
            "window_s": w,
            "machine": f"{os.cpu_count()} cores, {os.uname().release}",
            "skipped": {},
        }
    )
    root = Path(tempfile.mkdtemp(prefix="icbench-"))
    namespaced_sshd(root)
    project = f"icbench{os.getpid()}"
    lab = Lab(project, root / "lab", extra=50)
    servers: list[SshdServer] = []
    try:
        log(f"lab {project} with 50 idle containers: up")
        t = time.monotonic()
        lab.up(timeout_s=300)
        r["containers"] = len(lab.container_ids())
        log(f"lab up in {time.monotonic() - t:.0f} s, {r['containers']} containers")
        sshd = SshdServer(root=root / "sshd0", port=_free_port())
        sshd.setup()
        sshd.start()
        servers.append(sshd)
        leader = sshd.proc.pid  # type: ignore[union-attr]
        if args.ui_only:
            run_ui(args, r, lab, sshd)
            return

        # The engine is shared with other work on this machine: an idle window before and
        # after each contender, and the contender's delta taken over their mean.
        idles: list[float] = []

        def idle_window() -> float:
            log(f"idle engine window {w:.0f} s")
            idles.append(window(w, {"engine": engine_meter()})["engine_cpu_s_per_min"])
            return idles[-1]

        idle_rate = idle_window()
        r["idle_engine_cpu_s_per_min"] = idle_rate

        log("ours: HostMonitor over SSH")
        ours, probe = measure_ours(sshd, leader, idle_rate, w)
        probe.stop()
        after = idle_window()
        ours["engine_delta_cpu_s_per_min"] -= (after - idle_rate) / 2
        ours["server_cpu_s_per_min"] = ours["server_tree_cpu_s_per_min"] + max(
            0.0, ours["engine_delta_cpu_s_per_min"]
        )
        idle_rate = after
        r["first_data_over_ssh_s"] = probe.first_data[0]
        r["ours_server_cpu_s_per_min"] = ours["server_cpu_s_per_min"]
        r["ours_session_tree_cpu_s_per_min"] = ours["server_tree_cpu_s_per_min"]
        r["ours_engine_delta_cpu_s_per_min"] = ours["engine_delta_cpu_s_per_min"]
        r["ours_session_processes"] = ours["server_tree_by_process"]
        r["server_processes_started"] = ours["processes_started"]
        r["server_processes_per_min"] = ours["processes_started"] * 60 / ours["seconds"]
        r["console_cpu_pct_core"] = ours["console_cpu_s_per_min"] / 60 * 100
        r["console_rss_mb_max"] = ours.get("rss_mb_max")
        r["console_rss_mb_first_last"] = [ours.get("rss_mb_first"), ours.get("rss_mb_last")]

        log("docker stats (all containers, streaming)")
        ds = measure_cli(["docker", "stats"], idle_rate, w, warm=3)
        after = idle_window()
        ds["engine_delta_cpu_s_per_min"] -= (after - idle_rate) / 2
        ds["server_cpu_s_per_min"] = ds["cli_cpu_s_per_min"] + max(
            0.0, ds["engine_delta_cpu_s_per_min"]
        )
        idle_rate = after
        r["docker_stats_server_cpu_s_per_min"] = ds["server_cpu_s_per_min"]
        r["docker_stats_cli_cpu_s_per_min"] = ds["cli_cpu_s_per_min"]
        r["docker_stats_engine_delta_cpu_s_per_min"] = ds["engine_delta_cpu_s_per_min"]
        if r["ours_server_cpu_s_per_min"] > 0:
            r["ours_to_docker_stats_ratio"] = (
                r["docker_stats_server_cpu_s_per_min"] / r["ours_server_cpu_s_per_min"]
            )

        argv, why = glances_argv()
        if argv is None:
            r["skipped"]["glances"] = why
            log(f"glances skipped: {why}")
        else:
            log("glances --stdout docker")
            try:
                gl = measure_cli(argv, idle_rate, w, warm=5)
                after = idle_window()
                gl["engine_delta_cpu_s_per_min"] -= (after - idle_rate) / 2
                gl["server_cpu_s_per_min"] = gl["cli_cpu_s_per_min"] + max(
                    0.0, gl["engine_delta_cpu_s_per_min"]
                )
                idle_rate = after
                r["glances_server_cpu_s_per_min"] = gl["server_cpu_s_per_min"]
                r["glances_cli_cpu_s_per_min"] = gl["cli_cpu_s_per_min"]
                r["glances_engine_delta_cpu_s_per_min"] = gl["engine_delta_cpu_s_per_min"]
                if r["ours_server_cpu_s_per_min"] > 0:
                    r["ours_to_glances_ratio"] = (
                        r["glances_server_cpu_s_per_min"] / r["ours_server_cpu_s_per_min"]
                    )
            except RuntimeError as exc:
                r["skipped"]["glances"] = str(exc)

        r["idle_engine_windows_cpu_s_per_min"] = [round(x, 3) for x in idles]

        if not args.no_ui:
            run_ui(args, r, lab, sshd)

        if not args.no_fleet:
            sizes = [1, 5, 10, 20]
            log(f"fleet: {sizes} sshd instances on loopback, one engine behind them all")
            for i in range(1, max(sizes)):
                s = SshdServer(root=root / f"sshd{i}", port=_free_port())
                s.setup()
                s.start()
                servers.append(s)
            r["fleet"] = measure_fleet(
                servers, sizes, 8.0 if quick else 60.0, 60.0 if quick else 180.0
            )
            r["fleet_note"] = (
                "every host is a separate sshd on loopback; one docker engine behind all"
            )
    finally:
        for s in servers:
            with contextlib.suppress(Exception):
                s.stop()
        log(f"lab {project}: down")
        try:
            lab.down()
        except Exception as exc:  # noqa: BLE001 - said, and the figures are still written
            log(f"lab {project}: down failed: {exc}")
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="incident-console benchmarks")
    parser.add_argument("--quick", action="store_true", help="30 s windows (under 8 minutes)")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--no-oom", action="store_true")
    parser.add_argument("--no-fleet", action="store_true")
    parser.add_argument("--no-ui", action="store_true", help="skip the real console's figures")
    parser.add_argument(
        "--ui-only", action="store_true", help="only the real console's figures (no baselines)"
    )
    args = parser.parse_args()
    t0 = time.monotonic()
    # Bytecode as a pip install leaves it: with PYTHONDONTWRITEBYTECODE (set on this machine) an
    # editable checkout compiles every module at every start, which a first frame would count.
    compileall.compile_dir(str(HERE.parent / "src"), quiet=1)
    r: dict[str, Any] = {}
    status = 0
    try:
        run(args, r)
    except Exception as exc:  # one line, never a traceback; what was measured is still shown
        r["failed"] = f"{type(exc).__name__}: {exc}"
        print(f"benchmark failed: {r['failed']}", file=sys.stderr)
        status = 2
    r["total_s"] = round(time.monotonic() - t0, 1)
    print(table(r))
    if args.json:
        args.json.write_text(json.dumps(r, indent=2, default=str) + "\n")
        log(f"figures written to {args.json}")
    return status


if __name__ == "__main__":
    sys.exit(main())

"""`incident-console diagnose`: the seed's diagnose script, done right, on the same layers."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from typing import Any

import click

from incident_console.cli import fail, open_target, target_options
from incident_console.domain.durations import format_bytes, parse_duration
from incident_console.domain.events import OomKill
from incident_console.domain.oom_scope import describe_kill
from incident_console.domain.oom_text import kills_from_text
from incident_console.monitor.diagnosis import (
    Diagnosis,
    container_forecast,
    diagnose_state,
    diagnosis_json,
    host_forecast,
    host_forecast_text,
    memory_limit,
    scope_to_project,
)
from incident_console.monitor.host_monitor import HostMonitor
from incident_console.monitor.journal import Journal
from incident_console.monitor.saved_kernel_log import with_saved_kernel_log
from incident_console.monitor.state import ContainerView, HostState
from incident_console.transport.base import Host, TransportError

#: How long diagnose watches before judging: enough for CPU deltas and the kernel log history.
DEFAULT_SAMPLE_S = 5.0
#: The longest it waits for the first data of every source.
READY_TIMEOUT_S = 30.0


async def _sshd_oom_adj(host: Host) -> list[int] | None:
    """oom_score_adj of the sshd listeners (None when it cannot be read).

    The listener is what must survive the OOM killer: it is how the next login gets in. Its
    sessions are children that sshd deliberately puts back to the score it started with (0 on
    Debian, whose unit gives the listener -1000), so judged with them a protected server was
    called unprotected when the user was logged in over SSH. A listener is an sshd whose parent
    is not one; where none reads (a container's sshd started by a shell), every sshd counts.
    """
    try:
        # Debian 13's sessions run as `sshd-session` (OpenSSH 9.8 split it from the listener).
        result = await host.run(["pgrep", "-x", "sshd|sshd-session"], timeout=10)
    except TransportError:
        return None
    if result.exit_status not in (0, 1):
        return None
    pids = result.stdout.split()
    scores: dict[str, int] = {}
    parents: dict[str, str] = {}
    for pid in pids:
        # A session that ended in between is a missing file: the others still count. (The SFTP
        # read of these 0-byte /proc files came back empty before the transport read to EOF.)
        try:
            scores[pid] = int((await host.read_text(f"/proc/{pid}/oom_score_adj")).strip())
            # /proc/PID/stat: "PID (COMM) STATE PPID ...": the comm may hold spaces, so after ')'.
            stat = await host.read_text(f"/proc/{pid}/stat")
            parents[pid] = stat.rpartition(")")[2].split()[1]
        except (OSError, ValueError, IndexError):
            continue
    return listener_scores(scores, parents)


def listener_scores(scores: dict[str, int], parents: dict[str, str]) -> list[int]:
    """The scores of the sshd processes whose parent is not an sshd (all, where none is)."""
    listeners = [score for pid, score in scores.items() if parents.get(pid, "") not in scores]
    return listeners or list(scores.values())


def _ready(state: HostState, probes: int, samples: int) -> bool:
    if "docker_events" not in state.sources or "kernel_log" not in state.sources:
        return False
    stats = state.sources.get("stats")
    if stats is None:
        return False
    if stats.ok:
        running = [v for v in state.containers.values() if v.info.state == "running" and not v.gone]
        if any(len(v.samples) < samples for v in running) or not state.memory:
            return False
    return len([h for h in state.probes.values() if h]) >= probes


async def collect(
    host: Host,
    *,
    since: float | None,
    probes: list[str],
    sample_s: float,
    journal: Journal | None,
    project: str | None = None,
) -> tuple[HostState, Diagnosis]:
    """Watch a host briefly and judge it."""
    monitor = HostMonitor(host, journal=journal, probes=probes, since=since, read_only=True)
    await monitor.start()
    try:
        started = time.monotonic()
        samples = max(2, int(sample_s))
        # --sample is a minimum (a forecast needs 2 minutes): the ready timeout comes on top.
        while time.monotonic() - started < sample_s + READY_TIMEOUT_S:
            if time.monotonic() - started >= sample_s and _ready(
                monitor.state, len(probes), samples
            ):
                break
            await asyncio.sleep(0.25)
        adj = await _sshd_oom_adj(host)
        state = scope_to_project(monitor.state, project) if project else monitor.state
        diagnosis = diagnose_state(state, since=since, sshd_oom_score_adj=adj)
    finally:
        await monitor.stop()
    return state, diagnosis


def _print_human(diagnosis: Diagnosis, state: HostState, since: float | None) -> None:
    echo = click.echo
    echo(f"host {diagnosis.host}: {diagnosis.verdict.upper()}")
    for finding in diagnosis.findings:
        echo(f"  [{finding.severity}] {finding.summary}")
    if state.memory:
        mem = state.memory[-1]
        psi = f", pressure some {mem.psi_some_avg10:.1f}%" if mem.psi_some_avg10 is not None else ""
        echo(
            f"\nmemory: {format_bytes(mem.available_bytes)} available of {format_bytes(mem.total_bytes)}; "
            f"swap {format_bytes(mem.swap_total_bytes - mem.swap_free_bytes)} used of "
            f"{format_bytes(mem.swap_total_bytes)}{psi}"
        )
        echo(f"memory forecast: {host_forecast_text(host_forecast(state))}")
    kills = [k for k in state.oom_kills if since is None or k.time >= since]
    echo(f"\nOOM kills ({len(kills)}):")
    for k in kills[-20:]:
        when = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(k.time)) + "Z"
            if k.time
            else "time unknown"
        )
        echo(f"  {when}  {describe_kill(k)}")
    echo("\ncontainers:")
    for view in sorted(state.containers.values(), key=lambda v: v.info.name):
        if view.gone:
            continue
        info, latest = view.info, view.latest
        used = format_bytes(latest.memory_used_bytes) if latest else "?"
        limit = memory_limit(view)
        vs = f"{used} / {format_bytes(limit)}" if limit else f"{used} / no limit"
        echo(
            f"  {info.name:<28} {info.state:<10} {info.health or '-':<10} restarts {info.restarts:<3} "
            f"{vs:<24} {_forecast_words(view)}"
        )
        counted = view.latest.oom_kill_count if view.latest else None
        if counted:
            echo(
                f"      {counted} OOM kill(s) in its cgroup since it started (its oom_kill counter)"
            )
        if info.health == "unhealthy" or info.state == "restarting":
            errors = [line for line in state.logs if line.id == info.id and line.signal][-5:]
            for line in errors:
                echo(f"      {line.text[:160]}")
    if state.probes:
        echo("\nprobes:")
        for url, history in sorted(state.probes.items()):
            last = history[-1]
            got = f"HTTP {last.status}" if last.status is not None else last.error
            latency = f" {last.latency_ms:.0f} ms" if last.latency_ms is not None else ""
            echo(f"  {url}: {got}{latency}")


def _forecast_words(view: ContainerView) -> str:
    """The container's forecast, and why when there is none ("too little data (5 s ...)")."""
    forecast = container_forecast(view)
    if forecast is None or view.info.state != "running":
        return ""  # no limit, or not running: its memory goes nowhere
    if forecast.status == "too_little_data":
        return f"too little data ({forecast.reason}; try --sample 150)"
    return forecast.describe()


@click.command()
@click.argument("target", default="local")
@target_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text.")
@click.option("--since", help="Only OOM kills in this window (10m, 2h, 1d); default: since boot.")
@click.option("--probe", "probes", multiple=True, help="URL to probe from this side (repeatable).")
@click.option(
    "--sample", "sample_s", default=DEFAULT_SAMPLE_S, show_default=True, help="Seconds to watch."
)
@click.option(
    "--project", help="Only the containers of this compose project (and their OOM kills)."
)
@click.option(
    "--journal", "journal_path", type=click.Path(dir_okay=False), help="Also journal what was seen."
)
@click.option(
    "--kernel-log",
    "kernel_log",
    metavar="FILE",
    help=(
        "Read OOM kills from saved kernel text (dmesg, dmesg -T, syslog, journalctl -k, a"
        " support bundle, a paste) instead of the live log; containers are matched on TARGET"
        " when it is reached."
    ),
)
def diagnose(
    target: str,
    identity: tuple[str, ...],
    known_hosts: str | None,
    accept_new_host_key: bool,
    as_json: bool,
    since: str | None,
    probes: tuple[str, ...],
    sample_s: float,
    journal_path: str | None,
    project: str | None,
    kernel_log: str | None,
) -> None:
    """Diagnose a host: memory, OOM kills, containers, health, probes. Exit 0 healthy, 1 problems, 2 error."""
    from pathlib import Path

    from incident_console.transport.targets import describe_error

    since_ts: float | None = None
    if since is not None:
        try:
            since_ts = time.time() - parse_duration(since)
        except ValueError as exc:
            fail(f"--since: {exc}")
    saved = read_kernel_log(kernel_log) if kernel_log else None  # a bad file: before connecting
    host = open_target(target, identity, known_hosts, accept_new_host_key)
    journal = Journal(Path(journal_path)) if journal_path else None
    unreached = ""
    try:
        state, diagnosis = asyncio.run(
            collect(
                host,
                since=since_ts,
                probes=list(probes),
                sample_s=sample_s,
                journal=journal,
                project=project,
            )
        )
    except Exception as exc:  # every failure is one line, never a traceback
        if saved is None:
            fail(describe_error(exc, target))
            return
        # The saved text is still read: its ids and cgroups as the kernel printed them.
        unreached = describe_error(exc, target)
        state, diagnosis = HostState(name=target), Diagnosis(host=target)
    finally:
        if journal is not None:
            journal.close()
    if saved is not None and kernel_log is not None:
        unreached = unreached or containers_unseen(state)
        state = with_saved_kernel_log(state, saved, kernel_log, reachable=unreached)
        diagnosis = diagnose_state(
            state, since=since_ts, sshd_oom_score_adj=diagnosis.sshd_oom_score_adj
        )
    if as_json:
        doc: dict[str, Any] = diagnosis_json(diagnosis, state, since_ts)
        click.echo(json.dumps(doc, indent=2))
    else:
        _print_human(diagnosis, state, since_ts)
    blind = containers_unseen(state) if saved is None else ""
    if blind:
        # What the host itself said is printed above; without the engine the containers were
        # not diagnosed, and a verdict on them would be a guess.
        fail(f"{target}: {blind} (containers not diagnosed)")
    sys.exit(0 if diagnosis.verdict == "healthy" else 1)


def read_kernel_log(path: str) -> list[OomKill]:
    """The kills in a saved kernel log; a file that cannot be read fails in one line (exit 2).

    Yearless syslog / journalctl stamps are read in the file's own year (its modification
    time): a support bundle is read soon after it was made.
    """
    from pathlib import Path

    file = Path(path)
    try:
        data = file.read_bytes()
        year = time.gmtime(file.stat().st_mtime).tm_year
    except OSError as exc:
        fail(f"--kernel-log {path}: {exc.strerror or exc}")
    text = data.decode("utf-8", "replace")
    if "\x00" in text[:4096]:
        fail(f"--kernel-log {path}: not a text file")
    return kills_from_text(text, year=year, source=f"file:{file.name}")


def containers_unseen(state: HostState) -> str:
    """Why the containers could not be seen (the docker source's one line), or ''."""
    status = state.sources.get("docker_events")
    if status is None:
        return "docker did not answer in time"
    if status.ok:
        return ""
    return re.sub(r";\s*retrying in .*$", "", status.detail or status.method)

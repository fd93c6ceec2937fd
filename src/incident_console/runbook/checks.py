"""Checks: decide a step's verdict from the step's output and the monitor's feed.

Each check returns passed, failed or pending (not decided yet: keep watching). The OOM-kill
check reads the kernel log feed (the ground truth, not docker's State.OOMKilled); the limit
check reads `HostConfig.Memory` of the running container, never only the file.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from incident_console.domain.events import LogSignal, OomKill
from incident_console.domain.oom_scope import describe_kill
from incident_console.monitor.host_monitor import HostMonitor
from incident_console.runbook.compose_patch import ComposeError, ComposeFile
from incident_console.runbook.engine import CheckResult, CheckStatus, StepRecord
from incident_console.runbook.schema import VARIABLE_REF, Check, render
from incident_console.runbook.units import DurationError, parse_duration, parse_size
from incident_console.runbook.variables import project_of, service_views

MIB = 1024 * 1024
PASSED, FAILED, PENDING = CheckStatus.PASSED, CheckStatus.FAILED, CheckStatus.PENDING


def _http_status(url: str, timeout: float = 10.0) -> tuple[int | None, str]:
    """One GET from the console's side: (status, error)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - operator's URL
            return int(resp.status), ""
    except urllib.error.HTTPError as exc:
        return int(exc.code), ""
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, str(reason)[:120]


class Checker:
    """Evaluates checks for one monitor. `memo` keeps a check's state between evaluations."""

    def __init__(
        self,
        monitor: HostMonitor,
        *,
        http_get: Callable[[str], tuple[int | None, str]] = _http_status,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.monitor = monitor
        self.http_get = http_get
        self.clock = clock

    async def evaluate(
        self, check: Check, record: StepRecord, variables: dict[str, str], memo: dict[str, Any]
    ) -> CheckResult:
        """The check's verdict now."""
        name = check.name
        try:
            status, detail = await getattr(self, f"_{name}")(check, record, variables, memo)
        except (ComposeError, DurationError, OSError, KeyError) as exc:
            status, detail = FAILED, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return CheckResult(name, status, detail)

    # One method per check ----------------------------------------------------------------

    async def _exit_status(
        self, check: Check, record: StepRecord, v: dict[str, str], memo: dict[str, Any]
    ) -> tuple[CheckStatus, str]:
        if record.exit_status is None:
            return FAILED, "no command ran"
        ok = record.exit_status == check.exit_status
        return (PASSED if ok else FAILED), f"exit status {record.exit_status}"

    async def _output_matches(
        self, check: Check, record: StepRecord, v: dict[str, str], memo: dict[str, Any]
    ) -> tuple[CheckStatus, str]:
        template = check.output_matches or ""
        empty = sorted({m.group(1) for m in VARIABLE_REF.finditer(template) if not v[m.group(1)]})
        if empty:
            return FAILED, f"{', '.join(empty)} unknown: nothing to look for"
        # A value is matched as written: a container name's '.' is no wildcard.
        pattern = VARIABLE_REF.sub(lambda m: re.escape(str(v[m.group(1)])), template)
        if not pattern.strip():
            return FAILED, "empty pattern: it would match any output"
        # An empty match proves nothing (a pattern that can match nothing matches everywhere).
        match = next(
            (m for m in re.finditer(pattern, record.output, re.MULTILINE) if m.group(0)), None
        )
        if match:
            return PASSED, f"found {match.group(0)[:80]!r}"
        return FAILED, f"no line matches {pattern!r}"

    async def _no_new_oom(
        self, check: Check, record: StepRecord, v: dict[str, str], memo: dict[str, Any]
    ) -> tuple[CheckStatus, str]:
        assert check.no_new_oom is not None
        service = render(check.no_new_oom.service, v)
        since = record.started or 0.0
        project = v.get("project", "")
        state = self.monitor.state
        kills, whom = _kills_of(state, service, project, since)
        if kills:
            last = kills[-1]
            return FAILED, (
                f"{len(kills)} OOM kill(s) of {whom} since the step began, "
                f"last {last.process}[{last.pid}]" + (f" in {last.service}" if not service else "")
            )
        # Without the kernel log (dmesg denied, no journalctl) the kills only show as docker
        # `oom` events: count those too, or the check would pass on what it cannot see.
        events = [
            e
            for e in state.events
            if e.action == "oom"
            and e.time >= since
            and (not service or e.service == service)
            and (not project or project_of(state, e.id) == project)
        ]
        if events:
            return FAILED, (
                f"{len(events)} docker oom event(s) in {service or 'a container'} since the step "
                f"began, last in {events[-1].name}"
            )
        kernel = state.sources.get("kernel_log")
        docker = state.sources.get("docker_events")
        blind = [
            name
            for name, source in (("kernel log", kernel), ("docker events", docker))
            if source is None or not source.ok
        ]
        if not state.is_live or len(blind) == 2:
            why = (
                f"link {state.link}" if not state.is_live else " and ".join(blind) + " unavailable"
            )
            return PENDING, f"cannot see OOM kills right now ({why})"
        return PASSED, f"no OOM kill of {whom} since the step began ({_kill_sources(state)})"

    async def _oom_recorded(
        self, check: Check, record: StepRecord, v: dict[str, str], memo: dict[str, Any]
    ) -> tuple[CheckStatus, str]:
        assert check.oom_recorded is not None
        state = self.monitor.state
        kills, whom = _kills_of(state, render(check.oom_recorded.service, v), v.get("project", ""))
        if not kills:
            return FAILED, f"no OOM kill of {whom} recorded ({_kill_sources(state)})"
        last = kills[-1]
        came = sorted({k.source for k in kills if k.source})
        return PASSED, (
            f"{len(kills)} OOM kill(s) of {whom} recorded, last {describe_kill(last, rss=False)}"
            + (f" (from {', '.join(came)})" if came else "")
        )

    def _service_views(self, service: str, project: str) -> list[Any]:
        return [
            view
            for view in service_views(self.monitor.state, service, project)
            if view.info.state in ("running", "")
        ]

    async def _memory_below(
        self, check: Check, record: StepRecord, v: dict[str, str], memo: dict[str, Any]
    ) -> tuple[CheckStatus, str]:
        spec = check.memory_below
        assert spec is not None
        service = render(spec.service, v)
        limit = parse_size(render(spec.limit, v))
        window = parse_duration(render(spec.for_, v))
        now = self.clock()
        since = max(record.started or 0.0, now - window)
        views = self._service_views(service, v.get("project", ""))
        if not views:
            return PENDING, f"no running container of {service}"
        total_latest = 0
        covered = True
        for view in views:
            samples = [s for s in view.samples if s.time >= (record.started or 0.0)]
            recent = [s for s in samples if s.time >= since]
            if not recent:
                return PENDING, f"no memory samples of {view.info.name} yet"
            above = [s for s in recent if s.memory_used_bytes >= limit]
            if above:
                memo["below_since"] = None
                return PENDING, (
                    f"{view.info.name} at {above[-1].memory_used_bytes // MIB} MiB "
                    f"(must stay below {limit // MIB} MiB)"
                )
            # The window must really be covered by samples, not just the last second.
            covered = covered and samples[0].time <= now - window + 2.0
            total_latest += recent[-1].memory_used_bytes
        if covered:
            return PASSED, (
                f"{service} below {limit // MIB} MiB for {int(window)} s "
                f"(now {total_latest // MIB} MiB)"
            )
        return PENDING, f"{service} at {total_latest // MIB} MiB, watching for {int(window)} s"

    async def _http_status(
        self, check: Check, record: StepRecord, v: dict[str, str], memo: dict[str, Any]
    ) -> tuple[CheckStatus, str]:
        spec = check.http_status
        assert spec is not None
        url = render(spec.url, v)
        if not url:
            return FAILED, "no URL (set health_url or --probe)"
        if memo.get("streak", 0) >= spec.times:
            return PASSED, memo["detail"]
        interval = parse_duration(render(spec.interval, v))
        now = self.clock()
        if now - memo.get("last_try", 0.0) >= interval:
            memo["last_try"] = now
            status, error = await asyncio.to_thread(self.http_get, url)
            if status == spec.status:
                memo["streak"] = memo.get("streak", 0) + 1
            else:
                memo["streak"] = 0
                memo["last_bad"] = f"HTTP {status}" if status is not None else error
            memo["detail"] = f"{url}: HTTP {spec.status} {memo['streak']}/{spec.times} in a row"
            if memo.get("last_bad"):
                memo["detail"] += f" (last miss: {memo['last_bad']})"
        if memo.get("streak", 0) >= spec.times:
            return PASSED, memo["detail"]
        return PENDING, memo.get("detail", f"{url}: not tried yet")

    async def _limit_in_effect(
        self, check: Check, record: StepRecord, v: dict[str, str], memo: dict[str, Any]
    ) -> tuple[CheckStatus, str]:
        assert check.limit_in_effect is not None
        service = render(check.limit_in_effect.service, v)
        path = v.get("compose_file", "")
        if not path:
            return FAILED, "compose_file unknown (--set compose_file=...)"
        compose = ComposeFile(await self.monitor.host.read_text(path), path)
        wanted_text = compose.memory_limit(service)
        if wanted_text is None:
            return FAILED, f"{path} sets no memory limit for {service}"
        wanted = parse_size(wanted_text)
        limits = await self._limits_in_effect(v.get("project", ""), service)
        if not limits:
            return PENDING, f"no running container of {service} to inspect"
        wrong = {name: got for name, got in limits.items() if got != wanted}
        if wrong:
            name, got = next(iter(wrong.items()))
            hint = (
                " (docker-compose v1 ignores deploy: without --compatibility)" if got == 0 else ""
            )
            return FAILED, (
                f"{name}: HostConfig.Memory {got // MIB} MiB, the file says {wanted_text}{hint}"
            )
        return PASSED, f"HostConfig.Memory = {wanted // MIB} MiB = {wanted_text} in the file"

    async def _limits_in_effect(self, project: str, service: str) -> dict[str, int]:
        """HostConfig.Memory of each running container of the service (docker API, in a thread)."""
        labels = [f"com.docker.compose.service={service}"]
        if project:
            labels.append(f"com.docker.compose.project={project}")
        found = await self.monitor.inspect_containers(labels)
        return {
            str(c.get("Name", "")).lstrip("/"): int(c["HostConfig"].get("Memory") or 0)
            for c in found
        }

    def _follow(self, ids: set[str]) -> None:
        """Make sure the service's logs are followed (the monitor follows only what is asked),
        keeping whatever the console already follows."""
        follower = getattr(self.monitor, "log_follower", None)
        if follower is None or getattr(follower, "follows_all", False):
            return  # following every container already: a chosen set would stop the others
        live = {cid for cid, view in self.monitor.state.containers.items() if not view.gone}
        wanted = set(getattr(follower, "following", frozenset())) | (ids & live)
        if not (ids & live) <= set(getattr(follower, "following", frozenset())):
            self.monitor.follow_logs(wanted)

    async def _workers_recycled(
        self, check: Check, record: StepRecord, v: dict[str, str], memo: dict[str, Any]
    ) -> tuple[CheckStatus, str]:
        assert check.workers_recycled is not None
        service = render(check.workers_recycled.service, v)
        since = record.started or 0.0
        state = self.monitor.state
        project = v.get("project", "")
        ids = {
            cid
            for cid, view in state.containers.items()
            if view.info.service == service and (not project or view.info.project == project)
        }
        self._follow(ids)
        lines = [line for line in state.logs if line.time >= since and line.id in ids]
        recycled = [line for line in lines if line.signal is LogSignal.WORKER_RECYCLE]
        if recycled:
            return PASSED, f"{len(recycled)} worker(s) recycled: {recycled[-1].text[:80]!r}"
        killed = [line for line in lines if line.signal is LogSignal.WORKER_KILLED]
        boots = [line for line in lines if line.signal is LogSignal.WORKER_BOOT]
        # A worker booted with no worker killed and no OOM kill is a recycled worker too.
        kills = [k for k in state.oom_kills_since(since) if k.container_id in ids]
        if boots and not killed and not kills:
            return PASSED, f"{len(boots)} worker(s) booted with none killed: recycling"
        if killed:
            return PENDING, f"{len(killed)} worker(s) killed, none recycled yet"
        return PENDING, "no worker recycling in the logs yet"


def _kills_of(
    state: Any, service: str, project: str, since: float | None = None
) -> tuple[list[OomKill], str]:
    """The recorded kills of `service` in `project` (since `since`), and whom that is in words:
    an empty service is every container of the project (of the host without one)."""
    kills = [
        k
        for k in (state.oom_kills if since is None else state.oom_kills_since(since))
        if (not service or k.service == service)
        and (not project or project_of(state, k.container_id) == project)
    ]
    return kills, service or (f"project {project}" if project else "the host")


def _kill_sources(state: Any) -> str:
    """Where the console reads OOM kills from now, in a few words."""
    kernel = state.sources.get("kernel_log")
    if kernel is not None and kernel.ok:
        return f"kernel log via {kernel.method}"
    counters = state.sources.get("oom_counters")
    if counters is not None and counters.ok:
        return "the cgroups' OOM counters and docker events: the kernel log is unavailable"
    return "docker oom events only: the kernel log is unavailable"

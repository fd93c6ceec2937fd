"""watch never restarts a service by name when it runs in several compose projects.

A real Watch over LocalHost (its monitor not started: the state is filled as the docker events
source fills it); the decision is the one the `frontend-not-answering` rule makes.
"""

from __future__ import annotations

import time
from pathlib import Path

from incident_console.domain.events import ContainerInfo, SourceStatus
from incident_console.monitor.changes import Change, ChangeResult, Confirm
from incident_console.monitor.journal import Journal, read_journal
from incident_console.transport.local import LocalHost
from incident_console.watch.policy import Policy
from incident_console.watch.rules import Decision
from incident_console.watch.runner import Watch, WatchTarget


def _info(cid: str, project: str) -> ContainerInfo:
    return ContainerInfo(time=time.time(), id=cid, name=f"{project}_frontend_1", state="running",
                         project=project, service="frontend")  # fmt: skip


def _decision() -> Decision:
    return Decision(kind="restart", rule="frontend-not-answering", what="probe_fails",
                    target="frontend", summary="restart frontend: probe failed 3 times")  # fmt: skip


async def _restart_in(tmp_path: Path, policy: Policy) -> tuple[list[str], list[dict[str, object]]]:
    journal = Journal(tmp_path / "watch.jsonl")
    said: list[str] = []
    watch = Watch([WatchTarget("local", LocalHost())], policy, journal=journal, out=said.append)
    watched = watch.hosts[0]
    state = watched.monitor.state
    state.apply(SourceStatus(time=time.time(), source="docker_events", method="events", ok=True))
    state.apply(_info("a" * 64, "shop"))
    state.apply(_info("b" * 64, "staging"))
    restarted: list[str] = []

    async def change(change: Change, *, confirm: Confirm | None = None) -> ChangeResult:
        # The door, without the docker engine: the test is about which container watch picks.
        assert change.kind == "restart"
        restarted.append(change.container_id)
        return ChangeResult(change, change_id="test")

    watched.monitor.change = change  # type: ignore[method-assign]
    await watch._do_restart(watched, _decision())
    journal.close()
    records = [r for r in read_journal(tmp_path / "watch.jsonl") if r.get("kind") == "watch"]
    assert said, "watch said nothing"
    return restarted, records


async def test_a_service_in_two_projects_is_not_restarted(tmp_path: Path) -> None:
    restarted, records = await _restart_in(tmp_path, Policy())
    assert restarted == []
    assert records[-1]["acted"] is False
    why = str(records[-1]["why_not"])
    assert "frontend runs in 2 compose projects (shop, staging)" in why
    assert "project: NAME" in why and "PROJECT/frontend" in why


async def test_a_chosen_project_is_restarted(tmp_path: Path) -> None:
    restarted, records = await _restart_in(tmp_path, Policy(project="shop"))
    assert restarted == ["a" * 64]
    assert records[-1]["acted"] is True

"""Which limit ran out, who was killed, who grew, and the one wording every view uses."""

from __future__ import annotations

from pathlib import Path

from incident_console.domain.events import OomConstraint, OomKill
from incident_console.domain.oom import OomAssembler
from incident_console.domain.oom_scope import (
    CONTAINER_LIMIT,
    HOST,
    SHARED_LIMIT,
    classify_scope,
    describe_kill,
    enrich_kill,
    find_culprit,
    kill_json,
    kill_scope,
    memory_cgroup_from_proc,
    scope_sentence,
)
from incident_console.domain.oom_text import kills_from_text
from incident_console.monitor.state import HostState
from incident_console.report.kills import deduplicate
from incident_console.report.timeline import kill_text
from incident_console.watch.policy import parse_policy
from incident_console.watch.rules import RuleEngine

MiB = 1 << 20
A = "a" * 64
B = "b" * 64
C = "c" * 64
CORPUS = Path(__file__).parent / "fixtures" / "kernel" / "corpus"
LIMIT, GLOBAL, UNKNOWN = OomConstraint.LIMIT, OomConstraint.GLOBAL, OomConstraint.UNKNOWN


def test_classify_scope() -> None:
    assert classify_scope(LIMIT, f"/docker/{A}", f"/docker/{A}") == CONTAINER_LIMIT
    # A cgroup inside the container (docker-in-docker, a sub-scope) is still its own limit.
    assert classify_scope(LIMIT, f"/docker/{A}", f"/docker/{A}/init.scope") == CONTAINER_LIMIT
    assert classify_scope(LIMIT, "/lab-host", f"/lab-host/{A}") == SHARED_LIMIT
    pod = "/kubepods/burstable/pod1"
    assert classify_scope(LIMIT, pod, f"{pod}/{A}") == SHARED_LIMIT
    assert classify_scope(LIMIT, "/kubepods.slice", f"/kubepods.slice/x/docker-{A}.scope") == (
        SHARED_LIMIT
    )
    # A slice that is not a container's: systemd's MemoryMax on a service.
    assert classify_scope(LIMIT, "/system.slice", "/system.slice/app.service") == SHARED_LIMIT
    assert classify_scope(LIMIT, "/test1", "/test1") == CONTAINER_LIMIT
    assert classify_scope(LIMIT, "", "") == CONTAINER_LIMIT  # "Memory cgroup out of memory"
    assert classify_scope(LIMIT, "/", f"/docker/{A}") == HOST
    assert classify_scope(GLOBAL, "", f"/docker/{A}") == HOST
    assert classify_scope(UNKNOWN, "", "") == ""
    # Records of older journals carry only the constraint and memcg.
    old = OomKill(time=1.0, pid=1, process="x", constraint=GLOBAL)
    assert kill_scope(old) == HOST


def test_memory_cgroup_from_proc() -> None:
    v1 = (
        "12:pids:/lab-host/" + A + "\n"
        "9:memory:/lab-host/" + A + "\n"
        "1:name=systemd:/lab-host/" + A + "\n0::/system.slice/containerd.service\n"
    )
    assert memory_cgroup_from_proc(v1) == f"/lab-host/{A}"
    assert memory_cgroup_from_proc(f"0::/system.slice/docker-{A}.scope\n") == (
        f"/system.slice/docker-{A}.scope"
    )
    assert memory_cgroup_from_proc("garbage") == ""


def _grow(start: float, first: int, per_s: int, n: int = 60) -> list[tuple[float, int]]:
    return [(start + i, first + per_s * i) for i in range(n)]


def test_find_culprit_is_the_largest_growth_before_the_kill() -> None:
    kill_time = 1000.0
    histories = {
        A: [(t, 300 * MiB) for t in range(900, 1001)],  # big and flat: the victim, not a culprit
        B: _grow(940.0, 20 * MiB, 3 * MiB),  # +177 MiB in the minute before
        C: _grow(1001.0, 0, 50 * MiB),  # after the kill: does not count
    }
    culprit = find_culprit(histories, kill_time)
    assert culprit is not None and culprit.id == B
    assert culprit.growth_bytes == 59 * 3 * MiB and culprit.window_s == 59.0
    assert find_culprit(histories, kill_time, members=[A, C]) is None  # nobody grew
    assert find_culprit({A: [(999.0, 1)]}, kill_time) is None  # one sample is no growth


def test_enrich_shared_limit_names_victim_culprit_and_sharing() -> None:
    kill = OomKill(
        time=1000.0,
        pid=88,
        process="postgres",
        constraint=LIMIT,
        container_id=A,
        container="lab-db-1",
        service="db",
        oom_memcg="/lab-host",
        task_memcg=f"/lab-host/{A}",
        scope=SHARED_LIMIT,
    )
    enriched = enrich_kill(
        kill,
        histories={A: [(990.0, 300 * MiB), (999.0, 300 * MiB)], B: _grow(940.0, 0, 4 * MiB)},
        cgroups={A: f"/lab-host/{A}", B: f"/lab-host/{B}", C: f"/docker/{C}"},
        names={A: "db", B: "backend", C: "other"},
        limited=[C],
    )
    assert (enriched.culprit_id, enriched.culprit, enriched.sharing) == (B, "backend", 2)
    assert enriched.any_limit is False  # C has one, but it is not under the limit that ran out
    text = describe_kill(enriched)
    assert text.startswith("OOM kill in db: postgres[88]: the limit of /lab-host ran out")
    assert "(shared by 2 containers)" in text and "culprit backend (+236.0 MiB in 59 s)" in text
    doc = kill_json(enriched)
    assert doc["scope"] == SHARED_LIMIT and doc["victim"]["service"] == "db"
    assert doc["culprit"]["container"] == "backend" and doc["limit_cgroup"] == "/lab-host"
    # A container-limit kill is its own culprit: nothing is added.
    own = OomKill(time=1.0, pid=1, process="x", constraint=LIMIT, scope=CONTAINER_LIMIT)
    assert enrich_kill(own, histories={}, cgroups={}, names={}, limited=[]) is own
    assert kill_json(own)["culprit"] is None


def test_host_kill_says_the_server_ran_out_and_that_no_container_has_a_limit() -> None:
    kill = OomKill(time=1000.0, pid=3920277, process="gunicorn", constraint=GLOBAL, scope=HOST,
                   container_id=A, service="backend")  # fmt: skip
    enriched = enrich_kill(
        kill,
        histories={A: _grow(940.0, 0, 5 * MiB), B: [(950.0, 1), (999.0, 2)]},
        cgroups={},
        names={A: "backend", B: "db"},
        limited=[],
    )
    assert enriched.culprit_id == A and enriched.any_limit is False
    sentence = scope_sentence(enriched)
    assert sentence.startswith("the server ran out of memory; no container has a limit; ")
    assert "it grew most itself" in sentence
    unknown = OomKill(time=1.0, pid=5, process="x", constraint=GLOBAL)
    assert "culprit unknown (no memory samples from before the kill)" in describe_kill(unknown)


def test_real_shared_limit_capture_of_this_machine() -> None:
    """The kill at a cgroup_parent's limit on this engine: db killed, leak allocating."""
    (kill,) = kills_from_text((CORPUS / "29-lab-this-machine-shared-limit.txt").read_text())
    assert kill.scope == SHARED_LIMIT and kill.oom_memcg == "/iop-shared-man14152"
    assert kill.container_id.startswith("80c37eb8fee1")  # db, the victim (task_memcg)
    # cpuset= names the ALLOCATING task's container (leak): never taken for the victim's.
    assert "cpuset=c257963d42a6" in kill.raw[-2]


def test_assembler_edge_cases() -> None:
    summary = (
        "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
        f"oom_memcg=/p,task_memcg=/p/{A},task=x,pid={{}},uid=0"
    )
    asm = OomAssembler()
    # A summary alone is held (its Killed line may follow), a reaper of its pid confirms it.
    assert asm.feed(1.0, summary.format(10)) == []
    (confirmed,) = asm.feed(1.1, "oom_reaper: reaped process 10 (x), now anon-rss:0kB")
    assert (confirmed.pid, confirmed.scope, confirmed.container_id) == (10, SHARED_LIMIT, A)
    assert asm.feed(3.0, "oom_reaper: reaped process 10 (x), now anon-rss:0kB") == []
    # The next burst closes a summary that found no Killed line.
    assert asm.feed(10.0, summary.format(11)) == []
    (alone,) = asm.feed(10.5, "y invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0")
    assert alone.pid == 11 and alone.anon_rss_bytes is None
    assert asm.flush() == []
    # A glued Task-in line keeps its container; a wrapped one gets its limit from the next line.
    asm = OomAssembler()
    asm.feed(20.0, f"Task in /docker/{A} killed as a result of limit of /docker/{A}memory: usa")
    (glued,) = asm.feed(20.1, "Killed process 7 (java) total-vm:1kB, anon-rss:1kB")
    assert (glued.container_id, glued.oom_memcg, glued.scope) == (
        A,
        f"/docker/{A}",
        "container-limit",
    )
    asm.feed(25.0, f"Task in /lab-host/{B}")
    asm.feed(25.0, " killed as a result of limit of /lab-host")
    (tail,) = asm.feed(25.1, "Memory cgroup out of memory: Killed process 9 (py) anon-rss:1kB")
    assert (tail.container_id, tail.oom_memcg, tail.scope) == (B, "/lab-host", SHARED_LIMIT)
    asm.feed(30.0, f"Task in /lab-host/{B} killed as a result of limit of")
    asm.feed(30.0, "/lab-host")
    (wrapped,) = asm.feed(30.1, "Memory cgroup out of memory: Killed process 8 (py) anon-rss:1kB")
    assert (wrapped.container_id, wrapped.oom_memcg, wrapped.scope) == (
        B,
        "/lab-host",
        SHARED_LIMIT,
    )


def test_postmortem_and_watch_use_the_same_words() -> None:
    kill = OomKill(time=100.0, pid=88, process="postgres", constraint=LIMIT, container_id=A,
                   container="lab-db-1", service="db", oom_memcg="/lab-host",
                   task_memcg=f"/lab-host/{A}", scope=SHARED_LIMIT, sharing=2, culprit_id=B,
                   culprit="backend", culprit_growth_bytes=200 * MiB, culprit_window_s=120.0)  # fmt: skip
    (row,) = deduplicate([{**kill.to_record(), "host": "h"}], {})
    assert row.scope == SHARED_LIMIT and row.scope_text == scope_sentence(kill)
    assert scope_sentence(kill) in kill_text(row)
    policy = parse_policy("rules:\n  - name: oom\n    oom_kill: {service: db}\n")
    (decision,) = RuleEngine(policy).on_event(kill, HostState("h"), now=101.0)
    assert decision.summary == describe_kill(kill)
    assert decision.evidence["scope"] == SHARED_LIMIT
    assert decision.evidence["culprit"]["container"] == "backend"


def test_the_oom_feed_says_it_in_the_same_words() -> None:
    from incident_console.ui.widgets.panes import OomFeed

    state = HostState("h")
    kill = OomKill(time=100.0, pid=88, process="postgres", constraint=LIMIT, container_id=A,
                   container="lab-db-1", service="db", oom_memcg="/lab-host",
                   task_memcg=f"/lab-host/{A}", scope=SHARED_LIMIT, sharing=2, culprit_id=B,
                   culprit="backend", culprit_growth_bytes=200 * MiB, culprit_window_s=120.0)  # fmt: skip
    host = OomKill(time=101.0, pid=7, process="gunicorn", constraint=GLOBAL, scope=HOST,
                   any_limit=False)  # fmt: skip
    state.apply(kill)
    state.apply(host)
    host_row, shared_row = [line.plain for line in OomFeed().lines(state, 102.0)]
    assert f"(shared limit: {scope_sentence(kill)})" in shared_row
    assert "(host-wide: the server ran out of memory; no container has a limit;" in host_row


def test_the_postmortem_names_the_shared_limit_and_the_culprit() -> None:
    from incident_console.report.facts import derive_facts
    from incident_console.report.render import render_facts

    kill = OomKill(time=100.0, pid=88, process="postgres", constraint=LIMIT, container_id=A,
                   container="lab-db-1", service="db", oom_memcg="/lab-host",
                   task_memcg=f"/lab-host/{A}", scope=SHARED_LIMIT, sharing=2, culprit_id=B,
                   culprit="backend", culprit_growth_bytes=200 * MiB, culprit_window_s=120.0)  # fmt: skip
    text = render_facts(derive_facts([{**kill.to_record(), "host": "h"}]))
    # The likely cause and the timeline, in the same words; the kills table says which limit.
    assert text.count(scope_sentence(kill)) == 2
    assert "**Likely cause:** In the db service (lab-db-1), `postgres` processes" in text
    assert "| shared limit (a parent cgroup's) |" in text
    assert "at its memory limit" not in text

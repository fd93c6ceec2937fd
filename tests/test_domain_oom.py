"""Kernel OOM lines: real captures and every layout of kernels 3.10 .. 6.x."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incident_console.domain.events import ContainerInfo, OomConstraint, OomKill
from incident_console.domain.oom import (
    OomAssembler,
    attribute,
    container_id_from_memcg,
    parse_kernel_line,
    split_dmesg_line,
)

KERNEL = Path(__file__).parent / "fixtures" / "kernel"
LAB = Path(__file__).parent / "fixtures" / "lab"
REAL_ID = "d155609c4cff5b43c3a3f63b8ad81174a0f6ef47f6758252fff6954f43ee7058"
REAL_BOOT = 1796050873.0
V2_ID = "7c2e0b9a8f6d4e3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c"
EL7_ID = "5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d"


def assemble(name: str, boot_time: float | None = REAL_BOOT) -> list[OomKill]:
    assembler = OomAssembler()
    kills: list[OomKill] = []
    for line in (KERNEL / name).read_text().splitlines():
        when, text = split_dmesg_line(line, boot_time)
        kills += assembler.feed(when if when is not None else 0.0, text, "dmesg")
    return kills + assembler.flush("dmesg")


def test_real_capture_is_one_limit_kill_of_the_container() -> None:
    kills = assemble("dmesg-memcg-6.18.txt")
    assert len(kills) == 1
    kill = kills[0]
    assert (kill.pid, kill.process) == (9595, "python3")
    assert kill.constraint is OomConstraint.LIMIT
    assert kill.container_id == REAL_ID
    assert kill.memcg == f"/docker/{REAL_ID}"
    assert kill.anon_rss_bytes == 48640 * 1024
    assert kill.total_vm_bytes == 60220 * 1024
    assert kill.source == "dmesg"
    assert kill.time == pytest.approx(REAL_BOOT + 363.560674)
    # invoked, summary, killed: the raw lines of the kill and nothing of the stack dump.
    assert len(kill.raw) == 3
    assert kill.raw[0].startswith("python3 invoked oom-killer")
    assert kill.raw[-1].startswith("Memory cgroup out of memory: Killed process 9595")


@pytest.mark.parametrize(
    "name", ["dmesg-memcg-6.18-iso.txt", "journalctl-short-iso.txt", "journalctl-short-unix.txt"]
)
def test_same_kill_in_other_printers(name: str) -> None:
    (kill,) = assemble(name, boot_time=None)
    assert (kill.pid, kill.container_id, kill.constraint) == (9595, REAL_ID, OomConstraint.LIMIT)
    # The wall clock of the kill agrees across printers (short-iso has whole seconds).
    assert kill.time == pytest.approx(REAL_BOOT + 363.56, abs=1.0)


def test_el7_kill_process_then_killed_process_is_one_kill() -> None:
    (kill,) = assemble("el7-3.10-memcg.txt")
    assert (kill.pid, kill.process) == (24572, "java")
    assert kill.constraint is OomConstraint.LIMIT
    assert kill.container_id == EL7_ID
    assert kill.anon_rss_bytes == 515868 * 1024
    # invoked, its cpuset line, Task in, Kill process, Killed process.
    assert len(kill.raw) == 5
    assert kill.scope == "container-limit"


def test_sacrificed_child_is_the_victim_and_host_wide() -> None:
    (kill,) = assemble("ubuntu-4.15-global.txt")
    assert (kill.pid, kill.process) == (3121, "gunicorn")
    assert kill.constraint is OomConstraint.GLOBAL
    assert kill.container_id == ""
    assert kill.anon_rss_bytes == 350584 * 1024


def test_global_oom_on_cgroup_v2_names_the_container() -> None:
    (kill,) = assemble("debian-5.10-global-v2.txt")
    assert (kill.pid, kill.process, kill.constraint) == (7134, "java", OomConstraint.GLOBAL)
    assert kill.container_id == V2_ID
    assert kill.memcg == f"/system.slice/docker-{V2_ID}.scope"


def test_seed_line_alone_yields_a_kill_with_its_time() -> None:
    (kill,) = assemble("seed-dmesg-T.txt", boot_time=None)
    assert (kill.pid, kill.process) == (3920277, "gunicorn")
    assert kill.constraint is OomConstraint.GLOBAL
    assert kill.anon_rss_bytes == 350584 * 1024
    assert kill.total_vm_bytes == 908936 * 1024
    assert kill.time == 1762431555.0  # 2025-11-06 12:19:15 read as UTC


def test_architecture_lines_classify() -> None:
    lines = (KERNEL / "architecture-lines.txt").read_text().splitlines()
    parsed = [parse_kernel_line(line) for line in lines]
    assert [p.kind if p else None for p in parsed] == [
        "oom_kill_summary",
        "killed",
        "killed",
        "oom_kill_summary",
        "task_in",
        "kill_old",
    ]
    summary, killed, seed, global_summary, task_in, kill_old = parsed
    assert summary and summary.constraint == "CONSTRAINT_MEMCG" and summary.pid == 7076
    assert summary.uid == 0 and summary.oom_memcg.startswith("/docker/")
    assert killed and killed.prefix == "Memory cgroup out of memory" and killed.uid == 0
    assert (killed.anon_rss_kb, killed.file_rss_kb, killed.oom_score_adj) == (64896, 4712, 0)
    assert seed and seed.prefix == "Out of memory" and seed.file_rss_kb is None
    assert global_summary and global_summary.global_oom and global_summary.uid == 1000
    assert global_summary.process == "java" and global_summary.oom_memcg == ""
    assert task_in and task_in.memcg_limit and task_in.task_memcg == task_in.oom_memcg
    assert kill_old and (kill_old.pid, kill_old.process, kill_old.score) == (24572, "java", 0)


def test_architecture_lines_assemble() -> None:
    kills = assemble("architecture-lines.txt", boot_time=None)
    assert [(k.pid, k.constraint, k.scope) for k in kills] == [
        (7076, OomConstraint.LIMIT, "container-limit"),
        (3920277, OomConstraint.GLOBAL, "host"),
        # The global summary found no kill line: it names its victim, so it is a kill too.
        (7134, OomConstraint.GLOBAL, "host"),
        (24572, OomConstraint.LIMIT, "container-limit"),
    ]
    assert kills[2].container_id == V2_ID
    # The Task-in line belongs to the last kill.
    assert kills[3].container_id == EL7_ID


def test_invoked_and_reaper_fields() -> None:
    invoked = parse_kernel_line(
        "gunicorn invoked oom-killer: gfp_mask=0x14200ca(GFP_HIGHUSER_MOVABLE), "
        "nodemask=(null), order=0, oom_score_adj=-1000"
    )
    assert invoked and invoked.kind == "invoked" and invoked.process == "gunicorn"
    assert (invoked.gfp_mask, invoked.order, invoked.oom_score_adj) == ("0x14200ca", 0, -1000)
    reaper = parse_kernel_line("oom_reaper: reaped process 7134 (java), now anon-rss:0kB")
    assert reaper and (reaper.kind, reaper.pid, reaper.anon_rss_kb) == ("reaper", 7134, 0)


def test_comm_with_parentheses_and_spaces() -> None:
    line = parse_kernel_line("Out of memory: Killed process 12 (Web (Content)) total-vm:10kB")
    assert line and line.process == "Web (Content)" and line.total_vm_kb == 10


def test_unrelated_lines_are_none() -> None:
    for text in (
        "docker0: port 1(veth1926549) entered disabled state",
        "memory: usage 49152kB, limit 49152kB, failcnt 0",
        "[   9595]     0  9595    15055    12757 python3",
        "oom_control is deprecated and will be removed.",
        "",
    ):
        assert parse_kernel_line(text) is None, text


def test_interleaved_lines_and_a_second_kill() -> None:
    assembler = OomAssembler()
    real = (KERNEL / "dmesg-memcg-6.18.txt").read_text().splitlines()
    kills: list[OomKill] = []
    for i, line in enumerate(real):
        when, text = split_dmesg_line(line, REAL_BOOT)
        kills += assembler.feed(when or 0.0, text)
        kills += assembler.feed(when or 0.0, f"eth0: noise {i}")
    # A second, bare kill: it must not take the first kill's summary.
    kills += assembler.feed(REAL_BOOT + 400, "Killed process 9600 (python3) anon-rss:1kB")
    assert [(k.pid, k.container_id) for k in kills] == [(9595, REAL_ID), (9600, "")]
    assert kills[1].constraint is OomConstraint.UNKNOWN


def test_lone_kill_process_lines_are_emitted() -> None:
    assembler = OomAssembler(stale_after=5)
    old = "Memory cgroup out of memory: Kill process {} (java) score 0 or sacrifice child"
    assert assembler.feed(10.0, old.format(1)) == []
    (first,) = assembler.feed(11.0, old.format(2))  # the next burst closes the first
    assert (first.pid, first.constraint) == (1, OomConstraint.LIMIT)
    assert assembler.expire(12.0) == []
    (second,) = assembler.expire(20.0)
    assert second.pid == 2 and second.time == 11.0
    assert assembler.flush() == []


def test_container_id_from_memcg() -> None:
    nested = f"/docker/{'a' * 64}/docker/{REAL_ID}"
    assert container_id_from_memcg(nested) == REAL_ID
    assert container_id_from_memcg(f"/system.slice/docker-{V2_ID}.scope") == V2_ID
    assert container_id_from_memcg("/user.slice/user-0.slice") == ""
    assert container_id_from_memcg(f"/docker/{REAL_ID[:12]}") == ""


def test_attribute_fills_name_and_service() -> None:
    kill = OomKill(time=1.0, pid=9595, process="python3", container_id=REAL_ID)
    info = ContainerInfo(time=0.0, id=REAL_ID, name="/lab-backend-1", service="backend")
    named = attribute(kill, {REAL_ID: info})
    assert (named.container, named.service, named.pid) == ("lab-backend-1", "backend", 9595)
    short = ContainerInfo(time=0.0, id=REAL_ID[:12], name="web", service="web")
    assert attribute(kill, {"x": short}).service == "web"
    assert attribute(kill, {}) is kill
    assert attribute(OomKill(time=1.0, pid=1, process="x"), {REAL_ID: info}).container == ""


def test_split_dmesg_line_prefixes() -> None:
    assert split_dmesg_line("[  363.560209] text", 1000.0) == (pytest.approx(1363.560209), "text")
    assert split_dmesg_line("[  363.560209] text", None) == (None, "text")
    assert split_dmesg_line("<4>[   12.5] [ T123] hi", 0.0) == (12.5, "hi")
    assert split_dmesg_line("kern  :err   : [   12.5] hi", 0.0) == (12.5, "hi")
    assert split_dmesg_line("6,339,1262558,-;vda: size", 100.0) == (
        pytest.approx(101.262558),
        "vda: size",
    )
    assert split_dmesg_line("2026-11-30T15:07:16,560209+00:00 x", None) == (
        pytest.approx(1796051236.560209),
        "x",
    )
    assert split_dmesg_line("Nov 30 15:07:16 lab kernel: x", None) == (None, "x")
    assert split_dmesg_line("no prefix at all", 5.0) == (None, "no prefix at all")


def test_lab_capture() -> None:
    capture = LAB / "dmesg-oom.txt"  # committed: a missing capture fails
    assembler = OomAssembler()
    kills: list[OomKill] = []
    for line in capture.read_text().splitlines():
        when, text = split_dmesg_line(line, None)
        kills += assembler.feed(when or 0.0, text, "dmesg")
    kills += assembler.flush()
    killed_lines = [ln for ln in capture.read_text().splitlines() if "Killed process" in ln]
    assert len(kills) == len(killed_lines) > 0
    assert all(k.constraint is not OomConstraint.UNKNOWN for k in kills)


@settings(max_examples=300)
@given(st.text(max_size=400), st.floats(allow_nan=True, allow_infinity=True))
def test_parsers_never_raise_on_text(text: str, when: float) -> None:
    parse_kernel_line(text)
    split_dmesg_line(text, when)
    split_dmesg_line(text, None)
    container_id_from_memcg(text)
    assembler = OomAssembler()
    assembler.feed(when, text)
    assembler.expire(when)
    assembler.flush()


_FRAGMENTS = st.sampled_from(
    [
        "Killed process ",
        "Kill process ",
        "Memory cgroup out of memory: ",
        "Out of memory: ",
        "oom-kill:",
        "constraint=CONSTRAINT_MEMCG,",
        "global_oom,",
        "task=",
        ",pid=",
        "uid=",
        "task_memcg=/docker/",
        "Task in ",
        " killed as a result of limit of ",
        " invoked oom-killer: ",
        "oom_reaper: reaped process ",
        "total-vm:",
        "anon-rss:",
        "kB, ",
        "(",
        ")",
        " score ",
        "9" * 30,
        "12",
        REAL_ID,
        "[  1.5] ",
        "2026-11-30T15:07:16,5+00:00 ",
    ]
)


@settings(max_examples=400)
@given(st.lists(st.lists(_FRAGMENTS | st.text(max_size=5), max_size=12).map("".join), max_size=8))
def test_assembler_never_raises_on_oomish_lines(lines: list[str]) -> None:
    assembler = OomAssembler()
    kills: list[OomKill] = []
    for i, line in enumerate(lines):
        when, text = split_dmesg_line(line, 0.0)
        kills += assembler.feed(when if when is not None else float(i), text)
    kills += assembler.flush()
    for kill in kills:
        assert isinstance(kill.pid, int)
        assert kill.anon_rss_bytes is None or kill.anon_rss_bytes >= 0

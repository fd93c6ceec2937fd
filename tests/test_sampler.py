"""The sampler's frame format and math; the real awk and sh samplers on captured cgroup files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from incident_console.domain.events import ContainerProcesses, ContainerSample, HostMemory
from incident_console.domain.sampler import (
    FrameInterpreter,
    cgroup_dirs,
    cpu_percent,
    memory_used,
    parse_frame,
    sample_from_docker_stats,
    set_line,
    split_frames,
)
from incident_console.sources.stats import sampler_argv

FIXTURES = Path(__file__).parent / "fixtures"
V1 = FIXTURES / "cgroup-v1" / "icts-probe"
CID = "93e46b1e23cd75b20fea9ec26e50d37b1e32cc56945dcbb91bc8ed46a26717f3"

FRAME = """\
T 1 403.67 v1
M 24683656 24254036 0 0
S 0.00 0.00
C 93e46b1e23cd 30916608 6729728 67108864 78873625 30916608
X k2
P 93e46b1e23cd 9726 28664 python3
E""".splitlines()


def test_parse_frame_real_output() -> None:
    frame = parse_frame(FRAME)
    assert frame.tick == 1 and frame.uptime == 403.67 and frame.mode == "v1"
    assert frame.meminfo_kb == (24683656, 24254036, 0, 0)
    assert frame.psi == (0.0, 0.0)
    raw = frame.containers["93e46b1e23cd"]
    assert raw.usage == 30916608 and raw.inactive_file == 6729728 and raw.limit == 67108864
    assert frame.missing == {"k2"}
    assert frame.processes is not None
    assert frame.processes["93e46b1e23cd"][0].rss_bytes == 28664 * 1024


def test_interpreter_events_and_cpu_percent() -> None:
    interp = FrameInterpreter()
    keys = {"93e46b1e23cd": CID}
    first = interp.events(parse_frame(FRAME), 100.0, keys)
    sample = next(e for e in first if isinstance(e, ContainerSample))
    # As docker stats: 30916608 - 6729728 bytes = 23.07 MiB.
    assert sample.memory_used_bytes == 30916608 - 6729728
    assert sample.cpu_percent == 0.0  # no previous counter yet
    assert sample.swap_used_bytes == 0  # v1 memsw == usage: no swap
    assert any(isinstance(e, HostMemory) and e.total_bytes == 24683656 * 1024 for e in first)
    assert any(isinstance(e, ContainerProcesses) for e in first)
    # One second later the counter grew by half a second of CPU: 50 % of one core.
    later = [line.replace("403.67", "404.67").replace("78873625", "578873625") for line in FRAME]
    later = [line for line in later if not line.startswith("P ")]
    second = interp.events(parse_frame(later), 101.0, keys)
    sample = next(e for e in second if isinstance(e, ContainerSample))
    assert sample.cpu_percent == pytest.approx(50.0)
    assert not any(isinstance(e, ContainerProcesses) for e in second)


def test_v2_units_and_no_limit() -> None:
    lines = ["T 2 10.0 v2", "C abc 1000 100 max 5000000 4096"]
    raw = parse_frame(lines).containers["abc"]
    assert raw.limit is None and raw.swap_raw == 4096
    interp = FrameInterpreter()
    interp.events(parse_frame(["T 1 9.0 v2", "C abc 1000 100 max 4000000 0"]), 1.0, {"abc": "x"})
    (sample,) = interp.events(parse_frame(lines), 2.0, {"abc": "x"})
    assert isinstance(sample, ContainerSample)
    assert sample.cpu_percent == pytest.approx(100.0)  # 1 s of usage_usec in 1 s of uptime
    assert sample.memory_limit_bytes == 0 and sample.swap_used_bytes == 4096


def test_v1_unlimited_is_no_limit() -> None:
    frame = parse_frame(["T 1 1 v1", "C k 10 1 9223372036854771712 1 10"])
    assert frame.containers["k"].limit is None


def test_memory_used_is_usage_less_inactive_file() -> None:
    assert memory_used(100, 30) == 70
    assert memory_used(100, None) == 100
    assert memory_used(100, 300) == 100  # docker stats ignores a larger inactive_file


def test_cpu_percent_guards() -> None:
    assert cpu_percent(10, 5, 1.0) == 0.0  # counter reset (container restarted)
    assert cpu_percent(0, 10, 0.0) == 0.0
    assert cpu_percent(0, 2_000_000_000, 1.0) == 200.0  # two cores busy


def test_cgroup_dirs() -> None:
    assert cgroup_dirs("a" * 64, "1", "cgroupfs") == (
        f"/sys/fs/cgroup/memory/docker/{'a' * 64}",
        f"/sys/fs/cgroup/cpuacct/docker/{'a' * 64}",
    )
    mem, cpu = cgroup_dirs("b" * 64, "2", "systemd")
    assert mem == cpu == f"/sys/fs/cgroup/system.slice/docker-{'b' * 64}.scope"
    assert cgroup_dirs("c", "2", "cgroupfs")[0] == "/sys/fs/cgroup/docker/c"


def test_set_line_skips_entries_with_spaces() -> None:
    line = set_line({"k1": ("/a", "/b"), "k 2": ("/c", "/d"), "k3": ("/e f", "/g")})
    assert line == "set k1 /a /b\n"


def test_split_frames_keeps_the_unfinished_rest() -> None:
    frames, rest = split_frames([*FRAME, "T 2 404 v1", "M 1 1 0 0"])
    assert len(frames) == 1 and frames[0][0].startswith("T 1")
    assert rest == ["T 2 404 v1", "M 1 1 0 0"]


def test_docker_api_one_shot_stats() -> None:
    stats = {
        "memory_stats": {"usage": 1000, "limit": 4000, "stats": {"total_inactive_file": 200}},
        "cpu_stats": {"cpu_usage": {"total_usage": 3_000_000_000}},
    }
    sample, counter = sample_from_docker_stats("id", stats, 11.0, (10.0, 2_000_000_000))
    assert sample is not None
    assert sample.memory_used_bytes == 800 and sample.memory_limit_bytes == 4000
    assert sample.cpu_percent == pytest.approx(100.0)
    assert counter == (11.0, 3_000_000_000)
    assert sample_from_docker_stats("id", {}, 1.0, None) == (None, None)
    assert sample_from_docker_stats("id", {"memory_stats": "x"}, 1.0, None)[0] is None


@given(st.lists(st.text(max_size=80), max_size=30))
def test_parse_frame_never_raises(lines: list[str]) -> None:
    frame = parse_frame(lines)
    FrameInterpreter().events(frame, 0.0, {k: k for k in frame.containers})


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["T", "M", "S", "C", "X", "P", "E", "Z"]),
            st.lists(
                st.sampled_from(["1", "-", "max", "nan", "1e400", "-5", "k", "9" * 40]), max_size=7
            ),  # fmt: skip
        ),
        max_size=20,
    )
)
def test_parse_frame_never_raises_on_near_misses(parts: list[tuple[str, list[str]]]) -> None:
    lines = [" ".join([tag, *rest]) for tag, rest in parts]
    frame = parse_frame(lines)
    interp = FrameInterpreter()
    for _ in range(2):
        for event in interp.events(frame, 1.0, {k: k for k in frame.containers}):
            assert event.to_record()["kind"]


@given(st.dictionaries(st.text(max_size=10), st.recursive(
    st.none() | st.integers() | st.text(max_size=5),
    lambda inner: st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=10)))  # fmt: skip
def test_docker_stats_never_raises(doc: dict[str, object]) -> None:
    sample_from_docker_stats("id", doc, 1.0, None)


def _fake_cgroup_tree(tmp_path: Path) -> tuple[str, str]:
    """The captured v1 files, laid out as the sampler expects them."""
    mem = tmp_path / "memory"
    cpu = tmp_path / "cpuacct"
    shutil.copytree(V1 / "memory", mem)
    shutil.copytree(V1 / "cpuacct", cpu)
    # The captured pid is long gone: point cgroup.procs at this test's own process.
    (mem / "cgroup.procs").write_text("1\n")
    return str(mem), str(cpu)


@pytest.mark.parametrize("method", ["awk-sampler", "sh-sampler"])
def test_real_sampler_reads_captured_v1_files(tmp_path: Path, method: str) -> None:
    if method == "awk-sampler" and shutil.which("awk") is None:
        pytest.skip("no awk on this machine")
    mem, cpu = _fake_cgroup_tree(tmp_path)
    awk_version = subprocess.run(["awk", "-W", "version"], capture_output=True, text=True)
    argv = sampler_argv(method, "v1", "mawk" in awk_version.stdout)
    stdin = set_line({"k1": (mem, cpu), "gone": ("/nonexistent", "/nonexistent")})
    out = subprocess.run(argv, input=stdin + "tick\ntick\n", capture_output=True, text=True,
                         timeout=20)  # fmt: skip
    frames, rest = split_frames(out.stdout.splitlines())
    assert len(frames) == 2 and not rest, out.stdout
    frame = parse_frame(frames[0])
    raw = frame.containers["k1"]
    assert raw.usage == int((V1 / "memory" / "memory.usage_in_bytes").read_text())
    assert raw.limit == 64 * 1024 * 1024
    assert raw.cpu == int((V1 / "cpuacct" / "cpuacct.usage").read_text())
    stat = (V1 / "memory" / "memory.stat").read_text().split()
    assert raw.inactive_file == int(stat[stat.index("total_inactive_file") + 1])
    assert frame.missing == {"gone"}
    assert frame.meminfo_kb is not None and frame.meminfo_kb[0] > 0
    assert frame.processes is not None and frame.processes["k1"][0].pid == 1
    assert parse_frame(frames[1]).processes is None  # processes again only on tick 6
    # The docker stats figure captured beside the files: 23.5MiB.
    used = memory_used(raw.usage, raw.inactive_file) / 1024**2
    assert abs(used - 23.5) < 0.1


def test_sh_sampler_output_equals_awk(tmp_path: Path) -> None:
    mem, cpu = _fake_cgroup_tree(tmp_path)
    stdin = set_line({"k1": (mem, cpu)}) + "tick\n"
    awk_version = subprocess.run(["awk", "-W", "version"], capture_output=True, text=True)
    outputs = []
    for method in ("awk-sampler", "sh-sampler"):
        argv = sampler_argv(method, "v1", "mawk" in awk_version.stdout)
        out = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=20)
        # M and S lines read the live /proc: compare the container's lines.
        outputs.append([line for line in out.stdout.splitlines() if line[:1] in "CPXE"])
    assert outputs[0] == outputs[1]

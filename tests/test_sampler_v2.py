"""What cgroup v2 adds, read by the real samplers: memory.peak and memory.pressure (Q lines).

The folder holds the files as a v2 kernel (6.12, the lab server's) writes them; the sampler
reads any folder it is given, so the real awk and sh programs run on it here, on a v1 host.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from incident_console.domain.events import ContainerSample
from incident_console.domain.sampler import parse_frame, set_line, split_frames
from incident_console.sources.stats import _with_counts, sampler_argv

V2_FILES = {
    "memory.current": "52428800\n",
    "memory.stat": "anon 41943040\nfile 10485760\nkernel 262144\ninactive_file 4194304\n",
    "memory.max": "67108864\n",
    "memory.swap.current": "0\n",
    "memory.peak": "66912256\n",
    "memory.pressure": (
        "some avg10=12.34 avg60=3.21 avg300=0.80 total=5419221\n"
        "full avg10=10.02 avg60=2.90 avg300=0.71 total=4975212\n"
    ),
    "memory.events": "low 0\nhigh 0\nmax 310\noom 3\noom_kill 3\noom_group_kill 0\n",
    "cpu.stat": "usage_usec 5213410\nuser_usec 4100000\nsystem_usec 1113410\n",
    "cgroup.procs": "1\n",
}


def _v2_folder(tmp_path: Path, *, peak: bool = True) -> str:
    folder = tmp_path / "docker-x.scope"
    folder.mkdir()
    for name, text in V2_FILES.items():
        if peak or name not in ("memory.peak", "memory.pressure"):
            (folder / name).write_text(text)
    return str(folder)


def _run(method: str, mode: str, stdin: str) -> list[list[str]]:
    if shutil.which("awk") is None and method == "awk-sampler":
        pytest.skip("no awk on this machine")
    version = subprocess.run(["awk", "-W", "version"], capture_output=True, text=True).stdout
    out = subprocess.run(sampler_argv(method, mode, "mawk" in version), input=stdin,
                         capture_output=True, text=True, timeout=20)  # fmt: skip
    frames, rest = split_frames(out.stdout.splitlines())
    assert frames and not rest, out.stdout + out.stderr
    return frames


@pytest.mark.parametrize("method", ["awk-sampler", "sh-sampler"])
def test_v2_peak_and_pressure_every_fifth_tick(tmp_path: Path, method: str) -> None:
    folder = _v2_folder(tmp_path)
    bare = tmp_path / "bare"
    shutil.copytree(folder, bare)
    (bare / "memory.peak").unlink()  # kernels before 5.19 have no memory.peak
    stdin = set_line({"k1": (folder, folder), "k2": (str(bare), str(bare))}) + "tick\n" * 6
    frames = [parse_frame(f) for f in _run(method, "v2", stdin)]
    assert len(frames) == 6
    assert frames[0].v2facts["k1"] == (66912256, 12.34)
    assert frames[0].v2facts["k2"] == (None, 12.34)
    assert frames[0].ooms["k1"] == (3, 3)
    # Read with the OOM counters, every 5th tick: the ticks between read two files fewer.
    assert [bool(f.v2facts) for f in frames] == [True, False, False, False, False, True]


@pytest.mark.parametrize("method", ["awk-sampler", "sh-sampler"])
def test_v1_prints_no_q_line(tmp_path: Path, method: str) -> None:
    folder = _v2_folder(tmp_path)  # whatever the folder holds, v1 mode never reads them
    frames = _run(method, "v1", set_line({"k1": (folder, folder)}) + "tick\n")
    assert not any(line.startswith("Q ") for line in frames[0])


def test_sh_q_lines_equal_awk(tmp_path: Path) -> None:
    folder = _v2_folder(tmp_path)
    stdin = set_line({"k1": (folder, folder)}) + "tick\n"
    lines = [[line for line in _run(m, "v2", stdin)[0] if line[:1] in "CQO"]
             for m in ("awk-sampler", "sh-sampler")]  # fmt: skip
    # The same lines; their order differs (awk reads the OOM counters every tick, after the
    # 5th-tick reads; the sh sampler reads both every 5th), and a frame is read by key.
    assert sorted(lines[0]) == sorted(lines[1])
    assert "Q k1 66912256 12.34" in lines[0]


def test_every_sample_carries_the_last_read_peak_and_pressure() -> None:
    sample = ContainerSample(time=1.0, id="a" * 64, memory_used_bytes=1, memory_limit_bytes=0,
                             cpu_percent=0.0)  # fmt: skip
    [carried] = _with_counts([sample], {}, {"a" * 64: (66912256, 12.34)})
    assert isinstance(carried, ContainerSample)
    assert (carried.memory_peak_bytes, carried.memory_pressure_some) == (66912256, 12.34)
    [plain] = _with_counts([sample], {}, {})
    assert plain is sample and plain.memory_peak_bytes is None

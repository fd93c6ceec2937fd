"""Every real OOM excerpt of the corpus gives exactly the kills its SOURCES.md entry lists.

The excerpts come from public reports (GitHub issues, mailing lists, blogs, docs), the seed,
this machine's lab and the lab server VM: kernels 2.6.32 .. 6.18, docker, Kubernetes, LXC,
systemd slices; dmesg, -T, iso, /dev/kmsg, syslog, journalctl; summary-only (grep) kills,
oom_reaper lines, memory.oom.group, wrapped Task-in lines, mangled pastes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incident_console.domain.events import OomKill
from incident_console.domain.oom_scope import describe_kill
from incident_console.domain.oom_text import kills_from_text

CORPUS = Path(__file__).parent / "fixtures" / "kernel" / "corpus"
_KILL = re.compile(r"^- kill: `(?P<spec>[^`]+)`$")


@dataclass
class Entry:
    name: str
    year: int | None = None
    boot: float | None = None
    kills: list[str] = field(default_factory=list)
    none: bool = False
    source: str = ""


def _entries() -> dict[str, Entry]:
    entries: dict[str, Entry] = {}
    current: Entry | None = None
    for line in (CORPUS / "SOURCES.md").read_text().splitlines():
        if line.startswith("## "):
            current = Entry(line[3:].strip())
            entries[current.name] = current
        elif current is None:
            continue
        elif m := _KILL.match(line):
            current.kills.append(m["spec"])
        elif line.startswith("- year: "):
            current.year = int(line.split(":", 1)[1])
        elif line.startswith("- boot: "):
            current.boot = float(line.split(":", 1)[1])
        elif line.startswith("- kills: none"):
            current.none = True
        elif line.startswith("- source: "):
            current.source = line.split(":", 1)[1].strip()
    return entries


ENTRIES = _entries()


def _check(kill: OomKill, spec: str) -> None:
    pid, process, where, scope, *when = spec.split(" ")
    assert (kill.pid, kill.process) == (int(pid), process), spec
    if re.fullmatch(r"[0-9a-f]{12}", where):
        assert kill.container_id[:12] == where and len(kill.container_id) == 64, spec
    else:
        assert kill.container_id == "", spec
        if where.startswith("/"):
            assert (kill.task_memcg or kill.memcg) == where, spec
    assert kill.scope == ("" if scope == "-" else scope), spec
    if when:
        expected = datetime.fromisoformat(when[0].replace("Z", "+00:00")).timestamp()
        assert kill.time == pytest.approx(expected, abs=1e-3), spec
    else:
        assert kill.time == 0.0, f"{spec}: a time the text does not give"


def test_the_corpus_has_its_sources_and_enough_public_excerpts() -> None:
    files = {p.name for p in CORPUS.glob("*.txt")}
    assert files == set(ENTRIES), "every excerpt has its SOURCES.md entry and the reverse"
    for entry in ENTRIES.values():
        assert entry.source, f"{entry.name}: no source"
        assert entry.kills or entry.none, f"{entry.name}: no expected result"
    own = ("this machine", "the seed incident", "issue 14")
    public = [e for e in ENTRIES.values() if not e.source.startswith(own)]
    assert len(public) >= 30
    scopes = {spec.split(" ")[3] for e in ENTRIES.values() for spec in e.kills}
    assert {"container-limit", "shared-limit", "host"} <= scopes


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_excerpt_gives_its_kills(name: str) -> None:
    entry = ENTRIES[name]
    text = (CORPUS / name).read_text()
    kills = kills_from_text(text, boot_time=entry.boot, year=entry.year, source="file")
    assert len(kills) == len(entry.kills), [(k.pid, k.process, k.scope) for k in kills]
    for kill, spec in zip(kills, entry.kills, strict=True):
        _check(kill, spec)


def test_summary_only_kill_is_held_until_the_burst_ends() -> None:
    """Live, the summary's Killed line follows within milliseconds: no kill is emitted twice."""
    text = (CORPUS / "25-korean-blog-docker-v1-dmesg.txt").read_text()
    (kill,) = kills_from_text(text)
    # The Killed line's fields, not only the summary's.
    assert kill.anon_rss_bytes == 509560 * 1024
    assert len(kill.raw) == 2


def test_without_the_year_a_yearless_syslog_stamp_is_no_time() -> None:
    text = (CORPUS / "14-pandora-49-journal-short.txt").read_text()
    (kill,) = kills_from_text(text)
    assert kill.time == 0.0


def test_syslog_inner_stamp_with_the_boot_time() -> None:
    text = (CORPUS / "02-for-linux-1001-syslog-reaper.txt").read_text()
    kills = kills_from_text(text, boot_time=1_000_000.0)
    assert kills[0].time == pytest.approx(1_000_000.0 + 514.682838)


_PIECES = st.sampled_from(
    [
        "oom-kill:constraint=CONSTRAINT_MEMCG,oom_memcg=/p,task_memcg=/p/",
        "task=x,pid=",
        "Memory cgroup out of memory: Killed process ",
        "Out of memory: Kill process 1 (x) score 1 or sacrifice child",
        "Tasks in /p are going to be killed due to memory.oom.group set",
        "oom_reaper: reaped process ",
        "Task in /docker/",
        " killed as a result of limit of ",
        "May  1 00:00:00 h kernel: [ 1.0] ",
        "2024-01-01T00:00:00,1+00:00 ",
        "cpuset=",
        "a" * 64,
        "/",
        "\n",
        "12",
        " (x) ",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.text(max_size=20)), max_size=40), st.integers(1, 3000))
def test_any_text_gives_kills_that_can_be_described(pieces: list[str], year: int) -> None:
    """Hostile, truncated, interleaved text: never raises, and every kill can be said."""
    for kill in kills_from_text("".join(pieces), year=year, boot_time=float(year)):
        assert kill.scope in ("", "container-limit", "shared-limit", "host")
        assert describe_kill(kill).startswith("OOM kill in ")

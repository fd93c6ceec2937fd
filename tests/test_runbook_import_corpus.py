"""Ten public Markdown runbooks by ten authors (tests/fixtures/runbooks/corpus/SOURCES.md),
imported as a new user would: every output passes `runbook check`, nothing the classifier
calls changing is `diagnose` or runnable read-only, and no command of the source is lost
(each appears in a step, placeholders filled, or is listed as not imported by its line)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from incident_console.cli import main
from incident_console.commands.runbook_show import import_stats
from incident_console.runbook.actions import step_argv
from incident_console.runbook.engine import Engine
from incident_console.runbook.importer import import_markdown, shorten
from incident_console.runbook.loader import parse_runbook
from incident_console.runbook.markdown_scan import Block, scan
from incident_console.runbook.schema import BUILTIN_VARIABLES, Runbook
from incident_console.runbook.shell_units import is_shell_block

CORPUS = Path(__file__).parent / "fixtures" / "runbooks" / "corpus"
FILES = sorted(p for p in CORPUS.glob("*.md") if p.name != "SOURCES.md")
README = Path(__file__).parent.parent / "README.md"
SHELL = {"bash", "sh", "shell", "console", "zsh", ""}


def _import(path: Path) -> tuple[str, Runbook]:
    text = import_markdown(path.read_text(encoding="utf-8"), source=path.name)
    return text, parse_runbook(text, path.name)


def _all_values(runbook: Runbook) -> dict[str, str]:
    return {name: f"value-of-{name}" for name in runbook.known_variables}


def test_the_corpus_has_ten_runbooks_by_ten_authors_with_sources() -> None:
    assert len(FILES) >= 10
    authors = {p.name.split("-")[0] for p in FILES}
    assert len(authors) == len(FILES)
    sources = (CORPUS / "SOURCES.md").read_text(encoding="utf-8")
    for path in FILES:
        row = next(
            (line for line in sources.splitlines() if line.startswith(f"| {path.name} ")), ""
        )
        assert "https://github.com/" in row, f"{path.name}: no source URL in SOURCES.md"
        assert row.count("|") >= 5, f"{path.name}: no licence column"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_import_passes_runbook_check(path: Path, tmp_path: Path) -> None:
    out = tmp_path / f"{path.stem}.yaml"
    result = CliRunner().invoke(main, ["runbook", "import", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    check = CliRunner().invoke(main, ["runbook", "check", str(out)])
    assert check.exit_code == 0, check.output
    assert "warning" not in check.output, check.output


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_changing_steps_are_remediate_and_refused_read_only(path: Path) -> None:
    _, runbook = _import(path)
    engine = Engine(runbook, _all_values(runbook), read_only=True)
    changing = 0
    for i, step in enumerate(runbook.steps):
        found = step.command_class
        if found is not None and found.changes:
            changing += 1
            assert step.kind == "remediate", (step.id, found)
            assert step.mutates
            assert engine.refusal(i).startswith("read-only"), step.id
            assert Engine(runbook, _all_values(runbook)).needs_confirmation(i)
        if found is not None:
            assert not found.never_ends and not found.interactive, (step.id, found)
        if step.kind == "diagnose" and step.run is not None:
            assert found is not None and found.read_only, (step.id, found)
    if path.stem.startswith(("raqibdev", "turothereal", "vineetkn", "mrpatt025")):
        assert changing, "these runbooks change the server: some step must say so"


def _source_commands(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every non-blank, non-comment line of the source's shell blocks."""
    doc = scan(path.read_text(encoding="utf-8"), path.name)
    out: list[tuple[int, str]] = []
    for item in doc.items:
        if not isinstance(item, Block) or item.lang not in SHELL:
            continue
        if item.lang == "" and not is_shell_block(item.lines):
            continue
        for offset, raw in enumerate(item.lines, 1):
            text = re.sub(r"^\$\s?", "", raw.strip())
            if text and not text.startswith("#"):
                out.append((item.line + offset, text))
    return out


def _normal(text: str) -> str:
    text = re.sub(r"<[A-Za-z][\w.:-]*>", "@", text)  # a placeholder, whatever it became
    text = re.sub(r"\{\{\s*[A-Za-z_]\w*\s*\}\}", "@", text)
    text = re.sub(r"\$\{?[A-Z][A-Z0-9_]+\}?", "@", text)
    text = re.sub(r"[A-Za-z][\w.]*[-_]@", "@", text)  # backend-<id> became {{container}}
    return " ".join(text.replace("'", "").replace('"', "").split())  # argv lists lose quotes


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_no_command_text_is_lost(path: Path) -> None:
    yaml_text, runbook = _import(path)
    step_text = "\n".join(
        _normal(s.run if isinstance(s.run, str) else " ".join(s.run))
        if s.run is not None
        else _normal(s.manual or "")
        for s in runbook.steps
    )
    skipped = {int(n) for n in re.findall(r"^#   line (\d+):", yaml_text, re.M)}
    lost = []
    for line, text in _source_commands(path):
        if line in skipped:
            continue
        command = _normal(re.sub(r"\s+#\s.*$", "", text))
        ssh = re.match(r"ssh \S+ '(.*)'$", command)
        if ssh:
            command = ssh.group(1)
        if command not in step_text:
            lost.append(f"line {line}: {text}")
    assert not lost, "\n".join(lost)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_run_step_renders_its_go_templates_and_variables(path: Path) -> None:
    _, runbook = _import(path)
    values = _all_values(runbook)
    for step in runbook.steps:
        if step.run is None:
            continue
        argv = step_argv(step, values)
        joined = " ".join(argv)
        for template in re.findall(r"\{\{\s*(?:\.|json |range |end|else)[^}]*\}\}", str(step.run)):
            assert template in joined, (step.id, template)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_a_step_with_an_unfilled_variable_cannot_run(path: Path) -> None:
    _, runbook = _import(path)
    declared = [name for name, decl in runbook.variables.items() if decl.default is None]
    values = {name: "x" for name in BUILTIN_VARIABLES} | {name: "" for name in declared}
    engine = Engine(runbook, values)
    for i, step in enumerate(runbook.steps):
        text = str(step.run or "")
        for name in declared:
            if "{{" + name + "}}" in text:
                assert f"--set {name}=" in engine.refusal(i), (step.id, name)


def test_placeholders_by_meaning_inside_their_tokens() -> None:
    runs = {
        p.stem.split("-")[0]: "\n".join(
            str(s.run if isinstance(s.run, str) else " ".join(s.run or [])) + (s.manual or "")
            for s in _import(p)[1].steps
        )
        for p in FILES
    }
    assert "cat /sys/fs/cgroup/cpu/docker/{{long_id}}/cpu.stat" in runs["autoshiftops"]
    assert "docker exec -it {{source_container}} sh" in runs["autoshiftops"]
    assert "nc -zv {{target_container_name}} {{port}}" in runs["autoshiftops"]
    assert "--filter 'container={{service}}'" in runs["raqibdev"]
    assert (
        '"name":"{{container}}","resources":{"limits":{"memory":"4Gi"}}' in runs["deepaucksharma"]
    )
    assert "kubectl patch deployment {{deployment_name}} -p '{" in runs["deepaucksharma"]


def test_loops_stay_whole_and_other_languages_are_manual() -> None:
    _, deep = _import(CORPUS / "deepaucksharma-container-startup-oom-kills.md")
    loop = [s for s in deep.steps if isinstance(s.run, str) and "while read line" in s.run]
    assert len(loop) == 1 and loop[0].run is not None and "done" in loop[0].run
    _, turo = _import(CORPUS / "turothereal-disk-full-logs.md")
    loop = [s for s in turo.steps if isinstance(s.run, str) and s.run.startswith("for log in")]
    assert len(loop) == 1 and "done | sort -hr | head -10" in str(loop[0].run)
    manual = [s.manual or "" for s in turo.steps if s.action == "manual"]
    assert any(m.startswith("Apply this yaml") and "max-size" in m for m in manual)
    assert any(m.startswith("Apply this json") and '"log-driver"' in m for m in manual)
    assert not any("log-driver" in str(s.run or "") for s in turo.steps)


def test_front_matter_title_prose_why_and_whole_word_titles() -> None:
    _, auto = _import(CORPUS / "autoshiftops-container-troubleshooting-playbook.md")
    assert auto.title.startswith("The Container Troubleshooting Playbook: OOMs")
    # Where the source has prose before its blocks, every step has it as its why.
    for name in ("autoshiftops-container-troubleshooting-playbook", "phuocbt9x-oom-solutions"):
        steps = _import(CORPUS / f"{name}.md")[1].steps
        assert all(s.why for s in steps), [s.id for s in steps if not s.why]
    every = [s for p in FILES for s in _import(p)[1].steps]
    with_why = [s for s in every if s.why]
    assert len(with_why) >= 0.45 * len(every), f"{len(with_why)} of {len(every)} have a why"
    for step in every:
        if step.title.endswith("…"):
            assert not step.title[:-1].endswith(" ") and len(step.title) <= 72


def test_shorten_cuts_between_words() -> None:
    text = "docker inspect --format '{{.State.Pid}}' backend-1 and a long tail of words here"
    short = shorten(text, 40)
    assert short.endswith("…") and len(short) <= 40
    assert text.startswith(short[:-1]) and text[len(short) - 1] == " "


def test_never_ending_and_interactive_commands_are_manual() -> None:
    _, chris = _import(CORPUS / "chrisguest75-out-of-memory.md")
    manual = {(s.manual or "").splitlines()[0]: s.manual or "" for s in chris.steps if s.manual}
    assert "never ends" in manual["docker events"]
    assert "never ends" in manual["docker stats"]
    assert "never ends" in manual["watch -n 1 docker ps"]
    assert "interactive" in manual["docker run -it --rm --memory=400m --name oom oom"]


def test_readme_table_matches_the_imports() -> None:
    readme = README.read_text(encoding="utf-8")
    for path in FILES:
        markdown = path.read_text(encoding="utf-8")
        stats = import_stats(markdown, import_markdown(markdown, source=path.name), path.name)
        row = (
            f"| {path.name} | {stats.code_blocks} | {stats.steps} | {stats.manual} | "
            f"{stats.confirm} | {stats.to_set} | {stats.skipped} |"
        )
        assert row in readme, f"README corpus table is out of date: {row}"

"""Loading runbooks: line-numbered errors for malformed files, the built-in, the seed import."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from incident_console.cli import main
from incident_console.runbook.importer import import_markdown, repair_mojibake
from incident_console.runbook.loader import load_runbook, parse_runbook

FIXTURES = Path(__file__).parent / "fixtures" / "runbooks"
SEED = Path("/work/shared/seed/runbook-oom-after-deploy.ru.md")
MALFORMED = sorted(FIXTURES.glob("*.yaml"))


def test_there_are_at_least_ten_malformed_runbooks() -> None:
    assert len(MALFORMED) >= 10


@pytest.mark.parametrize("path", MALFORMED, ids=lambda p: p.stem)
def test_malformed_runbook_gives_its_line_and_exit_1(path: Path) -> None:
    expect = re.match(r"# expect: (\d+) (.*)", path.read_text().splitlines()[0])
    assert expect, f"{path.name} has no '# expect: LINE TEXT' first line"
    line, text = int(expect.group(1)), expect.group(2)
    result = CliRunner().invoke(main, ["runbook", "check", str(path)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    first = result.output.splitlines()[0]
    assert first.startswith(f"{path}:{line}:"), first
    assert text in result.output


def test_builtin_runbook_is_valid_and_listed() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["runbook", "check", "oom-after-deploy"])
    assert result.exit_code == 0, result.output
    listing = runner.invoke(main, ["runbook", "list"])
    assert "oom-after-deploy" in listing.output
    shown = runner.invoke(main, ["runbook", "show", "oom-after-deploy"])
    assert "If it persists" in shown.output and "[verify]" in shown.output


def test_builtin_flow_and_never_the_export_step() -> None:
    runbook = load_runbook("oom-after-deploy")
    kinds = [s.kind for s in runbook.steps]
    # diagnose, then remediate, then verify: never back.
    assert kinds == sorted(kinds, key=["diagnose", "remediate", "verify"].index)
    for step in runbook.steps:
        assert not (isinstance(step.run, str) and "export" in step.run)
        assert not (isinstance(step.run, list) and "exec" in step.run)
    watch = runbook.step("watch")
    assert watch.wait == "{{watch}}"
    assert {c.name for c in watch.checks} == {
        "no_new_oom",
        "http_status",
        "workers_recycled",
        "limit_in_effect",
    }
    assert runbook.variables["watch"].default == "30m"
    assert len(runbook.followups) >= 5


def test_unknown_variable_points_at_the_scalar() -> None:
    text = "name: a\ntitle: t\nsteps:\n  - id: x\n    title: '{{nope}}'\n    kind: verify\n    wait: 1s\n"
    with pytest.raises(Exception) as info:
        parse_runbook(text, "a.yaml")
    assert str(info.value).startswith("a.yaml:5:")


@pytest.mark.skipif(not SEED.exists(), reason="the seed runbook is not in this checkout")
def test_seed_markdown_imports_into_a_runbook_check_accepts(tmp_path: Path) -> None:
    out = tmp_path / "seed.yaml"
    result = CliRunner().invoke(main, ["runbook", "import", str(SEED), "-o", str(out)])
    assert result.exit_code == 0, result.output
    check = CliRunner().invoke(main, ["runbook", "check", str(out)])
    assert check.exit_code == 0, check.output
    runbook = load_runbook(out)
    text = out.read_text(encoding="utf-8")
    assert "Проверка" in text  # the mojibake was repaired into Russian
    runs = [s.run for s in runbook.steps if s.run is not None]
    # ssh wrappers are gone, the command inside is kept.
    assert not any("ssh" in (r if isinstance(r, str) else " ".join(r)) for r in runs)
    assert 'dmesg -T | grep -i "out of memory" | tail -n 5' in runs
    manual = {s.manual.splitlines()[0] for s in runbook.steps if s.manual}
    assert "git push origin main" in manual
    export = [m for m in manual if "export GUNICORN_WORKERS" in m]
    assert export, "the docker exec export step must be manual"
    assert any("has no effect" in (s.manual or "") for s in runbook.steps)
    kinds = {s.kind for s in runbook.steps}
    assert kinds == {"diagnose", "remediate", "verify"}


def test_mojibake_repair_leaves_clean_text_alone() -> None:
    assert repair_mojibake("Проверка ✅") == ("Проверка ✅", "")
    broken = "Проверка ✅".encode().decode("mac_roman")
    assert repair_mojibake(broken)[0] == "Проверка ✅"


def test_import_unwraps_ssh_and_marks_laptop_steps() -> None:
    md = (
        "# Fix\n## Diagnose\n```bash\nssh deploy@203.0.113.10 'free -m'\n```\n"
        "## Deploy\n```bash\ngit push origin main\nscp a.yml deploy@h:/srv/\n"
        "docker restart backend-<id>\n```\n"
    )
    runbook = parse_runbook(import_markdown(md, source="fix.md"))
    steps = {s.title: s for s in runbook.steps}
    assert [s.run for s in runbook.steps if s.run] == [
        ["free", "-m"],
        ["docker", "restart", "{{container}}"],
    ]
    assert sum(1 for s in steps.values() if s.manual) == 2
    assert runbook.steps[-1].kind == "remediate"


def test_runbook_layer_does_not_load_textual() -> None:
    code = (
        "import sys\n"
        "import incident_console.runbook.loader, incident_console.runbook.engine\n"
        "import incident_console.runbook.actions, incident_console.runbook.importer\n"
        "import incident_console.runbook.session, incident_console.runbook.variables\n"
        "assert 'textual' not in sys.modules and 'rich' not in sys.modules, 'ui lib loaded'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

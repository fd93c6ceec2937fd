"""Malformed Markdown given to `runbook import`: a line-numbered message and exit 1, or a
runbook that says what it skipped (README: 0 written, 1 cannot be imported, 2 unreadable)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incident_console.cli import main
from incident_console.runbook.importer import MarkdownError, import_markdown
from incident_console.runbook.loader import load_runbook, parse_runbook


def _import(tmp_path: Path, data: bytes, name: str = "rb.md") -> tuple[int, str, Path]:
    source = tmp_path / name
    source.write_bytes(data)
    out = tmp_path / "out.yaml"
    result = CliRunner().invoke(main, ["runbook", "import", str(source), "-o", str(out)])
    assert "Traceback" not in result.output
    return result.exit_code, result.output, out


def test_empty_file_is_an_error_with_line_1(tmp_path: Path) -> None:
    code, output, out = _import(tmp_path, b"  \n\n")
    assert code == 1
    assert f"{tmp_path / 'rb.md'}:1: empty" in output
    assert not out.exists()


def test_binary_file_is_an_error_with_its_line(tmp_path: Path) -> None:
    code, output, _ = _import(tmp_path, b"# Title\n\n\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff")
    assert code == 1
    assert f"{tmp_path / 'rb.md'}:3: binary data" in output  # the first byte that is no text


def test_not_utf8_is_an_error_with_its_line(tmp_path: Path) -> None:
    code, output, _ = _import(tmp_path, "# Tïtle\n\n```bash\nfree -m\n```\n".encode("latin-1"))
    assert code == 1
    assert f"{tmp_path / 'rb.md'}:1: not UTF-8 text (byte 0xef)" in output


def test_unclosed_fence_names_the_line_it_was_opened_on(tmp_path: Path) -> None:
    md = b"# T\n\n## Diagnose\n\n```bash\nfree -m\n```\n\n## Fix\n\n~~~sh\ndocker restart web\n"
    code, output, out = _import(tmp_path, md)
    assert code == 1
    first = output.strip().splitlines()[0]
    assert first == f"{tmp_path / 'rb.md'}:11: code block opened here (~~~) is never closed"
    assert not out.exists()


def test_a_fence_inside_a_list_item_is_read(tmp_path: Path) -> None:
    md = (
        b"# Memory\n\n## Initial Assessment\n\n1. **Check current memory usage**\n"
        b"   ```bash\n   free -h\n   top -b -n 1\n   ```\n\n"
        b"2. **Clear caches**\n   ```bash\n   echo 3 > /proc/sys/vm/drop_caches\n   ```\n"
    )
    code, output, out = _import(tmp_path, md)
    assert code == 0, output
    runbook = load_runbook(out)
    runs = [s.run for s in runbook.steps]
    assert runs == [["free", "-h"], ["top", "-b", "-n", "1"], "echo 3 > /proc/sys/vm/drop_caches"]
    assert runbook.steps[0].why == "Check current memory usage"
    assert runbook.steps[2].kind == "remediate"


def test_an_unclosed_fence_inside_a_list_item_is_an_error(tmp_path: Path) -> None:
    md = b"# T\n\n- step one\n  ```bash\n  free -m\n- step two\n"
    code, output, _ = _import(tmp_path, md)
    assert code == 1
    assert f"{tmp_path / 'rb.md'}:4: code block opened here" in output


def test_crlf_reads_as_lf_and_says_so(tmp_path: Path) -> None:
    md = "# T\n\n## Diagnose\n\nMemory first.\n\n```bash\nfree -m\ndocker ps\n```\n"
    code, output, out = _import(tmp_path, md.replace("\n", "\r\n").encode())
    assert code == 0, output
    crlf = out.read_text(encoding="utf-8")
    assert "# Note: CRLF line endings were read as LF." in crlf
    code, _, out_lf = _import(tmp_path, md.encode(), "lf.md")
    lf = out_lf.read_text(encoding="utf-8")
    assert crlf.replace("# Note: CRLF line endings were read as LF.\n", "").replace(
        "rb.md", "x"
    ) == lf.replace("lf.md", "x").replace("name: lf", "name: rb")
    assert [s.run for s in load_runbook(out).steps] == [["free", "-m"], ["docker", "ps"]]


def test_what_is_not_imported_is_listed_by_line(tmp_path: Path) -> None:
    md = (
        b"# T\n\n```mermaid\nflowchart TD\n```\n\n```text\nOut of memory: Killed process 1\n```\n\n"
        b"```bash\n$ docker ps\nCONTAINER ID   IMAGE\n```\n\n```sql\nALTER SYSTEM SET x = 1;\n```\n"
    )
    code, output, out = _import(tmp_path, md)
    assert code == 0, output
    text = out.read_text(encoding="utf-8")
    assert "#   line 3: a diagram (mermaid): flowchart TD" in text
    assert "#   line 7: sample output (text): Out of memory: Killed process 1" in text
    assert "#   line 13: output shown in the block: CONTAINER ID IMAGE" in text
    runbook = load_runbook(out)
    assert [s.run for s in runbook.steps if s.run] == [["docker", "ps"]]
    sql = [s for s in runbook.steps if s.manual and "ALTER SYSTEM" in s.manual]
    assert sql and sql[0].manual is not None and sql[0].manual.startswith("Apply this sql")
    assert "3 part(s) not imported" in output


def test_markdown_with_no_code_is_a_runbook_that_says_so(tmp_path: Path) -> None:
    code, output, out = _import(tmp_path, b"# Notes\n\nRestart it if it hangs.\n")
    assert code == 0, output
    runbook = load_runbook(out)
    assert len(runbook.steps) == 1 and runbook.steps[0].action == "manual"
    assert "no shell code block" in (runbook.steps[0].manual or "")


def test_unreadable_file_exits_2(tmp_path: Path) -> None:
    source = tmp_path / "rb.md"
    source.write_text("# T\n", encoding="utf-8")
    source.chmod(0)
    try:
        result = CliRunner().invoke(main, ["runbook", "import", str(source)])
    finally:
        source.chmod(0o644)
    import os

    if os.geteuid() == 0:  # root reads it anyway: then it imports
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code == 2 and "rb.md" in result.output


_PIECES = [
    "# Title\n", "## Diagnose\n", "## Fix\n", "### Verify\n", "---\ntitle: x\n---\n", "text\n",
    "```bash\n", "```\n", "~~~\n", "```yaml\n", "```mermaid\n", "   ```sh\n", "- item\n",
    "docker ps\n", "docker restart <container>\n", "kubectl delete pod <pod-name>\n",
    "docker inspect -f '{{range .Mounts}}{{.Source}}{{end}}' <id>\n", "{{end}}\n", "{{x}}\n",
    "for i in 1 2; do\n", "done\n", "cat <<EOF\n", "EOF\n", "echo \\\n", "$ free -m\n",
    "# Output:\n", "ssh root@h 'docker ps'\n", "ssh root@h\n", "cd /srv\n", "X=1\n",
    "echo $CONTAINER\n", "'unclosed\n", "\r\n", "\t", "é", "<br>\n", "key: value\n",
]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PIECES), max_size=30).map("".join))
def test_any_import_passes_check_or_is_a_line_numbered_error(text: str) -> None:
    try:
        out = import_markdown(text, source="rb.md")
    except MarkdownError as exc:
        assert str(exc).startswith("rb.md:") and "\n" not in str(exc)
        return
    runbook = parse_runbook(out, "rb.yaml")  # raises RunbookError if check would fail
    for step in runbook.steps:
        found = step.command_class
        if found is not None and found.changes:
            assert step.kind == "remediate"


def test_a_shell_block_that_is_a_files_content_is_not_run(tmp_path: Path) -> None:
    md = (
        b"# T\n\n## Fix\n\n**In [backend/entrypoint.sh](../backend/entrypoint.sh):**\n"
        b'```bash\nexec gunicorn app.main:app \\\n    --workers "${GUNICORN_WORKERS:-2}"\n```\n'
    )
    code, output, out = _import(tmp_path, md)
    assert code == 0, output
    (step,) = load_runbook(out).steps
    assert step.action == "manual"
    assert (step.manual or "").startswith("Apply this content of backend/entrypoint.sh by hand")

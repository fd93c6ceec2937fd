"""`diagnose --kernel-log FILE`: saved kernel text instead of the live log.

A host that cannot be reached still gets the file's kills with the ids and cgroups the kernel
printed; a file that cannot be read is one line naming it, exit 2 (README: 2 = could not
diagnose).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

from click.testing import CliRunner

from incident_console.cli import main

CORPUS = Path(__file__).parent / "fixtures" / "kernel" / "corpus"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_missing_or_unreadable_file_is_one_line_naming_it_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "kern.log"
    result = CliRunner().invoke(main, ["diagnose", "--kernel-log", str(missing)])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"incident-console: --kernel-log {missing}: No such file or directory"
    )
    result = CliRunner().invoke(main, ["diagnose", "--kernel-log", str(tmp_path)])
    assert result.exit_code == 2 and f"--kernel-log {tmp_path}: Is a directory" in result.output
    binary = tmp_path / "core"
    binary.write_bytes(b"\x7fELF\x00\x00\x01")
    result = CliRunner().invoke(main, ["diagnose", "--kernel-log", str(binary)])
    assert result.exit_code == 2 and "not a text file" in result.output


def test_saved_log_of_an_unreachable_host_keeps_its_ids_and_scopes() -> None:
    target = f"ssh://nobody@127.0.0.1:{_closed_port()}"
    log = CORPUS / "29-lab-this-machine-shared-limit.txt"
    result = CliRunner().invoke(main, ["diagnose", target, "--kernel-log", str(log), "--json"])
    assert result.exit_code == 1, result.output  # a kill is a problem found
    doc = json.loads(result.output)
    (kill,) = doc["oom_kills"]
    assert kill["scope"] == "shared-limit" and kill["limit_cgroup"] == "/iop-shared-man14152"
    assert kill["victim"]["container_id"].startswith("80c37eb8fee1")
    assert kill["victim"]["cgroup"].startswith("/iop-shared-man14152/80c37eb8fee1")
    assert kill["culprit"] is None  # no samples of that host from before the kill
    assert doc["sources"]["kernel_log"]["method"] == "file"
    assert "containers not matched" in doc["sources"]["kernel_log"]["detail"]
    assert any("the limit of /iop-shared-man14152 ran out" in f["summary"] for f in doc["findings"])


def test_saved_host_wide_log_in_text() -> None:
    target = f"ssh://nobody@127.0.0.1:{_closed_port()}"
    log = CORPUS / "05-ert-7797-dmesg-iso-global.txt"
    result = CliRunner().invoke(main, ["diagnose", target, "--kernel-log", str(log)])
    assert result.exit_code == 1, result.output
    assert "OOM kills (1):" in result.output
    assert "2024-04-29 12:55:41Z  OOM kill in /user.slice/user-21417.slice/user@21417.service:" in (
        result.output
    )
    assert "perl[1440763] (anon-rss 57.6 GiB): the server ran out of memory" in result.output
    assert "in the saved kernel log" in result.output

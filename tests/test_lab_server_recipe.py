"""The lab server's image recipe: where the Debian mirror comes from, what names the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from incident_console.lab import vm
from incident_console.lab.model import LabError
from incident_console.lab.vm import mirror_from_apt


def test_debian_mirror_comes_from_apt_config(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example.org/debian-security\n"
        "Suites: trixie-security\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example.org/debian\nSuites: trixie trixie-updates\n"
    )
    assert mirror_from_apt(tmp_path) == "http://mirror.example.org/debian"
    (tmp_path / "sources.list.d" / "debian.sources").unlink()
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb [arch=amd64] http://ftp.example.net/debian bookworm main\n"
    )
    assert mirror_from_apt(tmp_path) == "http://ftp.example.net/debian"
    (tmp_path / "sources.list").unlink()
    assert mirror_from_apt(tmp_path) is None


def test_mirror_override_wins_and_none_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(vm.MIRROR_ENV, "http://env.example.org/debian")
    assert vm.debian_mirror() == "http://env.example.org/debian"
    assert vm.debian_mirror("http://flag.example.org/debian") == "http://flag.example.org/debian"
    monkeypatch.delenv(vm.MIRROR_ENV)
    monkeypatch.setattr(vm, "mirror_from_apt", lambda: None)
    with pytest.raises(LabError, match="--mirror"):
        vm.debian_mirror()


def test_the_cache_key_follows_the_recipe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(vm.CACHE_ENV, str(tmp_path))
    before = vm.image_dir()
    assert before.parent == tmp_path and before.name.endswith(vm.recipe_hash())
    monkeypatch.setitem(vm.RECIPE, "packages", vm.PACKAGES + ",strace")
    assert vm.image_dir() != before


def test_an_interrupted_build_folder_is_removed_without_leaving_it(tmp_path: Path) -> None:
    build = tmp_path / ".build-x-1"
    (build / "rootfs" / "etc").mkdir(parents=True)
    (build / "rootfs" / "etc" / "hostname").write_text("x\n")
    vm.remove_build(build)
    assert not build.exists()
    vm.remove_build(build)  # nothing there: nothing to do

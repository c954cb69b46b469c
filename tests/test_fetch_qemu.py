"""Tests of scripts/fetch-qemu that need no network (plus one check of real fetched trees)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from helpers.qemu_trees import QemuTree

FETCH_QEMU_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "fetch-qemu"

# Made-up host names only (.invalid never resolves): no real mirror is named here.
MIRROR = "http://apt-mirror.invalid/debian"


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Return the finished run of scripts/fetch-qemu with the current interpreter."""
    return subprocess.run(
        [sys.executable, str(FETCH_QEMU_SCRIPT), *args],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)


# --------------------------------------------------------------------------
# Debian version ordering
# --------------------------------------------------------------------------

VERSION_PAIRS = [
    # (a, b, expected sign of compare(a, b))
    ("1:7.2+dfsg-7", "10.2.2+ds-1", 1),               # epoch beats everything
    ("0:1.0", "1.0", 0),                              # epoch 0 is the default
    ("1:10.2.2+ds-1", "1:11.1.3+ds-1", -1),
    ("1:11.1.2+ds-3", "1:11.1.3+ds-1", -1),
    ("1:10.0.13+ds-0+deb13u1", "1:10.0.13+ds-1", -1),  # stable update below the unstable upload
    ("7.2+dfsg-7+deb12u18", "7.2+dfsg-7+deb12u9", 1),  # digit runs compare as numbers
    ("1.0~rc1", "1.0", -1),                           # ~ sorts before the end
    ("1.0~~", "1.0~", -1),
    ("1.0~rc1-1", "1.0~rc2-1", -1),
    ("10.2.0~rc1+ds-1", "10.2.0+ds-1", -1),
    ("1.0+ds", "1.0", 1),                             # + after the end
    ("1.0a", "1.0+", -1),                             # letters before other symbols
    ("1.01", "1.1", 0),                               # leading zeros do not count
    ("1.0", "1.0-0", 0),                              # missing revision equals "0"
    ("2.0-1", "2.0-1", 0),
    ("1.2-3-4", "1.2-3-5", -1),                       # revision is after the last hyphen
]


@pytest.mark.parametrize(("a", "b", "expected"), VERSION_PAIRS)
def test_compare_debian_versions(fetch_qemu_module: ModuleType, a: str, b: str, expected: int) -> None:
    assert fetch_qemu_module.compare_debian_versions(a, b) == expected
    assert fetch_qemu_module.compare_debian_versions(b, a) == -expected


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg not installed")
@pytest.mark.parametrize(("a", "b", "expected"), VERSION_PAIRS)
def test_version_pairs_agree_with_dpkg(a: str, b: str, expected: int) -> None:
    # Keeps the expectations above honest: dpkg is the reference.
    relation = {1: "gt", 0: "eq", -1: "lt"}[expected]
    assert subprocess.run(["dpkg", "--compare-versions", a, relation, b], check=False).returncode == 0


def test_sort_newest_first(fetch_qemu_module: ModuleType) -> None:
    listed = ["1:10.2.2+ds-1", "1:11.1.2+ds-3", "1:11.1.3+ds-1", "1:10.2.2+ds-1", "1:11.1.3~rc1+ds-1"]
    assert fetch_qemu_module.sort_newest_first(listed) == [
        "1:11.1.3+ds-1", "1:11.1.3~rc1+ds-1", "1:11.1.2+ds-3", "1:10.2.2+ds-1"]


@pytest.mark.parametrize(("debian", "upstream"), [
    ("1:7.2+dfsg-7+deb12u18", "7.2"),
    ("1:10.0.13+ds-0+deb13u1", "10.0.13"),
    ("1:10.2.2+ds-1", "10.2.2"),
    ("11.0.0~rc1+ds-1", "11.0.0"),
])
def test_upstream_of(fetch_qemu_module: ModuleType, debian: str, upstream: str) -> None:
    assert fetch_qemu_module.upstream_of(debian) == upstream


# --------------------------------------------------------------------------
# apt-cache showsrc parsing
# --------------------------------------------------------------------------

# Captured from `apt-cache showsrc qemu` on sid (long fields shortened), plus
# a made-up other source package that also builds a binary named qemu.
SHOWSRC_SAMPLE = """\
Package: qemu
Binary: qemu-system, qemu-block-extra, qemu-system-data, qemu-utils, qemu-guest-agent
Version: 1:10.2.2+ds-1
Maintainer: Debian QEMU Team <qemu-team@lists.invalid>
Build-Depends: debhelper-compat (= 13), python3-venv:any, meson (>> 1.5.0~), ninja-build, flex, bison
Architecture: linux-any all
Format: 3.0 (quilt)
Files:
 9779358a11dbeb946f0edd0d8eb53733 10994 qemu_10.2.2+ds-1.dsc
 824d4a6249599e9f05eacb4148b10469 38669728 qemu_10.2.2+ds.orig.tar.xz
 5e42d3b941763a1be2d5d84a0211b166 127324 qemu_10.2.2+ds-1.debian.tar.xz
Checksums-Sha256:
 f1684b3aa5ec500c3389d346c6501dee45041ea91656c6556d4da9023b7987dd 10994 qemu_10.2.2+ds-1.dsc
 be05230fe47a6937cd29f28f562932c8125f9c93c2a82c625198f7a4aa601dfb 38669728 qemu_10.2.2+ds.orig.tar.xz
 ddf75aceab4f8f77374f3cb34fc97b41514895aeb293ce8b2ddd5e072bb0f5c0 127324 qemu_10.2.2+ds-1.debian.tar.xz
Package-List: 
 qemu-system deb otherosfs optional arch=amd64,arm64 profile=!pkg.qemu.omit-system
 qemu-utils deb otherosfs optional arch=alpha,amd64
Testsuite: autopkgtest
Directory: pool/main/q/qemu
Priority: optional
Section: otherosfs

Package: qemu
Binary: qemu-system, qemu-block-extra, qemu-system-data, qemu-utils, qemu-guest-agent
Version: 1:11.1.3+ds-1
Format: 3.0 (quilt)
Files:
 0123456789abcdef0123456789abcdef 11021 qemu_11.1.3+ds-1.dsc
 0123456789abcdef0123456789abcdef 39187244 qemu_11.1.3+ds.orig.tar.xz
 0123456789abcdef0123456789abcdef 391 qemu_11.1.3+ds.orig.tar.xz.asc
 0123456789abcdef0123456789abcdef 127900 qemu_11.1.3+ds-1.debian.tar.xz
Directory: pool/main/q/qemu

Package: qemu-compat-shim
Binary: qemu
Version: 2.0-1
Files:
 0123456789abcdef0123456789abcdef 900 qemu-compat-shim_2.0-1.dsc
 0123456789abcdef0123456789abcdef 5000 qemu-compat-shim_2.0.orig.tar.gz
Directory: pool/main/q/qemu-compat-shim

"""


def test_parse_showsrc_keeps_only_qemu_stanzas(fetch_qemu_module: ModuleType) -> None:
    versions = fetch_qemu_module.parse_showsrc(SHOWSRC_SAMPLE)
    assert [v.version for v in versions] == ["1:10.2.2+ds-1", "1:11.1.3+ds-1"]
    assert versions[0].files[1] == ("qemu_10.2.2+ds.orig.tar.xz", 38669728)


def test_parse_showsrc_finds_orig_tarball_not_signature(fetch_qemu_module: ModuleType) -> None:
    versions = fetch_qemu_module.parse_showsrc(SHOWSRC_SAMPLE)
    assert versions[0].orig_tarball() == ("qemu_10.2.2+ds.orig.tar.xz", 38669728)
    assert versions[1].orig_tarball() == ("qemu_11.1.3+ds.orig.tar.xz", 39187244)


def test_parse_showsrc_empty(fetch_qemu_module: ModuleType) -> None:
    assert fetch_qemu_module.parse_showsrc("") == []


# --------------------------------------------------------------------------
# Reading the mirror from the apt configuration
# --------------------------------------------------------------------------

DEB822_SOURCES = f"""\
# A security stanza first: the script must not pick it.
Types: deb
URIs: {MIRROR}-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://disabled.invalid/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb deb-src
# Comment inside a stanza.
URIs: {MIRROR}/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

ONE_LINE_SOURCES = f"""\
# Third-party repository first: not Debian's archive.
deb [signed-by=/usr/share/keyrings/vendor.gpg] https://vendor.invalid/apt nodistro main
deb {MIRROR}-security bookworm-security main
deb [arch=amd64 signed-by=/etc/apt/keyrings/debian.gpg] {MIRROR} bookworm main contrib # trailing comment
"""


def test_mirror_from_deb822_sources(fetch_qemu_module: ModuleType, tmp_path: Path) -> None:
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    (parts / "debian.sources").write_text(DEB822_SOURCES)
    found = fetch_qemu_module.find_debian_mirror(tmp_path / "sources.list", parts)
    assert found == (MIRROR, "/usr/share/keyrings/debian-archive-keyring.gpg")


def test_mirror_from_one_line_sources_list(fetch_qemu_module: ModuleType, tmp_path: Path) -> None:
    sources_list = tmp_path / "sources.list"
    sources_list.write_text(ONE_LINE_SOURCES)
    found = fetch_qemu_module.find_debian_mirror(sources_list, tmp_path / "absent.d")
    assert found == (MIRROR, "/etc/apt/keyrings/debian.gpg")


def test_mirror_one_line_without_options(fetch_qemu_module: ModuleType, tmp_path: Path) -> None:
    sources_list = tmp_path / "sources.list"
    sources_list.write_text(f"deb-src {MIRROR} sid main\n")
    assert fetch_qemu_module.find_debian_mirror(sources_list, tmp_path / "absent.d") == (MIRROR, None)


def test_mirror_sources_list_first_and_disabled_files_ignored(
        fetch_qemu_module: ModuleType, tmp_path: Path) -> None:
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    (parts / "a.list.disabled").write_text("deb http://disabled.invalid/debian bookworm main\n")
    (parts / "b.sources").write_text(DEB822_SOURCES.replace(MIRROR, "http://second.invalid/debian"))
    sources_list = tmp_path / "sources.list"
    # Only a third-party entry in sources.list: the parts folder decides.
    sources_list.write_text("deb https://vendor.invalid/apt nodistro main\n")
    found = fetch_qemu_module.find_debian_mirror(sources_list, parts)
    assert found is not None and found[0] == "http://second.invalid/debian"
    sources_list.write_text(f"deb {MIRROR} trixie main\n")
    assert fetch_qemu_module.find_debian_mirror(sources_list, parts) == (MIRROR, None)


def test_no_mirror(fetch_qemu_module: ModuleType, tmp_path: Path) -> None:
    assert fetch_qemu_module.find_debian_mirror(tmp_path / "none", tmp_path / "none.d") is None


# --------------------------------------------------------------------------
# Unpacking
# --------------------------------------------------------------------------

def _make_tarball(path: Path, top: str, files: dict[str, str]) -> Path:
    """Return `path` after writing a .tar.xz holding `files` under folder `top`."""
    source = path.parent / f"src-{top}"
    for name, text in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(text)
    with tarfile.open(path, "w:xz") as tar:
        tar.add(source, arcname=top)
    return path


def test_unpack_strips_top_folder(fetch_qemu_module: ModuleType, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    tarball = _make_tarball(tmp_path / "qemu_9.9.9+ds.orig.tar.xz", "qemu-9.9.9",
                            {"VERSION": "9.9.9\n", "migration/migration.c": "int x;\n"})
    tree = fetch_qemu_module.unpack_tarball(tarball, cache)
    assert tree == cache / "9.9.9"
    assert (tree / "VERSION").read_text() == "9.9.9\n"
    assert (tree / "migration" / "migration.c").is_file()
    assert sorted(p.name for p in cache.iterdir()) == ["9.9.9"]  # no temporaries left


def test_unpack_without_version_leaves_nothing(fetch_qemu_module: ModuleType, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    tarball = _make_tarball(tmp_path / "qemu_1.0.orig.tar.xz", "qemu-1.0", {"README": "x\n"})
    with pytest.raises(fetch_qemu_module.FetchError, match="VERSION"):
        fetch_qemu_module.unpack_tarball(tarball, cache)
    assert list(cache.iterdir()) == []


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def test_apt_get_missing_is_a_one_line_error(tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    result = run_script("--cache", str(tmp_path / "cache"), "sid",
                        env={"PATH": str(empty_bin), "HOME": str(tmp_path)})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "fetch-qemu: error: apt-get not found on PATH: fetching needs Debian's apt and GNU tar"]


def test_print_path_unknown_suite_is_a_usage_error(tmp_path: Path) -> None:
    result = run_script("--cache", str(tmp_path), "--print-path", "hamm")
    assert result.returncode == 2
    assert "unknown suite 'hamm'" in result.stderr
    assert result.stdout == ""


def test_print_path_not_fetched(tmp_path: Path) -> None:
    result = run_script("--cache", str(tmp_path), "--print-path", "sid")
    assert result.returncode == 1
    assert "sid is not fetched" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_suite_and_no_suite_are_usage_errors(tmp_path: Path) -> None:
    assert run_script("--cache", str(tmp_path), "woody").returncode == 2
    assert run_script("--cache", str(tmp_path)).returncode == 2


def test_print_path_and_list_read_records(tmp_path: Path) -> None:
    tree = tmp_path / "10.2.2"
    tree.mkdir()
    (tree / "VERSION").write_text("10.2.2\n")
    record = {"suite": "sid", "debian_version": "1:10.2.2+ds-1", "version": "10.2.2", "path": str(tree)}
    (tmp_path / "sid.json").write_text(json.dumps(record))
    printed = run_script("--cache", str(tmp_path), "--print-path", "sid")
    assert (printed.returncode, printed.stdout) == (0, f"{tree}\n")
    listed = run_script("--cache", str(tmp_path), "--list")
    assert (listed.returncode, listed.stdout) == (0, f"sid\t10.2.2\t{tree}\n")


def test_fetch_skips_recorded_suite_without_network(tmp_path: Path) -> None:
    # A complete record is enough: no apt call is made (apt-get is on PATH but unused).
    tree = tmp_path / "7.2.0"
    tree.mkdir()
    (tree / "VERSION").write_text("7.2.0\n")
    record = {"suite": "bookworm", "debian_version": "1:7.2+dfsg-7", "version": "7.2.0", "path": str(tree)}
    (tmp_path / "bookworm.json").write_text(json.dumps(record))
    if shutil.which("apt-get") is None:
        pytest.skip("apt-get not installed")
    result = run_script("--cache", str(tmp_path), "bookworm")
    assert result.returncode == 0, result.stderr
    assert "bookworm: already fetched QEMU 7.2.0" in result.stderr


# --------------------------------------------------------------------------
# Real fetched trees
# --------------------------------------------------------------------------

@pytest.mark.qemu
def test_records_match_tree_versions(
        fetch_qemu_module: ModuleType, qemu_cache: Path, any_qemu_tree: QemuTree) -> None:
    for suite in any_qemu_tree.suites:
        record = fetch_qemu_module.read_record(qemu_cache, suite)
        assert record is not None
        version = (Path(record["path"]) / "VERSION").read_text().strip()
        assert record["suite"] == suite
        assert record["version"] == version
        assert version.split(".")[:2] == any_qemu_tree.family.split(".")
        # The Debian upstream version names the same release (7.2 -> 7.2.0).
        upstream = fetch_qemu_module.upstream_of(record["debian_version"])
        assert version == upstream or version.startswith(upstream + ".")

"""Opening a tree (`open_tree`) and file discovery: which of its files are indexed, with their size and mtime."""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import stat as _stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from chaintrace.errors import UsageError
from chaintrace.source.qapi_schema import SCHEMA_SUFFIX, is_schema

# Folders that hold no code of the project itself, or build output.
DEFAULT_EXCLUDES = ("roms/*", "subprojects/*", "build/*", "build-*/*", ".git/*", "*/.git/*", "tests/tcg/*/*.S")
SOURCE_SUFFIXES = (".c", ".h", ".hx", ".inc", SCHEMA_SUFFIX)  # schema files: QAPI's only (qapi_schema.is_schema)
# A generated 50 MB file is data, not code: skip it and say so.
MAX_FILE_BYTES = 8 * 1024 * 1024


def inside(root: str | Path, path: str | Path) -> bool:
    """Return True when `path` (relative to `root`; symbolic links resolved) lies inside the folder `root`."""
    root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(root, path))
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def read_tree_file(root: str | Path, path: str | Path, limit: int = MAX_FILE_BYTES, follow: bool = False) -> bytes:
    """Return the bytes of the tree's file `path` (relative to `root`); ValueError says why not.

    Only a regular file inside the tree is read (a link leaving it, unless
    `follow` (`--follow-symlinks`), a FIFO, a device or a socket is refused,
    so a read never blocks or runs on forever), and at most `limit` bytes,
    checked on the opened descriptor (a size the scan saw may have changed since).
    """
    full = os.path.join(os.fspath(root), path)
    if not follow and not inside(root, path):
        raise ValueError(f"links outside the tree (to {os.path.realpath(full)})")
    try:
        fd = os.open(full, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # O_NONBLOCK: opening a FIFO does not wait
    except OSError as error:
        raise ValueError(f"unreadable: {error.strerror}") from None
    try:
        found = os.fstat(fd)
        if not _stat.S_ISREG(found.st_mode):
            raise ValueError(f"not a regular file ({_kind(found.st_mode)})")
        if found.st_size > limit:
            raise ValueError(f"too large ({found.st_size // 1_000_000} MB)")
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as error:
        raise ValueError(f"unreadable: {error.strerror}") from None
    finally:
        os.close(fd)
    if left <= 0:
        raise ValueError(f"too large (over {limit // 1_000_000} MB)")
    return b"".join(chunks)


def read_tree_text(root: str | Path, path: str | Path, limit: int = MAX_FILE_BYTES, follow: bool = False) -> str | None:
    """Return the text of the tree's file `path` (undecodable bytes replaced), or None when `read_tree_file` refuses it."""
    try:
        return read_tree_file(root, path, limit, follow).decode("utf-8", "replace")
    except ValueError:
        return None


def _kind(mode: int) -> str:
    for test, name in ((_stat.S_ISFIFO, "a FIFO"), (_stat.S_ISCHR, "a character device"),
                       (_stat.S_ISBLK, "a block device"), (_stat.S_ISSOCK, "a socket"), (_stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a file"


class SourceFile(NamedTuple):
    """A file to index: path relative to the tree root (`/`-separated), size and mtime in ns."""

    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file left out, with the reason in a few words."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """Exclude and include globs (matched against relative paths), and whether links leaving the tree are followed."""

    excludes: tuple[str, ...] = DEFAULT_EXCLUDES
    includes: tuple[str, ...] = ()
    follow_symlinks: bool = False  # --follow-symlinks: index what links lead to outside the tree


def unchanged_since(tree: Path, folders: dict[str, int], files: Iterable[tuple[str, int, int]]) -> bool:
    """Return True when every folder still has its mtime and every file (path, size, mtime_ns) its size and mtime.

    Then a scan would find the same files: adding, removing or renaming an
    entry changes its folder's mtime, and editing a file its own.
    """
    try:
        root = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    stat = os.stat
    try:  # relative to the open root: no path joined per file
        for folder, mtime_ns in folders.items():
            if stat(folder or ".", dir_fd=root).st_mtime_ns != mtime_ns:
                return False
        for path, size, mtime_ns in files:
            found = stat(path, dir_fd=root)
            if found.st_mtime_ns != mtime_ns or found.st_size != size:
                return False
    except OSError:
        return False
    finally:
        os.close(root)
    return True


@dataclass(frozen=True, slots=True)
class OpenTree:
    """A source tree as every step after `open_tree` sees it: checked once, options and version read once.

    `root` is resolved (the store names the tree by it); `options` are the
    scan globs of the defaults, `chaintrace.toml` and the command line;
    `version` is the first line of the tree's `VERSION` file, or "".
    """

    root: Path
    options: ScanOptions = ScanOptions()
    version: str = ""


def open_tree(tree: Path | OpenTree, excludes: list[str] | None = None, includes: list[str] | None = None,
              follow_symlinks: bool = False) -> OpenTree:
    """Return the tree opened: its root checked and resolved, its options and version read (an OpenTree as it is).

    Raises UsageError when the tree is missing or not a folder, or its `chaintrace.toml` is not TOML.
    """
    if isinstance(tree, OpenTree):
        if excludes or includes or follow_symlinks:
            raise ValueError("the scan options of an open tree are already read")
        return tree
    root = check_tree(Path(tree))
    options = read_options(root, excludes, includes)
    if follow_symlinks:
        options = ScanOptions(options.excludes, options.includes, follow_symlinks=True)
    return OpenTree(root, options, read_version(root))


def check_tree(tree: Path) -> Path:
    """Return the tree's resolved path, or raise UsageError when it is missing or not a folder."""
    if not str(tree) or str(tree) != "." and not tree.parts:
        raise UsageError("no tree given (an empty path)")
    if not tree.exists():
        raise UsageError(f"no such folder: {tree}")
    if not tree.is_dir():
        raise UsageError(f"not a folder: {tree} (give the root of a source tree)")
    return tree.resolve()


def read_version(root: Path) -> str:
    """Return the first line of the tree's `VERSION` file, or "" when there is none."""
    try:
        return read_tree_file(root, "VERSION", 4096).decode("utf-8").strip().splitlines()[0]
    except (ValueError, IndexError):  # missing, not a file, too long or not UTF-8 (UnicodeDecodeError)
        return ""


def read_options(tree: Path, excludes: list[str] | None = None, includes: list[str] | None = None) -> ScanOptions:
    """Return scan options: defaults, then `chaintrace.toml` at the tree root, then the command line."""
    options_excludes = list(DEFAULT_EXCLUDES)
    options_includes: list[str] = []
    config = tree / "chaintrace.toml"
    if config.is_file():
        import tomllib  # here: a warm trace of a tree without one never pays for the import

        try:
            data = tomllib.loads(read_tree_file(tree, "chaintrace.toml", 1 << 20).decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise UsageError(f"{config}: not valid TOML: {error}") from None
        except ValueError as error:
            raise UsageError(f"{config}: {error}") from None
        section = data.get("index", data)
        if not isinstance(section, dict):
            raise UsageError(f"{config}: [index] must be a table, not {section!r}")
        for key, into in (("exclude", options_excludes), ("include", options_includes)):
            globs = section.get(key, [])
            if not isinstance(globs, list) or not all(isinstance(glob, str) for glob in globs):
                raise UsageError(f"{config}: {key} must be a list of glob strings, not {globs!r}")
            into += globs
    options_excludes += excludes or []
    options_includes += includes or []
    return ScanOptions(tuple(options_excludes), tuple(options_includes))


@functools.lru_cache(maxsize=64)
def _globs(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """Return one regex matching any of the globs (fnmatch semantics), or None when there are none."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


def _excluded(path: str, options: ScanOptions) -> bool:
    includes = _globs(options.includes)
    if includes is not None and includes.match(path):
        return False
    excludes = _globs(options.excludes)
    return excludes is not None and (excludes.match(path) is not None or excludes.match(path + "/") is not None)


def scan(tree: Path, options: ScanOptions | None = None,
         folders: dict[str, int] | None = None) -> tuple[list[SourceFile], list[Skipped]]:
    """Return the tree's source files sorted by path, and the files skipped with their reasons.

    Links to files inside the tree are indexed under their own path, links to folders inside it are not
    followed (their files are walked where they are); links leaving the tree are skipped and named (with
    `follow_symlinks`, indexed under their own path, each real folder once, so a loop ends), and so is
    anything that is not a regular file (a FIFO, a device, a socket). `folders`, when given, receives each
    folder walked with its mtime (read before its listing: see `unchanged_since`).
    """
    options = options or ScanOptions()
    files: list[SourceFile] = []
    skipped: list[Skipped] = []
    stack = [""]
    root = str(tree)  # plain strings: a pathlib join per folder costs more than the folder's scan
    followed = {os.path.realpath(root)}  # real folders walked through links (--follow-symlinks)
    if folders is not None:
        folders[""] = os.stat(root).st_mtime_ns
    while stack:
        relative = stack.pop()
        try:
            with os.scandir(os.path.join(root, relative) if relative else root) as listing:
                entries = list(listing)
        except OSError as error:
            skipped.append(Skipped(relative or ".", f"unreadable folder: {error.strerror}"))
            continue
        prefix = f"{relative}/" if relative else ""
        for entry in entries:
            name = entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    path = prefix + name
                    if not _excluded(path + "/x", options) or any(p.startswith(path + "/") for p in options.includes):
                        stack.append(path)
                        if folders is not None:
                            folders[path] = entry.stat(follow_symlinks=False).st_mtime_ns
                    continue
                if entry.is_symlink() and entry.is_dir():  # a link to a folder
                    _linked_folder(root, prefix + name, options, followed, stack, skipped, folders)
                    continue
                if not name.endswith(SOURCE_SUFFIXES):  # most of a tree: checked before any path is built
                    continue
                path = prefix + name
                if _excluded(path, options) or (name.endswith(SCHEMA_SUFFIX) and not is_schema(path)):
                    continue
                if not options.follow_symlinks and entry.is_symlink() and not inside(root, path):
                    skipped.append(Skipped(path, f"links outside the tree (to {os.path.realpath(entry.path)}; "
                                                 "--follow-symlinks indexes it)"))
                    continue
                stat = entry.stat()
            except OSError as error:
                skipped.append(Skipped(prefix + name, f"unreadable: {error.strerror}"))
                continue
            reason = _not_indexed(path, stat)
            if reason:
                skipped.append(Skipped(path, reason))
            else:
                files.append(SourceFile(path, stat.st_size, stat.st_mtime_ns))
    files.sort(key=lambda f: f.path)
    return files, skipped


def _not_indexed(path: str, stat: os.stat_result) -> str:
    """Return why the file `path` of this `stat` is not indexed, or "" when it is."""
    if not path.isascii():
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:  # bytes the file system decoded with surrogates: no text can hold them
            return "its name is not UTF-8 (the cache names files by their path, as text)"
    if not _stat.S_ISREG(stat.st_mode):
        return f"not a regular file ({_kind(stat.st_mode)})"
    if stat.st_size > MAX_FILE_BYTES:
        return f"too large ({stat.st_size // 1_000_000} MB)"
    return ""


def _linked_folder(root: str, path: str, options: ScanOptions, followed: set[str], stack: list[str],
                   skipped: list[Skipped], folders: dict[str, int] | None) -> None:
    """Walk the folder a link at `path` leads to, under the link's path, when it leaves the tree and was not
    walked yet, with `follow_symlinks`; without, name it as skipped. (Inside the tree, its files are walked
    where they are.)"""
    real = os.path.realpath(os.path.join(root, path))
    if inside(root, path) or _excluded(path + "/x", options):
        return
    if not options.follow_symlinks:
        skipped.append(Skipped(path, f"links outside the tree (to {real}; --follow-symlinks walks it)"))
        return
    holds_the_tree = os.path.realpath(root).startswith(real.rstrip(os.sep) + os.sep)  # a link to `..` would walk it twice
    if holds_the_tree or real in followed:
        return
    followed.add(real)
    stack.append(path)
    if folders is not None:
        folders[path] = os.stat(real).st_mtime_ns

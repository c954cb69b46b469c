"""The bench's guest: Debian's kernel, and an initramfs whose /init is our static dirtier."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path.home() / ".cache" / "chaintrace" / "bench"


class SetupError(RuntimeError):
    """Something the bench needs is missing; the message says what to run."""


def kernel() -> Path:
    """Return the guest kernel: a vmlinuz that setup.sh extracted from Debian's linux-image package."""
    found = sorted((CACHE / "kernel" / "boot").glob("vmlinuz-*"))
    if not found:
        raise SetupError(f"no guest kernel under {CACHE / 'kernel'}: run bench/model_vs_qemu/setup.sh")
    return found[-1]


def qemu_binary() -> str:
    """Return the path of qemu-system-x86_64."""
    binary = shutil.which("qemu-system-x86_64")
    if binary is None:
        raise SetupError("qemu-system-x86_64 not found: run bench/model_vs_qemu/setup.sh")
    return binary


def build_dirtier(work: Path) -> Path:
    """Compile dirtier.c statically into `work` and return the binary."""
    binary = work / "dirtier"
    subprocess.run(["gcc", "-static", "-O2", "-o", str(binary), str(HERE / "dirtier.c")], check=True)
    return binary


def _newc(name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0), ino: int = 0) -> bytes:
    """Return one entry of a cpio archive in the `newc` format the kernel unpacks."""
    encoded = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
    header = b"070701" + b"".join(b"%08X" % value for value in fields)
    entry = header + encoded
    entry += b"\0" * (-len(entry) % 4)
    entry += data + b"\0" * (-len(data) % 4)
    return entry


def build_initramfs(work: Path) -> Path:
    """Write an initramfs (uncompressed newc cpio) with /init = the dirtier, /dev/console, /proc; return it."""
    init = build_dirtier(work).read_bytes()
    entries = [
        _newc("dev", stat.S_IFDIR | 0o755, ino=1),
        _newc("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1), ino=2),
        _newc("proc", stat.S_IFDIR | 0o555, ino=3),
        _newc("init", stat.S_IFREG | 0o755, init, ino=4),
        _newc("TRAILER!!!", 0),
    ]
    archive = work / "initramfs.cpio"
    archive.write_bytes(b"".join(entries))
    return archive

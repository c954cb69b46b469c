"""Ask the C allocator to return large freed blocks to the system: the resolver's peak of memory is its heap's.

glibc's malloc gives a block of 128 KiB or more a mapping of its own, and
returns it to the system when it is freed, but it raises that threshold to
the size of each such block freed (up to 32 MiB): after the first large
list or table of the resolve is freed, every block below that size is
carved from the heap, where the small objects around it keep it from ever
being given back. Resolving QEMU 10.2's graph allocates and frees many such
blocks (the columns of each file's facts, the tables of its symbols, the
lists of its value flow); fixed at 128 KiB, the threshold took its build's
peak RSS from 949 to 928 MB (`bench/phases.py --resolve`, the same run).
"""

from __future__ import annotations

import sys

_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)
_THRESHOLD = 128 * 1024  # glibc's default, kept from moving


def keep_large_blocks_mapped() -> bool:
    """Fix glibc's mmap threshold at 128 KiB for this process; return True when set, False where the C library is
    not glibc (nothing changes there)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # here: a warm trace, which resolves nothing, never loads it

    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):  # no mallopt: another allocator, with its own policy
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(_M_MMAP_THRESHOLD, _THRESHOLD) == 1

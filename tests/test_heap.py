"""The resolve asks glibc to keep large blocks in mappings of their own (store.heap): set where the C library is glibc."""

from __future__ import annotations

import platform
import sys

from chaintrace.store.heap import keep_large_blocks_mapped


def test_the_mmap_threshold_is_fixed_on_glibc_and_left_alone_elsewhere() -> None:
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert keep_large_blocks_mapped() is glibc

"""The malloc settings that keep freed array memory for reuse (allocator.py)."""

import ctypes.util
import sys

import numpy as np
import pytest

import sensorium
from sensorium import allocator

glibc = sys.platform.startswith("linux") and ctypes.util.find_library("c") is not None \
    and hasattr(ctypes.CDLL(ctypes.util.find_library("c")), "gnu_get_libc_version")


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


@pytest.mark.skipif(not glibc, reason="mallopt is glibc's")
def test_a_freed_array_stays_in_the_heap_for_the_next_one():
    assert allocator.keep_freed_memory() is True
    assert allocator.keep_freed_memory() is True  # idempotent
    mallinfo2 = ctypes.CDLL(ctypes.util.find_library("c")).mallinfo2
    mallinfo2.restype = _Mallinfo2
    size = 16 * 2**20  # above glibc's default mmap threshold, below ours
    mapped = mallinfo2().hblkhd
    big = np.ones(size // 8)
    assert mallinfo2().hblkhd - mapped < size  # served from the heap, not its own mapping
    del big
    assert mallinfo2().fordblks >= size  # kept after the free, not trimmed away


def test_the_option_can_be_turned_off(tmp_path):
    with sensorium.open(str(tmp_path / "d"), keep_freed_memory=False, background=False) as db:
        db.add("k", 1, 2.0)
        assert db.get("k") == (1, 2.0)

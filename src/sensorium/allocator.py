"""Keeps freed array memory in the process for reuse (glibc ``malloc`` settings).

Every hot path allocates and frees numpy temporaries of 0.1 to 30 MB per call: a block
read decodes hundreds of thousands of rows, a batch sorts and gathers its columns. With
glibc's defaults such an array gets fresh ``mmap`` pages, or heap pages that the previous
free just handed back to the kernel, so each call pays its page faults again (and where
transparent huge pages are on ``madvise``, as numpy asks for big arrays, page compaction
too). Measured on the 2-vCPU box: decoding 500k rows took 14 ms with the defaults and
2 ms with these settings; a 100-series hour of 1-minute averages from blocks went from
25-29 ms to 11-15 ms.

The settings: arrays below ``MMAP_THRESHOLD`` come from the heap, and up to
``TRIM_THRESHOLD`` of free heap stays mapped, so the next call finds its pages ready. The
price is that the process keeps up to that much freed memory. Process-wide and idempotent;
a no-op where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt() parameters from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 * 2**20  # bigger arrays still get their own mapping, unmapped on free
TRIM_THRESHOLD = 256 * 2**20

_applied = False


def keep_freed_memory() -> bool:
    """Applies the settings once per process; returns whether glibc took them."""
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    _applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) \
        and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied

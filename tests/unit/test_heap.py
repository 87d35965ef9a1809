"""Handing freed C heap pages back to the system (heap.py)."""

import os
import sys

from polyswarmclient.heap import HeapTrimmer, release_freed_memory


def rss_kib() -> int:
    with open(f"/proc/{os.getpid()}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_pages_freed_in_the_middle_of_the_heap_go_back_to_the_system():
    """64 MB of 4 KiB buffers (malloc'd from the heap), every 16th kept so the heap cannot shrink from its top:
    freeing the rest leaves the RSS where it was; trimming gives most of it back."""
    buffers = [bytearray(4000) for _ in range(16_000)]
    for buffer in buffers:
        buffer[::512] = b"x" * len(buffer[::512])  # touch every page
    kept = buffers[::16]
    del buffers
    before = rss_kib()
    assert release_freed_memory()
    after = rss_kib()
    assert before - after > 30_000, (before, after)
    assert len(kept) == 1000


def test_the_trimmer_trims_at_most_once_per_interval():
    now = [100.0]
    trimmer = HeapTrimmer(every=60, clock=lambda: now[0])
    assert not trimmer.maybe()
    now[0] += 59
    assert not trimmer.maybe()
    now[0] += 1
    assert trimmer.maybe() == sys.platform.startswith("linux")
    assert not trimmer.maybe()

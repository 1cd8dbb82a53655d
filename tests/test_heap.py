"""After a burst of streams, the process gives the freed memory back to the OS.

The trimmer's effect is measured on the real C library, in a fresh process
whose heap holds only what the test put there; its policy (when it trims) is
pinned with a trim function that counts its calls.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from sse.heap import HeapTrimmer, _malloc_trim
from sse.stream.registry import StreamRegistry
from tests.realparts import missing

# A heap of about 40 MB of C allocations (bytes objects above pymalloc's 512
# bytes), every 16th kept alive so the free memory lies between live blocks
# and glibc cannot give it back by shrinking the heap's top alone.
FRAGMENTED_HEAP = textwrap.dedent(
    """
    import json, sys
    from sse.heap import HeapTrimmer

    def rss_kib():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))

    blocks = [bytes(1000 + i % 7) for i in range(40_000)]
    kept = blocks[::16]
    del blocks
    before = rss_kib()
    ended = [0]
    trimmer = HeapTrimmer(lambda: ended[0], min_ended=1)
    ended[0] = 1
    trimmed = trimmer.check()
    json.dump({"before": before, "after": rss_kib(), "trimmed": trimmed, "kept": len(kept)}, sys.stdout)
    """
)


def test_the_trimmer_gives_a_fragmented_heaps_free_memory_back_to_the_os() -> None:
    if _malloc_trim() is None:
        missing("glibc's malloc_trim", "the service runs on a glibc Linux (Debian) in production and CI")
    command = [sys.executable, "-c", FRAGMENTED_HEAP]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    figures = json.loads(done.stdout)
    assert figures["trimmed"]
    # About 37 MB of the 40 MB is free; most of it goes back.
    assert figures["before"] - figures["after"] > 20 * 1024, figures


class CountingTrim:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def test_the_trimmer_trims_only_after_a_burst_of_ended_streams() -> None:
    ended = [5]
    trim = CountingTrim()
    trimmer = HeapTrimmer(lambda: ended[0], min_ended=32, interval=0.0, trim=trim)
    ended[0] += 31
    assert not trimmer.check()  # streams that ended before it started do not count
    ended[0] += 1
    assert trimmer.check()
    assert not trimmer.check()  # nothing ended since
    assert trim.calls == 1


def test_the_trimmer_trims_at_most_once_per_interval() -> None:
    ended = [0]
    trim = CountingTrim()
    trimmer = HeapTrimmer(lambda: ended[0], min_ended=1, interval=3600.0, trim=trim)
    ended[0] = 100
    assert trimmer.check()
    ended[0] = 200
    assert not trimmer.check()
    assert trim.calls == 1


def test_without_malloc_trim_the_trimmer_does_nothing() -> None:
    ended = [0]
    trimmer = HeapTrimmer(lambda: ended[0], min_ended=1, interval=0.0)
    trimmer.trim = None
    ended[0] = 100
    assert not trimmer.check()


class Stream:
    def end(self, error: object) -> None:
        pass


def test_the_registry_counts_each_stream_and_follower_that_ended_once() -> None:
    registry = StreamRegistry()
    stream, follower = Stream(), Stream()
    registry.add(stream)
    registry.add_follower(follower)
    registry.remove(stream)
    registry.remove(stream)  # a second removal is not a second end
    registry.remove_follower(follower)
    assert registry.ended == 2

"""The frame log's bounds and reads: the oldest frames go, meta and the newest stay, gaps are errors."""

from __future__ import annotations

import asyncio

import pytest

from sse.resume.framelog import FrameLog, FramesExpired
from sse.resume.token import hash_token, new_token, token_matches


def frame(seq: int, size: int = 10) -> bytes:
    return f"{seq:0{size}d}".encode()


def filled(log: FrameLog, count: int, size: int = 10) -> FrameLog:
    for seq in range(1, count + 1):
        log.append(seq, frame(seq, size))
    return log


def seqs(frames: list[bytes]) -> list[int]:
    return [int(f) for f in frames]


def test_a_read_returns_every_frame_after_the_id() -> None:
    log = filled(FrameLog(100, 10_000), 5)
    assert seqs(log.read(0).frames) == [1, 2, 3, 4, 5]
    assert seqs(log.read(3).frames) == [4, 5]
    batch = log.read(5)
    assert (batch.frames, batch.last, batch.terminal) == ([], 5, False)


def test_over_the_frame_bound_the_oldest_go_but_not_meta() -> None:
    log = filled(FrameLog(3, 10_000), 10)
    assert log.first_kept == 8
    assert log.frame_count == 4
    assert seqs(log.read(7).frames) == [8, 9, 10]
    with pytest.raises(FramesExpired) as expired:
        log.read(0)
    assert (expired.value.after, expired.value.first_kept) == (1, 8)
    assert str(expired.value).startswith("frames 2 to 7 are no longer kept")
    with pytest.raises(FramesExpired, match=r"^frame 7 is no longer kept.*resume after is 7$"):
        log.read(6)


def test_over_the_byte_bound_the_oldest_go_and_a_huge_frame_alone_stays() -> None:
    log = filled(FrameLog(100, 35), 6)  # ten bytes each: three fit
    assert log.first_kept == 4
    assert log.bytes == 30
    log.append(7, b"x" * 100)
    assert log.first_kept == 7
    assert log.read(6).frames == [b"x" * 100]
    assert log.head == frame(1)


def test_the_terminal_frame_is_read_as_terminal_and_ends_waits() -> None:
    log = filled(FrameLog(100, 10_000), 3)
    log.close()
    assert log.read(2).terminal
    assert log.read(3).terminal
    assert seqs(log.read(1).frames) == [2, 3]


async def test_a_reader_waits_for_the_next_frame_or_its_timeout() -> None:
    log = filled(FrameLog(100, 10_000), 2)
    assert await log.wait(2, 0.01) is False
    waiting = asyncio.create_task(log.wait(2, None))
    await asyncio.sleep(0)
    assert not waiting.done()
    log.append(3, frame(3))
    assert await waiting is True
    assert await log.wait(1, None) is True  # already there: no wait


def test_ids_must_follow_each_other() -> None:
    log = filled(FrameLog(100, 10_000), 2)
    with pytest.raises(ValueError, match="frame 4 cannot follow frame 2"):
        log.append(4, frame(4))


def test_a_long_log_compacts_its_storage_and_still_reads_right() -> None:
    log = filled(FrameLog(10, 10**9), 5000, size=6)
    assert len(log._frames) < 600  # evicted frames do not pile up
    assert seqs(log.read(4990).frames) == list(range(4991, 5001))
    assert log.head == frame(1, 6)


def test_resume_tokens_are_long_random_and_checked_by_hash() -> None:
    token = new_token()
    assert len(token) >= 43
    assert token != new_token()
    stored = hash_token(token)
    assert token not in stored
    assert token_matches(token, stored)
    assert not token_matches(token[:-1] + ("A" if token[-1] != "A" else "B"), stored)

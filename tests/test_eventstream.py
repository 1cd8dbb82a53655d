"""The WHATWG event-stream decoder: 86 vectors, every split, real upstream transcripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sse.eventstream import EventStreamDecoder, EventTooLarge

FIXTURES = Path(__file__).parent / "fixtures"
VECTORS = json.loads((FIXTURES / "sse_parser_vectors.json").read_text())
TRANSCRIPTS = sorted([*FIXTURES.glob("openai/*.sse"), *FIXTURES.glob("openrouter/*.sse")])


def run(chunks: list[bytes]) -> tuple[list[dict[str, str]], int | None, str]:
    decoder = EventStreamDecoder()
    events = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    events += decoder.close()
    return (
        [{"type": e.type, "data": e.data, "lastEventId": e.last_event_id} for e in events],
        decoder.retry,
        decoder.last_event_id,
    )


def raw_of(vector: dict) -> bytes:
    return bytes.fromhex(vector["input_hex"]) if vector.get("input_hex") else vector["input"].encode()


def expected_of(vector: dict) -> tuple[list[dict[str, str]], int | None, str]:
    return vector["expected_events"], vector["expected_retry"], vector["expected_last_event_id"]


def test_all_86_vectors_are_present():
    assert len(VECTORS) == 86


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["name"])
def test_vector_whole_byte_by_byte_and_as_given(vector):
    raw = raw_of(vector)
    expected = expected_of(vector)
    assert run([raw]) == expected
    assert run([raw[i : i + 1] for i in range(len(raw))]) == expected
    if vector.get("chunks"):
        assert run([c.encode() for c in vector["chunks"]]) == expected
    if vector.get("chunks_hex"):
        assert run([bytes.fromhex(c) for c in vector["chunks_hex"]]) == expected


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["name"])
def test_vector_at_every_two_way_split(vector):
    raw = raw_of(vector)
    expected = expected_of(vector)
    for cut in range(len(raw) + 1):
        assert run([raw[:cut], raw[cut:]]) == expected, f"split at byte {cut}"


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_upstream_transcripts_decode_the_same_at_every_split(path):
    data = path.read_bytes()
    # These transcripts are simple enough to read by eye: one `data:` line per
    # event, `:` comments, blank lines between events.  The decoder must agree.
    lines = data.decode().split("\n")
    assert all(line == "" or line.startswith(("data: ", ":")) for line in lines), "not a simple transcript"
    payloads = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    expected = run([data])
    assert [(e["type"], e["data"]) for e in expected[0]] == [("message", payload) for payload in payloads]
    assert payloads[-1] == "[DONE]" or "error" in payloads[-1]
    for cut in range(len(data) + 1):
        assert run([data[:cut], data[cut:]]) == expected


def test_openrouter_keepalive_comments_are_not_events():
    events, _, _ = run([(FIXTURES / "openrouter" / "tool_call_stream_3_comments.sse").read_bytes()])
    assert not any("OPENROUTER" in e["data"] for e in events)
    assert events[-1]["data"] == "[DONE]"


def test_a_line_longer_than_the_limit_is_an_error():
    decoder = EventStreamDecoder(max_size=1000)
    with pytest.raises(EventTooLarge):
        decoder.feed(b"data: " + b"x" * 2000)


def test_event_data_longer_than_the_limit_is_an_error():
    decoder = EventStreamDecoder(max_size=1000)
    for _ in range(15):
        decoder.feed(b"data: " + b"x" * 50 + b"\n")
    with pytest.raises(EventTooLarge):
        decoder.feed(b"data: " + b"x" * 500 + b"\n")


def test_a_cr_line_end_inside_a_chunk_does_not_swallow_the_next_chunks_lf():
    # "data:1\r" ends a line mid-chunk; the LF that starts the next chunk is a
    # blank line of its own and must dispatch the event.
    assert run([b"data:1\rdata:2", b"\n\n"])[0] == [{"type": "message", "data": "1\n2", "lastEventId": ""}]
    assert run([b"data:1\r\rda", b"\n"])[0] == [{"type": "message", "data": "1", "lastEventId": ""}]

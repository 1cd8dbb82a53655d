"""The NDJSON decoder, on real Ollama transcripts split at every byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sse.ndjson import LineTooLong, NdjsonDecoder

FIXTURES = Path(__file__).parent / "fixtures" / "ollama"
TRANSCRIPTS = sorted(FIXTURES.glob("*.ndjson"))


def expected_of(data: bytes) -> list[object]:
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def decode_chunks(chunks: list[bytes], **kwargs: int) -> list[object]:
    decoder = NdjsonDecoder(**kwargs)
    out: list[object] = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    return out + decoder.close()


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.name)
def test_every_two_way_split_of_a_transcript_decodes_the_same(path):
    data = path.read_bytes()
    expected = expected_of(data)
    assert expected, "transcript is empty"
    for cut in range(len(data) + 1):
        assert decode_chunks([data[:cut], data[cut:]]) == expected, f"split at byte {cut}"


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.name)
def test_byte_by_byte_and_three_way_splits_decode_the_same(path):
    data = path.read_bytes()
    expected = expected_of(data)
    assert decode_chunks([data[i : i + 1] for i in range(len(data))]) == expected
    step = max(1, len(data) // 97)
    for a in range(0, len(data), step):
        for b in range(a, len(data), step * 7):
            assert decode_chunks([data[:a], data[a:b], data[b:]]) == expected


def test_a_multibyte_character_split_across_chunks_is_reassembled():
    line = '{"response":"你好 🦊"}\n'.encode()
    cut = line.index("🦊".encode()) + 2  # inside the 4-byte emoji
    assert decode_chunks([line[:cut], line[cut:]]) == [{"response": "你好 🦊"}]


def test_crlf_line_ends_and_blank_lines_are_accepted():
    assert decode_chunks([b'{"a":1}\r\n\r\n\n{"a":2}\r\n', b"\r\n"]) == [{"a": 1}, {"a": 2}]


def test_a_last_line_without_newline_is_decoded_at_close():
    assert decode_chunks([b'{"a":1}\n{"a":', b"2}"]) == [{"a": 1}, {"a": 2}]


def test_malformed_lines_are_skipped_and_counted_not_fatal():
    decoder = NdjsonDecoder()
    out = decoder.feed(b'{"a":1}\nnot json\n{"a":2}\n\xff\xfe\n{"a":3}')
    out += decoder.close()
    assert out == [{"a": 1}, {"a": 2}, {"a": 3}]
    assert decoder.skipped == 2
    assert decoder.last_skipped == b"\xff\xfe"


def test_a_line_over_the_limit_is_an_error_not_unbounded_memory():
    decoder = NdjsonDecoder(max_line=100)
    decoder.feed(b"x" * 60)
    with pytest.raises(LineTooLong):
        decoder.feed(b"x" * 60)


def test_a_complete_line_over_the_limit_is_an_error():
    with pytest.raises(LineTooLong):
        NdjsonDecoder(max_line=100).feed(b'{"a":"' + b"x" * 200 + b'"}\n')


def test_a_long_context_line_fits_the_default_limit():
    done = {"done": True, "context": list(range(120_000))}
    data = json.dumps(done).encode() + b"\n"
    assert len(data) > 700_000
    assert decode_chunks([data[i : i + 65536] for i in range(0, len(data), 65536)]) == [done]


@pytest.mark.parametrize(
    "line",
    [
        b'{"a":1}',
        b'{"a":1}\r',
        b'  {"a":1}',
        b'{"a":1}  ',
        b'{"a":1}{"b":2}',
        b"\xef\xbb\xbf{}",
        b'{"a":"\xff"}',
        b'{"a":"\xed\xa0\x80"}',
        b'{"a":NaN,"b":-Infinity}',
        b'{"a":"\\ud83e\\udd8a"}',
        b"[1,2]",
        b'"text"',
        b"{",
        b"null",
    ],
)
def test_a_line_is_accepted_or_skipped_exactly_as_json_loads_decides(line):
    try:
        expected = [json.loads(line)]
    except ValueError:
        expected = []
    decoder = NdjsonDecoder()
    got = decoder.feed(line + b"\n")
    assert repr(got) == repr(expected)
    assert decoder.skipped == (0 if expected else 1)

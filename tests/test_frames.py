"""The frame encoder: one-line compact JSON, refused fields, readers of every kind."""

from __future__ import annotations

import json

import pytest

from sse import frames
from sse.eventstream import EventStreamDecoder
from tests.helpers import naive_parse


def decode(data: bytes) -> list[tuple[str, str, str]]:
    decoder = EventStreamDecoder()
    events = decoder.feed(data) + decoder.close()
    return [(e.type, e.data, e.last_event_id) for e in events]


def test_frame_has_event_then_data_then_id_and_a_blank_line():
    assert frames.encode("token", {"text": "hi"}, id=3) == b'event: token\ndata: {"text":"hi"}\nid: 3\n\n'


def test_data_is_compact_json_on_one_line_even_with_newlines_in_text():
    frame = frames.encode("token", {"text": "a\nb\r\nc", "n": [1, 2]}, id=1)
    assert frame.count(b"\n") == 4
    assert b'{"text":"a\\nb\\r\\nc","n":[1,2]}' in frame


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"])
def test_characters_that_splitlines_breaks_on_are_escaped(char):
    text = f"before{char}after"
    frame = frames.encode("token", {"text": text}, id=1)
    assert naive_parse(frame.decode()) == [("token", {"text": text})]
    assert char.encode() not in frame
    ((event, data, _),) = decode(frame)
    assert (event, json.loads(data)) == ("token", {"text": text})


def test_non_ascii_text_is_sent_as_utf8_not_escaped():
    assert "你好".encode() in frames.encode("token", {"text": "你好"}, id=1)


@pytest.mark.parametrize("bad", ["to\nken", "to\rken"])
def test_event_name_with_a_line_break_is_refused(bad):
    with pytest.raises(frames.FrameError):
        frames.encode(bad, {"text": "x"})


@pytest.mark.parametrize("bad", ["1\n2", "1\r", "a\0b"])
def test_id_with_a_line_break_or_nul_is_refused(bad):
    with pytest.raises(frames.FrameError):
        frames.encode("token", {"text": "x"}, id=bad)


def test_preencoded_json_data_with_a_line_break_is_refused():
    with pytest.raises(frames.FrameError):
        frames.encode("token", '{"text":\n"x"}')


def test_retry_and_comment_frames():
    assert frames.encode(retry=3000) == b"retry: 3000\n\n"
    assert frames.comment("ping") == b": ping\n\n"
    assert frames.comment() == b":\n\n"
    with pytest.raises(frames.FrameError):
        frames.comment("a\nb")
    with pytest.raises(frames.FrameError):
        frames.encode()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain",
        'quote " and \\ backslash',
        "emoji 🦊 and 你好",
        "\u2028",
        "<script>",
        "a\u0085b\u2029c\u2028",
        "\x00\x1f\n",
    ],
)
def test_fast_text_frame_equals_the_generic_encoder(text):
    frame = frames.text_frame("token", text, 7)
    assert frame == frames.encode("token", {"text": text}, id=7)
    ((event, data, last_id),) = decode(frame)
    assert (event, json.loads(data), last_id) == ("token", {"text": text}, "7")


def test_every_frame_round_trips_through_the_spec_parser():
    stream = (
        frames.comment("ping")
        + frames.encode("meta", {"id": "abc", "model": "m", "provider": "p"}, id=1)
        + frames.text_frame("token", "line\nbreak \u2028 sep", 2)
        + frames.encode("done", {"finish_reason": "stop"}, id=3)
    )
    events = decode(stream)
    assert [(t, i) for t, _, i in events] == [("meta", "1"), ("token", "2"), ("done", "3")]
    assert naive_parse(stream.decode())[1] == ("token", {"text": "line\nbreak \u2028 sep"})

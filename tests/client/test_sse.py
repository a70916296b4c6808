"""The SSE decoder: lines in, events out, per the HTML standard's parsing rules."""

from __future__ import annotations

from chatmodel._sse import ServerSentEvent, SSEDecoder


def decode_all(lines: list[str]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    return [event for line in lines if (event := decoder.decode(line)) is not None]


def test_one_event_per_blank_line() -> None:
    events = decode_all(['data: {"content": "a"}', "", 'data: {"content": "b"}', ""])
    assert [e.data for e in events] == ['{"content": "a"}', '{"content": "b"}']
    assert all(e.event == "message" for e in events)


def test_several_data_lines_are_joined_with_newlines() -> None:
    assert decode_all(["data: first", "data:second", "data:  third", ""])[0].data == (
        "first\nsecond\n third"
    )


def test_comments_and_unknown_fields_are_skipped() -> None:
    events = decode_all([": keep-alive", "", "foo: bar", "data: x", ": inside", ""])
    assert [e.data for e in events] == ["x"]


def test_event_id_and_retry_fields() -> None:
    (event,) = decode_all(["event: update", "id: 7", "retry: 1500", "data: y", ""])
    assert (event.event, event.id, event.retry, event.data) == ("update", "7", 1500, "y")
    # the last id carries over to later events; the event type does not
    (later,) = decode_all(["id: 7", "data: y", "", "data: z", ""])[1:]
    assert (later.id, later.event) == ("7", "message")


def test_done_sentinel() -> None:
    events = decode_all(['data: {"done": true}', "", "data: [DONE]", ""])
    assert [e.is_done for e in events] == [False, True]


def test_line_endings_are_tolerated() -> None:
    assert [e.data for e in decode_all(["data: a\r", "\r"])] == ["a"]

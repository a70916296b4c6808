"""Reading the server's answers: tolerant of newer servers, both content names, parsed args."""

from __future__ import annotations

from chatmodel import Attempt, FunctionCall, LLMResponse, LLMStreamResponse, Message


def test_fields_from_a_newer_server_are_kept_not_rejected() -> None:
    res = LLMResponse.model_validate({"content": "hi", "reasoning": "because", "error": False})
    assert res.content == "hi"
    assert res.model_extra == {"reasoning": "because"}
    chunk = LLMStreamResponse.model_validate({"content": "h", "new_field": 1})
    assert chunk.model_extra == {"new_field": 1}


def test_content_and_raw_output_are_the_same_text() -> None:
    assert LLMResponse.model_validate({"raw_output": "x"}).content == "x"
    assert LLMResponse.model_validate({"content": "y"}).raw_output == "y"
    assert LLMStreamResponse.model_validate({"raw_output": "z"}).content == "z"


def test_function_call_args_are_parsed_when_the_server_leaves_them_out() -> None:
    assert FunctionCall(name="f", arguments='{"a": 1}').args == {"a": 1}
    assert FunctionCall(name="f", arguments="").args == {}
    assert FunctionCall(name="f", arguments="not json").args is None
    assert FunctionCall(name="f", arguments="[1]").args is None
    # the server's own parse wins
    assert FunctionCall(name="f", arguments='{"a": 1}', args=None).args is None


def test_stored_messages_carry_parsed_calls() -> None:
    message = Message.model_validate(
        {
            "uuid": "00000000-0000-0000-0000-000000000001",
            "seq": 2,
            "role": "assistant",
            "content": None,
            "function_call": {"name": "get_weather", "arguments": '{"location": "Boston"}'},
            "created_at": "2025-01-01T00:00:00Z",
        }
    )
    assert message.function_call is not None
    assert message.function_call.args == {"location": "Boston"}


def test_attempts_are_typed_and_keep_new_fields() -> None:
    tries = [
        {"model": "gpt-x", "outcome": "rate_limited", "latency_ms": 12, "provider_status": 429},
        {"model": "gpt-y", "outcome": "succeeded", "latency_ms": 30, "region": "eu"},
    ]
    res = LLMResponse.model_validate({"content": "hi", "attempts": tries})
    assert res.attempts == [
        Attempt(model="gpt-x", outcome="rate_limited", latency_ms=12, provider_status=429),
        Attempt(model="gpt-y", outcome="succeeded", latency_ms=30, region="eu"),
    ]
    assert res.attempts[1].provider_status is None
    assert res.attempts[1].model_extra == {"region": "eu"}
    last = LLMStreamResponse.model_validate({"done": True, "attempts": tries[:1]})
    assert last.attempts is not None and last.attempts[0].outcome == "rate_limited"
    assert LLMResponse().attempts is None

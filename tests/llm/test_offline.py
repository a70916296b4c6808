"""Unit tests of the offline model's decisions (``offline_reply``), no LiteLLM involved."""

from __future__ import annotations

import json
from typing import Any

from chatmodel_service.llm.offline import offline_reply
from tests.factories import WEATHER_FUNCTION

SYSTEM = {"role": "system", "content": "You are a test assistant."}
TIME_FUNCTION: dict[str, Any] = {
    "name": "get_time",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
FORECAST_FUNCTION: dict[str, Any] = {
    "name": "get_weather_forecast",
    "parameters": {
        "type": "object",
        "properties": {
            "location": {"type": "string"},
            "days": {"type": "integer"},
            "min_temperature": {"type": "number"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "verbose": {"type": "boolean"},
        },
        "required": ["location", "days", "min_temperature", "unit"],
    },
}


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def called(
    text: str, functions: list[dict[str, Any]], *history: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The function the offline model calls for ``text``, and its parsed arguments."""
    reply = offline_reply([SYSTEM, *history, user(text)], functions, None)
    assert reply.content is None and reply.tool_calls is None
    assert reply.function_call is not None
    assert reply.finish_reason == "function_call"
    return reply.function_call["name"], json.loads(reply.function_call["arguments"])


def test_echoes_the_newest_user_message() -> None:
    reply = offline_reply([SYSTEM, user("first"), user("Hello, I'm a user.")], None, None)

    assert reply.content == "Hello, I'm a user."
    assert reply.function_call is None and reply.tool_calls is None
    assert reply.finish_reason == "stop"


def test_after_its_own_reply_it_echoes_the_last_user_message_again() -> None:
    messages = [SYSTEM, user("ping"), {"role": "assistant", "content": "ping"}]

    assert offline_reply(messages, None, None).content == "ping"


def test_an_empty_conversation_gets_a_greeting() -> None:
    reply = offline_reply([SYSTEM], None, None)

    assert reply.content
    assert reply.finish_reason == "stop"


def test_calls_the_only_function_with_the_city_from_the_message() -> None:
    assert called("What's the weather in Boston?", [WEATHER_FUNCTION]) == (
        "get_weather",
        {"location": "Boston"},
    )


def test_multi_word_place_names_are_kept_whole() -> None:
    _, args = called("Is it raining in New York City today?", [WEATHER_FUNCTION])

    assert args == {"location": "New York City"}


def test_calls_the_function_the_message_names() -> None:
    functions = [WEATHER_FUNCTION, TIME_FUNCTION]

    assert called("Use get_time for Paris", functions) == ("get_time", {"city": "Paris"})
    assert called("What does get time say for Paris?", functions)[0] == "get_time"


def test_calls_the_first_function_when_none_is_named() -> None:
    name, _ = called("Anything about Lisbon?", [TIME_FUNCTION, WEATHER_FUNCTION])

    assert name == "get_time"


def test_the_longest_named_function_wins_over_a_prefix_of_it() -> None:
    functions = [WEATHER_FUNCTION, FORECAST_FUNCTION]

    name, _ = called("Call get_weather_forecast for Boston, 3 days", functions)

    assert name == "get_weather_forecast"


def test_integer_and_enum_arguments_come_from_the_message() -> None:
    _, args = called("Forecast for Boston over 3.0 days in fahrenheit", [FORECAST_FUNCTION])

    # Every numeric property takes the message's first number (a documented simplification).
    assert args == {"location": "Boston", "days": 3, "min_temperature": 3.0, "unit": "fahrenheit"}


def test_number_arguments_keep_their_fraction_and_sign() -> None:
    function = {
        "name": "set_temperature",
        "parameters": {"type": "object", "properties": {"value": {"type": "number"}}},
    }

    assert called("Set it to -12.5 please", [function])[1] == {"value": -12.5}


def test_missing_values_fall_back_to_defaults() -> None:
    _, args = called("Forecast for Boston please", [FORECAST_FUNCTION])

    assert args == {"location": "Boston", "days": 0, "min_temperature": 0.0, "unit": "celsius"}


def test_without_a_required_list_every_property_is_filled() -> None:
    function = {
        "name": "set_alarm",
        "parameters": {
            "type": "object",
            "properties": {"hour": {"type": "integer"}, "loud": {"type": "boolean"}},
        },
    }

    assert called("Wake me at 7", [function])[1] == {"hour": 7, "loud": False}


def test_a_function_without_parameters_is_called_with_no_arguments() -> None:
    assert called("Ping the server", [{"name": "ping"}]) == ("ping", {})


def test_tools_are_answered_with_a_tool_call_that_has_an_id() -> None:
    messages = [SYSTEM, user("What's the weather in Boston?")]
    tools = [{"type": "function", "function": WEATHER_FUNCTION}]

    reply = offline_reply(messages, None, tools)

    assert reply.content is None and reply.function_call is None
    assert reply.finish_reason == "tool_calls"
    assert reply.tool_calls is not None
    [call] = reply.tool_calls
    assert call["id"].startswith("call_") and len(call["id"]) > len("call_")
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "Boston"}
    again = offline_reply(messages, None, tools).tool_calls
    assert again is not None and again[0]["id"] == call["id"]  # deterministic
    later = offline_reply([*messages, user("And in Boston now?")], None, tools).tool_calls
    assert later is not None and later[0]["id"] != call["id"]


def test_answers_a_function_result_with_that_result() -> None:
    messages = [
        SYSTEM,
        user("What's the weather in Boston?"),
        {
            "role": "assistant",
            "content": None,
            "function_call": {"name": "get_weather", "arguments": '{"location": "Boston"}'},
        },
        {"role": "function", "name": "get_weather", "content": "13 degrees celsius"},
    ]

    reply = offline_reply(messages, [WEATHER_FUNCTION], None)

    assert reply.function_call is None and reply.tool_calls is None
    assert reply.finish_reason == "stop"
    assert reply.content is not None
    assert "13 degrees celsius" in reply.content
    assert "get_weather" in reply.content


def test_answers_a_tool_result_with_that_result() -> None:
    tool_call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"location": "Boston"}'},
    }
    messages = [
        SYSTEM,
        user("What's the weather in Boston?"),
        {"role": "assistant", "content": None, "tool_calls": [tool_call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "13 degrees celsius"},
    ]

    reply = offline_reply(messages, None, [{"type": "function", "function": WEATHER_FUNCTION}])

    assert reply.tool_calls is None
    assert reply.finish_reason == "stop"
    assert reply.content == "get_weather returned: 13 degrees celsius"

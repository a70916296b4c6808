"""Seeds 000, 001 and 003 as their samples are written (requests, x-api-key, their field
names), with only the URL and the model changed, against a real server."""

from __future__ import annotations

import json
from typing import Any

import requests

from tests.support.servers import LiveApp

HEADERS = {
    "accept": "application/json",
    "content-type": "application/json",
    "x-api-key": "sampleapikey12345",
}


def test_seed_000_chat_completion(live_app: LiveApp) -> None:
    payload: dict[str, Any] = {
        "model": "simple_assistant",
        "messages": [{"role": "user", "content": "Hello, what can you do?"}],
    }
    response = requests.post(
        f"{live_app.base_url}/v1/chat/completions", json=payload, headers=HEADERS, timeout=30
    )
    body = json.loads(response.text)
    assert body["chat_completion"]["message"]["content"] == "Hello, what can you do?"
    assert (
        body["token_usage"]["total"]
        == body["token_usage"]["prompt"] + body["token_usage"]["completion"]
    )


def test_seed_000_streaming_chat_completion(live_app: LiveApp) -> None:
    payload: dict[str, Any] = {
        "model": "simple_assistant",
        "messages": [{"role": "user", "content": "Hello, what can you do?"}],
        "stream": True,
    }
    response = requests.post(
        url=f"{live_app.base_url}/v1/chat/completions",
        json=payload,
        headers=HEADERS,
        stream=True,
        timeout=30,
    )
    printed = ""
    for raw_event in response.iter_lines():
        if raw_event:
            event_str = raw_event.decode()
            if event_str.startswith("data: "):
                event_json_str = event_str[len("data: ") :]
                if event_json_str == "[DONE]":  # the terminator OpenAI clients expect
                    break
                stream_chunk = json.loads(event_json_str)
                printed += stream_chunk["chat_completion"]["message"]["content"]
    assert printed == "Hello, what can you do?"


def test_seed_001_streaming_completion(live_app: LiveApp) -> None:
    payload: dict[str, Any] = {
        "model": "simple_assistant",
        "prompt": "Hello, what can you do?",
        "stream": True,
    }
    response = requests.post(
        url=f"{live_app.base_url}/v1/completions",
        json=payload,
        headers=HEADERS,
        stream=True,
        timeout=30,
    )
    printed = ""
    for raw_event in response.iter_lines():
        if raw_event:
            event_str = raw_event.decode()
            if event_str.startswith("data: "):
                event_json_str = event_str[len("data: ") :]
                if event_json_str == "[DONE]":
                    break
                stream_chunk = json.loads(event_json_str)
                printed += stream_chunk["completion"]["text"]
    assert printed == "Hello, what can you do?"


def test_seed_001_and_003_completion_fields(live_app: LiveApp) -> None:
    payload: dict[str, Any] = {
        "model": "simple_assistant",
        "prompt": "Hello, my name is",
        "max_new_tokens": 10,
        "temperature": 0.2,
    }
    body = requests.post(
        f"{live_app.base_url}/v1/completions", json=payload, headers=HEADERS, timeout=30
    ).json()
    assert body["completion"]["text"] == "Hello, my name is"  # seed 001
    assert body["output"]["text"] == "Hello, my name is"  # seed 003
    assert body["output"]["num_completion_tokens"] == body["usage"]["completion_tokens"]
    assert body["choices"][0]["text"] == "Hello, my name is"  # OpenAI's own field

"""Seeds 000, 001 and 003's request-level samples (requests, x-api-key, their field names)
against a real server.

Seeds 000 and 001 (Scale's Spellbook/EGP) run as their text is written: each sample below
is the seed's code verbatim, executed with ``exec``, and its printed output is checked.
Replaced before it runs, and nothing else: the host ``https://api.spellbook.scale.com``
becomes the server's base URL (the path, ``/egp/v1/chat-completions`` or
``/egp/v1/completions``, stays), and the model (``gpt-3.5-turbo-0613``, ``gpt-4``) becomes
the demo chat model. One sample's own bug is fixed: 000's streaming sample prints
``chunk[...]``, a name it never defines (a NameError on its first event); it means
``stream_chunk``. Those streams end without ``data: [DONE]``, so every ``data:`` line the
samples ``json.loads`` is JSON. The key they send (000: ``SPELLBOOK_API_KEY`` from the
environment, unset here; 001: a literal) is not checked: the server requires no keys.

Seed 003's changes are listed at its tests below.
"""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import requests

from tests.support.servers import LiveApp

HEADERS = {
    "accept": "application/json",
    "content-type": "application/json",
    "x-api-key": "sampleapikey12345",
}
SEED_HOST = "https://api.spellbook.scale.com"
DEMO = "simple_assistant"

# 000_dc849a5f4ae5bb82.txt, "Introductory Example"
SEED_000_CHAT = """
import requests
import os
SPELLBOOK_API_KEY = os.environ.get("SPELLBOOK_API_KEY")
headers = {
"accept": "application/json",
"content-type": "application/json",
"x-api-key": SPELLBOOK_API_KEY,
}
payload = {
"model": "gpt-3.5-turbo-0613",
"messages": [
{
"role": "user",
"content": "Hello, what can you do?"
}
]
}
response = requests.post("https://api.spellbook.scale.com/egp/v1/chat-completions", json=payload, headers=headers)
print(response.text)
"""  # noqa: E501 - the seed's line, as written

# 000_dc849a5f4ae5bb82.txt, "Streaming Chat Completions"
SEED_000_STREAMING_CHAT = """
import requests
import os
import json # <-- added
import sys # <-- added
SPELLBOOK_API_KEY = os.environ.get("SPELLBOOK_API_KEY")
headers = {
"accept": "application/json",
"content-type": "application/json",
"x-api-key": SPELLBOOK_API_KEY,
}
payload = {
"model": "gpt-3.5-turbo-0613",
"messages": [
{
"role": "user",
"content": "Hello, what can you do?"
}
],
"stream": True, # <-- added
}
response = requests.post(
url="https://api.spellbook.scale.com/egp/v1/chat-completions",
json=payload,
headers=headers,
stream=True, # <-- added
)
for raw_event in response.iter_lines():
    if raw_event:
        event_str = raw_event.decode()
        if event_str.startswith('data: '):
            event_json_str = event_str[len('data: '):]
            stream_chunk = json.loads(event_json_str)
            print(chunk["chat_completion"]["message"]["content"], end="")
            sys.stdout.flush()
print()
"""

# 001_0d0b435ed6ca60da.txt, "Streaming Completions" (its SDK example runs in
# tests/egp_compat/test_egp_sdk.py)
SEED_001_STREAMING_COMPLETION = """
import requests
import os
import json  # <-- added
import sys  # <-- added


SPELLBOOK_API_KEY = "sampleapikey12345"

headers = {
    "accept": "application/json",
    "content-type": "application/json",
    "x-api-key": SPELLBOOK_API_KEY,
}
payload = {
    "model": "gpt-4",
    "prompt": "Hello, what can you do?",
    "stream": True,  # <-- added
}

response = requests.post(
    url="https://api.spellbook.scale.com/egp/v1/completions",
    json=payload,
    headers=headers,
    stream=True,  # <-- added
)

# Different result parsing <-- added
for raw_event in response.iter_lines():
    if raw_event:
        event_str = raw_event.decode()
        if event_str.startswith('data: '):
            event_json_str = event_str[len('data: '):]
            stream_chunk = json.loads(event_json_str)
            print(stream_chunk["completion"]["text"], end="")
            sys.stdout.flush()
print()
"""


def run_sample(sample: str, live_app: LiveApp, model: str) -> str:
    """The sample with only the host and the model replaced, run; what it printed."""
    code = sample.replace(SEED_HOST, live_app.base_url).replace(f'"{model}"', f'"{DEMO}"')
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code, {})  # the seed's own sample code
    return printed.getvalue()


def test_seed_000_chat_completion(live_app: LiveApp) -> None:
    body = json.loads(run_sample(SEED_000_CHAT, live_app, "gpt-3.5-turbo-0613"))
    assert body["chat_completion"]["message"] == {
        "role": "agent",
        "content": "Hello, what can you do?",
        "tool_request": None,
    }
    assert body["chat_completion"]["finish_reason"] == "stop"
    usage = body["token_usage"]
    assert usage["completion"] > 0
    assert usage["total"] == usage["prompt"] + usage["completion"]


def test_seed_000_streaming_chat_completion(live_app: LiveApp) -> None:
    # The sample's own bug (see the module docstring), and only that, is fixed.
    fixed = SEED_000_STREAMING_CHAT.replace('print(chunk["', 'print(stream_chunk["')
    assert fixed != SEED_000_STREAMING_CHAT
    printed = run_sample(fixed, live_app, "gpt-3.5-turbo-0613")
    assert printed == "Hello, what can you do?\n"


def test_seed_001_streaming_completion(live_app: LiveApp) -> None:
    printed = run_sample(SEED_001_STREAMING_COMPLETION, live_app, "gpt-4")
    assert printed == "Hello, what can you do?\n"


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
    assert body["completion"]["text"] == "Hello, my name is"  # seed 001's field, here too
    assert body["output"]["text"] == "Hello, my name is"  # seed 003's field, here too
    assert body["output"]["num_completion_tokens"] == body["usage"]["completion_tokens"]
    assert body["choices"][0]["text"] == "Hello, my name is"  # OpenAI's own field


# -- seed 003: Scale LLM Engine. Its examples call the ``llmengine`` SDK (run as written in
# tests/llm_engine_compat/); here are the requests that SDK sends for them, as raw HTTP.
# Changed: the host (the SDK's default is Scale's) and the model ("llama-2-7b" becomes the
# demo chat model). The path, the ``model_endpoint_name`` query, the body, ``x-api-key``
# and what is read back are as the SDK sends and reads them; no ``data: [DONE]`` arrives,
# so none is skipped.


def test_seed_003_completion(live_app: LiveApp) -> None:
    payload: dict[str, Any] = {
        "prompt": "Hello, my name is",
        "max_new_tokens": 10,
        "temperature": 0.2,
    }
    response = requests.post(
        f"{live_app.base_url}/v1/llm/completions-sync?model_endpoint_name=simple_assistant",
        json=payload,
        headers=HEADERS,
        timeout=30,
    )
    assert response.status_code == 200
    body = json.loads(response.text)
    assert body["output"]["text"] == "Hello, my name is"
    # The sample's bug: its comment shows ``response.json()`` as request_id and output with
    # text and num_completion_tokens only; the SDK's own model prints num_prompt_tokens and
    # tokens as well, as this answer carries them.
    assert set(body) == {"request_id", "output"}
    assert set(body["output"]) == {"text", "num_prompt_tokens", "num_completion_tokens", "tokens"}
    assert body["output"]["num_completion_tokens"] > 0


def test_seed_003_streaming_completion(live_app: LiveApp) -> None:
    prompt = "Give me a 200 word summary on the current economic events in the US."
    payload: dict[str, Any] = {"prompt": prompt, "max_new_tokens": 1000, "temperature": 0.2}
    response = requests.post(
        f"{live_app.base_url}/v1/llm/completions-stream?model_endpoint_name=simple_assistant",
        json=payload,
        headers=HEADERS,
        stream=True,
        timeout=30,
    )
    printed = ""
    finished = []
    for raw_event in response.iter_lines():
        event_str = raw_event.decode()
        if event_str.startswith("data:"):
            stream_chunk = json.loads(event_str[len("data:") :])
            if stream_chunk["output"]:
                printed += stream_chunk["output"]["text"]
                finished.append(stream_chunk["output"]["finished"])
    assert printed == prompt
    assert finished[-1] is True and not any(finished[:-1])

"""Background responses through the official SDK: answered at once ``in_progress``,
polled with ``retrieve`` until they finish, stopped with ``cancel`` (nothing stored for
their output). They are background runs (tests/runs/test_background.py)."""

from __future__ import annotations

import time

import openai
import pytest

from tests.support.llm_server import Delay, Reply, ScriptedLLMServer
from tests.support.servers import LiveApp, scripted_chat_model


def poll(
    sdk: openai.OpenAI, response_id: str, within: float = 10
) -> openai.types.responses.Response:
    deadline = time.monotonic() + within
    while True:
        response = sdk.responses.retrieve(response_id)
        if response.status not in ("queued", "in_progress"):
            return response
        assert time.monotonic() < deadline, response
        time.sleep(0.05)


def test_a_background_response_is_polled_until_it_completes(
    live_app: LiveApp, sdk: openai.OpenAI, llm_server: ScriptedLLMServer
) -> None:
    remote = scripted_chat_model(live_app, llm_server)
    llm_server.enqueue(Delay(0.5, Reply("Done in the background.")))
    started = sdk.responses.create(model=remote, input="Take your time", background=True)
    assert (started.status, started.background, started.output) == ("in_progress", True, [])
    finished = poll(sdk, started.id)
    assert (finished.status, finished.output_text) == ("completed", "Done in the background.")
    assert finished.background is True
    assert finished.usage is not None and finished.usage.total_tokens > 0


def test_a_cancelled_background_response_stores_no_output(
    live_app: LiveApp, sdk: openai.OpenAI, llm_server: ScriptedLLMServer
) -> None:
    remote = scripted_chat_model(live_app, llm_server)
    llm_server.enqueue(Delay(5, Reply("Too late.")))
    conversation = sdk.conversations.create(extra_body={"model": remote})
    started = sdk.responses.create(
        model=remote, conversation=conversation.id, input="Never mind", background=True
    )
    deadline = time.monotonic() + 5
    while not llm_server.requests:  # the model has the call
        assert time.monotonic() < deadline
        time.sleep(0.05)
    cancelled = sdk.responses.cancel(started.id)
    assert (cancelled.status, cancelled.error) == ("cancelled", None)
    assert sdk.responses.retrieve(started.id).status == "cancelled"
    items = list(sdk.conversations.items.list(conversation.id, order="asc"))
    assert [(item.type, getattr(item, "role", None)) for item in items] == [("message", "user")]

    llm_server.enqueue(Reply("Here now."))
    after = sdk.responses.create(model=remote, conversation=conversation.id, input="Again")
    assert after.output_text == "Here now."  # the conversation is free again
    assert sdk.responses.cancel(after.id).status == "completed"  # finished: unchanged


def test_a_background_response_is_stored(sdk: openai.OpenAI) -> None:
    """(Streamed, it is resumable: tests/runs/test_resume.py.)"""
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.responses.create(model="simple_assistant", input="Hi", background=True, store=False)
    assert refused.value.param == "store"

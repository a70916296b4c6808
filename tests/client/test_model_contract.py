"""The client's models carry every field of the server's response schemas they read.

The client's models accept unknown fields (``extra="allow"``, so an older client keeps
working against a newer server), which also hides a field the client forgot: it lands in
``model_extra``, untyped and undocumented. This test pairs each client model with the
server schema it parses and fails naming what is missing, for the pairs listed here and,
recursively, for the models nested in their fields.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator

import pydantic
import pytest

import chatmodel
from chatmodel import _protocol
from chatmodel_service.chat_models import schemas as chat_models
from chatmodel_service.feedback import schemas as feedback
from chatmodel_service.runs import schemas as runs
from chatmodel_service.sessions import schemas as sessions

Model = type[pydantic.BaseModel]

# (client model, the server schema it reads): what each call's answer is parsed into.
PAIRS: list[tuple[Model, Model]] = [
    (chatmodel.ChatModelConfig, chat_models.ChatModelConfig),  # get_config
    (_protocol._MessageList, sessions.MessageList),  # add_messages
    (chatmodel.Message, sessions.MessageOut),
    (chatmodel.MessagePage, sessions.MessagePage),  # list_messages
    (chatmodel.Session, sessions.SessionOut),  # fork
    (chatmodel.Usage, sessions.UsageOut),
    (chatmodel.LLMResponse, runs.LLMResponse),  # run
    (chatmodel.ResponseDetail, runs.ResponseDetail),
    (chatmodel.Attempt, runs.AttemptOut),
    (chatmodel.FunctionCall, runs.FunctionCallOut),
    (chatmodel.ToolCall, runs.ToolCallOut),
    (chatmodel.LLMStreamResponse, runs.LLMStreamResponse),  # run(stream=True)
    (chatmodel.AssembledMessage, runs.AssembledMessage),
    (chatmodel.FunctionCallDelta, runs.FunctionCallDelta),
    (chatmodel.ToolCallDelta, runs.ToolCallDelta),
    (chatmodel.Feedback, feedback.FeedbackOut),  # log_score, log_score_to_session
]

# Server fields a client model leaves out on purpose: {(client model, field): why}.
NOT_EXPOSED: dict[tuple[Model, str], str] = {}

# Server fields that may be null which a client model types as never null: {(model, field):
# why the client never meets the null}.
NEVER_NULL_FOR_THE_CLIENT: dict[tuple[Model, str], str] = {
    (chatmodel.ResponseDetail, "session_uuid"): "null only for a version test run "
    "(POST /v1/chat-models/{name}/versions/{n}/test), which this client never asks for",
    (chatmodel.ResponseDetail, "run_uuid"): "null only for a version test run, as above",
}


def _models_in(annotation: object) -> list[Model]:
    """The pydantic models an annotation holds: ``X``, ``X | None``, ``list[X]``, ..."""
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]


def _accepts_null(annotation: object) -> bool:
    if annotation is typing.Any or annotation is None or annotation is types.NoneType:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_accepts_null(arg) for arg in typing.get_args(annotation))
    return False


def nested_pairs(client: Model, server: Model) -> Iterator[tuple[Model, Model, str]]:
    """``(client, server)`` and, recursively, the models in the fields both have where
    each side holds exactly one: ``LLMResponse.detail`` -> ``(ResponseDetail,
    runs.ResponseDetail)``. Each with the path it was reached by."""
    pending = [(client, server, client.__name__)]
    seen: set[tuple[Model, Model]] = set()
    while pending:
        client, server, path = pending.pop()
        if (client, server) in seen:
            continue
        seen.add((client, server))
        yield client, server, path
        for name, server_field in server.model_fields.items():
            client_field = client.model_fields.get(name)
            if client_field is None:
                continue
            inner_client = _models_in(client_field.annotation)
            inner_server = _models_in(server_field.annotation)
            if len(inner_client) == len(inner_server) == 1:
                pending.append((inner_client[0], inner_server[0], f"{path}.{name}"))


def all_pairs() -> list[tuple[Model, Model, str]]:
    found: dict[tuple[Model, Model], str] = {}
    for client, server in PAIRS:
        for inner_client, inner_server, path in nested_pairs(client, server):
            found.setdefault((inner_client, inner_server), path)
    return [(client, server, path) for (client, server), path in found.items()]


def _pair_id(pair: tuple[Model, Model, str]) -> str:
    return pair[2]


@pytest.mark.parametrize("pair", all_pairs(), ids=_pair_id)
def test_the_client_model_has_every_field_the_server_sends(pair: tuple[Model, Model, str]) -> None:
    client, server, path = pair
    left_out = {name for (model, name) in NOT_EXPOSED if model is client}
    missing = sorted(set(server.model_fields) - set(client.model_fields) - left_out)
    assert missing == [], (
        f"{client.__name__} (at {path}) lacks {server.__module__}.{server.__name__}'s "
        f"fields {missing}: add them to chatmodel/_models.py, typed as the server types them, "
        "or list them in NOT_EXPOSED with why"
    )


@pytest.mark.parametrize("pair", all_pairs(), ids=_pair_id)
def test_a_field_the_server_may_send_as_null_is_read_as_null(
    pair: tuple[Model, Model, str],
) -> None:
    """The server sends every field, null ones included: a client field that refuses null
    makes the whole answer unreadable (``invalid_response``)."""
    client, server, _ = pair
    refused = sorted(
        name
        for name, server_field in server.model_fields.items()
        if name in client.model_fields
        and _accepts_null(server_field.annotation)
        and not _accepts_null(client.model_fields[name].annotation)
        and (client, name) not in NEVER_NULL_FOR_THE_CLIENT
    )
    assert refused == [], f"{client.__name__} refuses null in {refused}; the server may send it"


def test_the_nested_models_are_found_and_each_is_listed() -> None:
    """The recursion reaches the models inside a run's answer, and every pair it finds is
    one listed above (a model nested in a new field needs its pair written down)."""
    inside_a_run = {(c, s) for c, s, _ in nested_pairs(chatmodel.LLMResponse, runs.LLMResponse)}
    assert {
        (chatmodel.ResponseDetail, runs.ResponseDetail),
        (chatmodel.FunctionCall, runs.FunctionCallOut),
        (chatmodel.ToolCall, runs.ToolCallOut),
        (chatmodel.Usage, sessions.UsageOut),
        (chatmodel.Attempt, runs.AttemptOut),
    } <= inside_a_run
    unlisted = {(c.__name__, s.__name__) for c, s, _ in all_pairs()} - {
        (c.__name__, s.__name__) for c, s in PAIRS
    }
    assert unlisted == set()


def test_the_exclusions_name_fields_the_server_has() -> None:
    server_of = {client: server for client, server in PAIRS}
    for client, name in [*NOT_EXPOSED, *NEVER_NULL_FOR_THE_CLIENT]:
        assert name in server_of[client].model_fields, f"{client.__name__}.{name}"

"""A streamed response: OpenAI's Responses stream events, each ``event: <type>`` with a
JSON ``data`` carrying a rising ``sequence_number``.

    response.created, response.in_progress
    per output item, in order:
      response.output_item.added
      a message:  response.content_part.added, response.output_text.delta...,
                  response.output_text.done, response.content_part.done
      a call:     response.function_call_arguments.delta..., ...arguments.done
      response.output_item.done
    response.completed (or response.incomplete: the reply hit max_output_tokens)

The run is recorded as any streamed run is (``openai_compat.chunks``, over the run
engine): the reply is stored once, complete, before the last event, and the ``done``
events carry it as stored. A failure after the stream began (the upstream broke off, the
run lost its lease, the database could not store the reply) ends the stream with
``response.failed``: nothing was stored for the reply. A failure before anything was
streamed is an ordinary error answer (``chunks.open_stream``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from chatmodel_service.db import Database
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.llm.types import LLMFailure, LLMResult, StreamDelta
from chatmodel_service.openai_compat.chunks import OpenedStream, open_stream
from chatmodel_service.openai_compat.errors import OpenAIError
from chatmodel_service.responses_api.ids import ItemId, response_id
from chatmodel_service.responses_api.schemas import ResponseError, ResponseObject
from chatmodel_service.responses_api.service import (
    PreparedResponse,
    completed_response,
    get_response,
    response_object,
)
from chatmodel_service.runs import EventFormat, server_shutdown


@dataclass
class _OpenItem:
    output_index: int
    item: dict[str, Any]  # as added (status in_progress)


@dataclass
class _Events:
    """Numbers and frames the events of one stream."""

    prepared: PreparedResponse
    sequence: int = 0
    opened: dict[str, _OpenItem] = field(default_factory=dict)  # by item id
    call_ids: dict[int, str] = field(default_factory=dict)  # a delta's call index -> item id

    def event(self, kind: str, **fields: Any) -> str:
        fields = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return f"event: {kind}\ndata: {json.dumps(fields, separators=(',', ':'))}\n\n"

    def response(self, kind: str, response: ResponseObject) -> str:
        return self.event(kind, response=response.model_dump(mode="json"))

    def snapshot(self, kind: str, error: ResponseError | None = None) -> str:
        """The response with no output (yet, or at all when it failed)."""
        prepared = self.prepared
        shown = response_object(
            prepared.echo,
            id=prepared.id,
            created_at=prepared.created_at,
            status="failed" if error else "in_progress",
            output=[],
            usage=None,
            detail=prepared.detail(),
            error=error,
        )
        return self.response(kind, shown)

    def _open(self, item: dict[str, Any]) -> list[str]:
        index = len(self.opened)
        self.opened[item["id"]] = _OpenItem(index, item)
        frames = [self.event("response.output_item.added", output_index=index, item=item)]
        if item["type"] == "message":
            frames.append(
                self.event(
                    "response.content_part.added",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
                )
            )
        return frames

    def delta(self, delta: StreamDelta) -> list[str]:
        frames: list[str] = []
        reply = self.prepared.reply_uuid
        if delta.content:
            message_id = str(ItemId(reply, "msg"))
            if message_id not in self.opened:
                frames += self._open(
                    {
                        "id": message_id,
                        "type": "message",
                        "status": "in_progress",
                        "role": "assistant",
                        "content": [],
                    }
                )
            frames.append(
                self.event(
                    "response.output_text.delta",
                    item_id=message_id,
                    output_index=self.opened[message_id].output_index,
                    content_index=0,
                    delta=delta.content,
                    logprobs=[],
                )
            )
        for piece in delta.tool_calls or []:
            position = int(piece.get("index") or 0)
            function = piece.get("function") or {}
            if position not in self.call_ids:
                item_id = str(ItemId(reply, "fc", position))
                self.call_ids[position] = item_id
                frames += self._open(
                    {
                        "id": item_id,
                        "type": "function_call",
                        "status": "in_progress",
                        "call_id": piece.get("id") or "",
                        "name": function.get("name") or "",
                        "arguments": "",
                    }
                )
            item_id = self.call_ids[position]
            if function.get("arguments"):
                frames.append(
                    self.event(
                        "response.function_call_arguments.delta",
                        item_id=item_id,
                        output_index=self.opened[item_id].output_index,
                        delta=function["arguments"],
                    )
                )
        return frames

    def finish(self, result: LLMResult) -> list[str]:
        """The ``done`` events of every item (opening those never streamed), then the end."""
        response = completed_response(self.prepared, result)
        frames: list[str] = []
        for item in response.output:
            shown = item.model_dump(mode="json")
            if item.id not in self.opened:
                frames += self._open({**shown, "status": "in_progress"} | _empty(shown))
            index = self.opened[item.id].output_index
            if shown["type"] == "message":
                part = shown["content"][0]
                common = {"item_id": item.id, "output_index": index, "content_index": 0}
                frames.append(
                    self.event(
                        "response.output_text.done", **common, text=part["text"], logprobs=[]
                    )
                )
                frames.append(self.event("response.content_part.done", **common, part=part))
            elif shown["type"] == "function_call":
                frames.append(
                    self.event(
                        "response.function_call_arguments.done",
                        item_id=item.id,
                        output_index=index,
                        name=shown["name"],
                        arguments=shown["arguments"],
                    )
                )
            frames.append(self.event("response.output_item.done", output_index=index, item=shown))
        ending = "response.incomplete" if response.status == "incomplete" else "response.completed"
        frames.append(self.response(ending, response))
        return frames

    def fail(self, failure: LLMFailure) -> str:
        error = ResponseError.of(failure.error_type, failure.error_log)
        return self.snapshot("response.failed", error)


def responses_closing(sent: int) -> str:
    """A Responses stream's end when the server shuts down before the response's own
    end came: an ``error`` event, numbered after the ``sent`` events before it."""
    fields = {
        "type": "error",
        "sequence_number": sent,
        "code": "server_shutdown",
        "message": server_shutdown().error_log,
        "param": None,
    }
    return f"event: error\ndata: {json.dumps(fields, separators=(',', ':'))}\n\n"


def _empty(item: dict[str, Any]) -> dict[str, Any]:
    """An item as added, before its content streamed."""
    if item["type"] == "message":
        return {"content": []}
    if item["type"] == "function_call":
        return {"arguments": ""}
    return {}


async def response_events(prepared: PreparedResponse, stream: OpenedStream) -> AsyncGenerator[str]:
    """The stream's events; closing it closes the run's stream (which records the run)."""
    events = _Events(prepared)
    yield events.snapshot("response.created")
    yield events.snapshot("response.in_progress")
    async with aclosing(stream.events()) as relayed:
        async for event in relayed:
            if isinstance(event, StreamDelta):
                for frame in events.delta(event):
                    yield frame
            elif isinstance(event.outcome, LLMFailure):
                yield events.fail(event.outcome)
            else:
                for frame in events.finish(event.outcome):
                    yield frame


async def background_events(
    database: Database,
    gateway: LLMGateway,
    prepared: PreparedResponse,
    project_id: uuid.UUID,
    cut_short: Callable[[int], LLMFailure],
) -> AsyncGenerator[str]:
    """A background response's stream, run in a task of its own (``BackgroundRuns``): the
    model call starts inside it, so a lost lease (a cancel from another process) stops
    it; a call that fails before its first piece ends the stream with its stored end
    (``response.failed``)."""
    try:
        opened = await open_stream(database, gateway, prepared.completion, cut_short)
    except OpenAIError:  # recorded by then
        events = _Events(prepared)
        yield events.snapshot("response.created")
        run_id = prepared.completion.call_id
        yield await responses_end(database, project_id, run_id, events.sequence)
        return
    async with aclosing(response_events(prepared, opened)) as frames:
        async for frame in frames:
            yield frame


async def responses_end(
    database: Database, project_id: uuid.UUID, run_id: uuid.UUID, seq: int
) -> str:
    """A response stream's end as stored: ``response.completed`` (or ``.incomplete``, or
    ``.failed``, a cancelled response's too: the stream has no other end for it), with
    the response as ``GET /v1/responses/{id}`` shows it."""
    shown = await get_response(database, project_id, response_id(run_id))
    kind = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(
        shown.status, "response.failed"
    )
    data = {"type": kind, "sequence_number": seq, "response": shown.model_dump(mode="json")}
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


RESPONSES_EVENTS = EventFormat("responses", "", responses_end)

"""Run routes. A run takes the database factory, not a request transaction: it must not
hold a transaction open while the model answers."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query
from fastapi.responses import Response, StreamingResponse

from chatmodel_service.chat_models.schemas import MAX_NUMBER
from chatmodel_service.config import Settings
from chatmodel_service.db import Database
from chatmodel_service.deps import (
    AdminOnly,
    BackgroundRunsDep,
    CallerDep,
    DatabaseDep,
    DbSession,
    GatewayDep,
    ProjectId,
    SettingsDep,
)
from chatmodel_service.errors import InvalidInput
from chatmodel_service.limits import check_functions, check_messages
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.responses import EventStream, schema_response
from chatmodel_service.runs.background import (
    BackgroundRuns,
    cancel_run,
    get_run,
    run_stream_format,
)
from chatmodel_service.runs.events import resume_after
from chatmodel_service.runs.idempotency import Replayed
from chatmodel_service.runs.lease import RunLeftQueue
from chatmodel_service.runs.queue import join_queue
from chatmodel_service.runs.records import list_runs
from chatmodel_service.runs.schemas import (
    DraftTrialRequest,
    LLMResponse,
    LLMStreamResponse,
    RunList,
    RunRequest,
    RunState,
    VersionTrialRequest,
)
from chatmodel_service.runs.service import PreparedRun, start_run
from chatmodel_service.runs.stream_run import native_closing
from chatmodel_service.runs.trial import draft_trial_run, trial_run

router = APIRouter(prefix="/v1/sessions", tags=["runs"])
# A run by its own uuid: its state and result, and cancelling it.
runs_router = APIRouter(prefix="/v1/runs", tags=["runs"])
# Test runs of a version live under the chat model's URL but are runs all the same.
version_test_router = APIRouter(prefix="/v1/chat-models", tags=["runs"])

RUN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": LLMResponse,
        "description": "An LLMResponse, or with `stream: true` a text/event-stream of "
        "LLMStreamResponse events ending with `data: [DONE]`.",
        "content": {"text/event-stream": {"schema": LLMStreamResponse.model_json_schema()}},
    }
}


RUN_RESPONSES[202] = {
    "model": RunState,
    "description": "With `background: true`: the run, `running`; follow it with "
    "`GET /v1/runs/{uuid}`.",
}
RUN_RESPONSES[409] = {
    "description": "`session_busy`: another run holds the session (Retry-After says when "
    "to try again); `run_in_progress`: the first request with this Idempotency-Key is "
    "still running."
}
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,200}$"


@router.post("/{session_uuid}/run", response_model=None, responses=RUN_RESPONSES)
async def run(
    session_uuid: uuid.UUID,
    database: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    project: ProjectId,
    caller: CallerDep,
    background_runs: BackgroundRunsDep,
    body: Annotated[RunRequest | None, Body()] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="Makes the run safe to retry: a repeat with the same key (and the "
            "same body) returns the first run's stored result instead of calling the model "
            "again. Up to 200 visible ASCII characters, unique per session.",
        ),
    ] = None,
) -> Response:
    """Run the model on the session: one run at a time per session (409 `session_busy`
    otherwise, or `if_busy: wait`). Upstream failures are an LLMResponse with `error: true`."""
    request = body or RunRequest()
    check_functions(settings, request.functions, "functions")
    check_functions(settings, request.tools, "tools")
    if request.messages:
        check_messages(settings, [m.content for m in request.messages], "messages")
    waits = request.if_busy in ("wait", "enqueue") and not request.background
    if waits and request.wait_seconds > settings.max_run_wait_seconds:
        raise InvalidInput(
            f"wait_seconds may be at most {settings.max_run_wait_seconds:g} on this server.",
            field="wait_seconds",
        )
    if request.background and request.if_busy == "enqueue":
        return await _enqueue_in_background(
            database,
            gateway,
            settings,
            project,
            session_uuid,
            request,
            caller.key_name,
            idempotency_key,
            background_runs,
        )
    try:
        started = await start_run(
            database,
            gateway,
            settings,
            project,
            session_uuid,
            request,
            key_name=caller.key_name,
            idempotency_key=idempotency_key,
        )
    except RunLeftQueue as left:  # cancelled while it waited in the queue
        async with database.transaction(write=False) as db:
            state = await get_run(db, project, left.run_id)
        return schema_response(state.response or LLMResponse(), {"X-Run-Id": str(left.run_id)})
    if isinstance(started, Replayed):
        headers = {"Idempotent-Replayed": "true"}
        replayed = started.response.detail.run_uuid if started.response.detail else None
        if request.stream and replayed is not None:  # the first run's events, or its end
            frames = background_runs.events.follow(replayed, project, -1, "native")
            return EventStream(frames, headers | {"X-Run-Id": str(replayed)})
        return schema_response(started.response, headers)
    run_id = {"X-Run-Id": str(started.run_id)}
    if started.interrupted is not None:  # its call is closed here, or by its own server
        background_runs.cancel(started.interrupted)
    if request.background:
        started = replace(started, keep_result=True)
        if request.stream:
            background_runs.start_stream(database, gateway, started)
        else:
            background_runs.start(database, gateway, started)
        async with database.transaction(write=False) as db:
            state = await get_run(db, project, started.run_id)
        return schema_response(state, run_id, status_code=202)
    if request.stream:
        events = background_runs.start_stream(database, gateway, started)
        frames = background_runs.relay(events, request.on_disconnect)
        return EventStream(frames, run_id, closing=native_closing)
    finished = await background_runs.complete(database, gateway, started)
    if finished is None:  # cancelled or interrupted meanwhile: answered as recorded
        async with database.transaction(write=False) as db:
            state = await get_run(db, project, started.run_id)
        return schema_response(state.response or LLMResponse(), run_id)
    return schema_response(finished.response)


@runs_router.get("/{run_uuid}")
async def get_run_state(run_uuid: uuid.UUID, db: DbSession, project: ProjectId) -> RunState:
    """A run of a session by its uuid: its record and, once finished, its LLMResponse."""
    return await get_run(db, project, run_uuid)


async def _enqueue_in_background(
    database: Database,
    gateway: LLMGateway,
    settings: Settings,
    project: uuid.UUID,
    session_uuid: uuid.UUID,
    request: RunRequest,
    key_name: str | None,
    idempotency_key: str | None,
    background_runs: BackgroundRuns,
) -> Response:
    """202 at once with the run ``queued``; it waits for its turn in this process."""
    queued = await join_queue(database, settings, project, session_uuid, request, key_name)

    async def turn() -> PreparedRun | Replayed:
        return await start_run(
            database,
            gateway,
            settings,
            project,
            session_uuid,
            request,
            key_name=key_name,
            idempotency_key=idempotency_key,
            queued=queued,
        )

    background_runs.start_queued(gateway, queued, turn, request.stream)
    async with database.transaction(write=False) as db:
        state = await get_run(db, project, queued)
    return schema_response(state, {"X-Run-Id": str(queued)}, status_code=202)


@runs_router.get(
    "/{run_uuid}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The run's server-sent events after the one named (all of them "
            "without `after` or `Last-Event-ID`), live while it runs, to its end. Each has "
            "an `id: <run uuid>:<seq>`; a native run's end with `data: [DONE]`.",
            "content": {"text/event-stream": {"schema": LLMStreamResponse.model_json_schema()}},
        }
    },
)
async def run_events(
    run_uuid: uuid.UUID,
    database: DatabaseDep,
    project: ProjectId,
    background_runs: BackgroundRunsDep,
    after: Annotated[
        int | None,
        Query(ge=-1, le=10**9, description="The seq of the last event you have (-1: none)."),
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            max_length=100,
            description="As a browser's EventSource sends it on reconnecting: the id of "
            "the last event it has. `after` wins when both are given.",
        ),
    ] = None,
) -> EventStream:
    """Follow a run's events, from any server process (start on one, resume on another):
    those of a streamed or background run are kept for `run_events_retention_seconds`
    after it ends; after that, and for a run that kept none, its end alone, from its
    stored result."""
    after = resume_after(run_uuid, after, last_event_id)
    async with database.transaction(write=False) as db:
        stream_format = await run_stream_format(db, project, run_uuid)
    frames = background_runs.events.follow(run_uuid, project, after, stream_format)
    return EventStream(frames)


@runs_router.post("/{run_uuid}/cancel")
async def cancel(
    run_uuid: uuid.UUID,
    database: DatabaseDep,
    project: ProjectId,
    background_runs: BackgroundRunsDep,
) -> RunState:
    """Stop a running run: its model call is closed, nothing is stored for its reply, its
    status is `cancelled` and the session is free. A finished run is answered unchanged."""
    return await cancel_run(database, background_runs, project, run_uuid)


@router.get("/{session_uuid}/runs")
async def get_runs(
    session_uuid: uuid.UUID,
    db: DbSession,
    project: ProjectId,
    limit: Annotated[
        int | None,
        Query(ge=1, le=1000, description="At most this many runs a page (default: all)."),
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=500, description="next_cursor of the previous page.")
    ] = None,
) -> RunList:
    """The session's runs, oldest first: all of them, or with ``limit`` a page at a time
    (follow ``next_cursor``), each page one range read of the session's runs by time."""
    return await list_runs(db, project, session_uuid, limit=limit, cursor=cursor)


# Before the numbered route: its ``{number}`` would take "draft" and answer 422.
@version_test_router.post("/{name}/versions/draft/test", dependencies=[AdminOnly])
async def run_draft_test(
    name: Annotated[str, Path(description="The chat model's name.")],
    body: DraftTrialRequest,
    database: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    project: ProjectId,
) -> LLMResponse:
    """One model call on an unsaved version (``version``: the body of creating one, checked
    the same way; 422 fields under ``version.``) with the given messages; stores nothing.
    Answers 200 with an LLMResponse whether or not the model call worked; ``detail`` is
    null, since no stored version answered."""
    return await draft_trial_run(database, gateway, settings, project, name, body)


@version_test_router.post("/{name}/versions/{number}/test", dependencies=[AdminOnly])
async def run_version_test(
    name: Annotated[str, Path(description="The chat model's name.")],
    number: Annotated[int, Path(ge=1, le=MAX_NUMBER)],
    body: VersionTrialRequest,
    database: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    project: ProjectId,
) -> LLMResponse:
    """One model call on this version with the given messages; stores nothing (no session,
    no messages, no run record). Answers 200 with an LLMResponse whether or not the model
    call worked; ``detail.session_uuid``, ``message_uuid`` and ``run_uuid`` are null."""
    return await trial_run(database, gateway, settings, project, name, number, body)

"""The one implementation of what the client says and how it reads the answers.

Nothing here does I/O. Each API call is an *operation*: a generator that yields the
:class:`Request` it wants sent, receives the ``httpx.Response`` (or has an
:class:`APIConnectionError` thrown in when nothing came back) and finally returns the
result, the way ``httpx.Auth.auth_flow`` works. ``_transport`` drives the same operation
with ``httpx.Client`` or ``httpx.AsyncClient``; streamed runs feed their lines to one
``_run_stream.RunStream``. So request building, retries, response parsing and error
mapping (``_errors``) exist once for both.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from chatmodel._config import ClientSettings
from chatmodel._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ChatModelError,
    api_error,
    error_body,
    invalid_response,
)
from chatmodel._models import (
    ChatModelConfig,
    LLMResponse,
    LLMStreamResponse,
    Message,
    MessagePage,
    Session,
)
from chatmodel._version import __version__

T = TypeVar("T")
ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)

# Idempotent requests (reads, session creation with our uuid, messages with their uuids,
# plain runs with their Idempotency-Key) are sent again this many times when nothing came
# back or the server asked for a retry. A streamed run is never resent (see start_stream):
# it is resumed from its events (_run_stream.STREAM_RESUMES).
TRANSPORT_RETRIES = 2
USER_AGENT = f"chatmodel-python/{__version__}"
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"

IfBusy = Literal["reject", "wait"]
MessageOrder = Literal["asc", "desc"]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def send_args(self, settings: ClientSettings) -> dict[str, Any]:
        """Keyword arguments for ``client.request`` / ``client.stream``."""
        headers = settings.headers() | {"User-Agent": USER_AGENT} | self.headers
        if self.body is not None:
            headers["Content-Type"] = "application/json"
        return {
            "method": self.method,
            "url": settings.url(self.path),
            "params": self.params or None,
            "content": self.body,
            "headers": headers,
            "timeout": settings.timeout,
        }


def _json_default(value: object) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_request(
    method: str, path: str, payload: Any, headers: dict[str, str] | None = None
) -> Request:
    """Encoded once, so a retried request sends the very same bytes."""
    body = json.dumps(payload, separators=(",", ":"), default=_json_default)
    return Request(method, path, body=body.encode(), headers=headers or {})


Operation = Generator[Request, httpx.Response, T]


@dataclass
class SessionState:
    """A ChatModel's session. Its uuid is fixed when the ChatModel is made: the caller's
    (``named``) or a fresh one.

    A new session is made before its first write. A write to a named one goes straight to
    it, as before; only when the server answers that it has no session under that uuid is
    the session made (under the ChatModel's name and version) and the write sent again
    (:func:`write_to_session`). ``created``: the server is known to have had the session
    (this ChatModel made it, wrote to it or deleted it), so a session deleted since is not
    made again: the write finds no session. Reads ask for a named session as it is (the
    server says ``session_not_found`` if it has none); a new one has nothing to read yet.
    """

    chat_model: str
    version: str | int
    uuid: uuid.UUID
    named: bool
    created: bool = False
    # Sent when the session is made, never after: its template values and its metadata
    # (``metadata.user_id`` keys a sticky split).
    variables: Mapping[str, str] | None = None
    metadata: Mapping[str, Any] | None = None

    @property
    def path(self) -> str:
        return f"/v1/sessions/{self.uuid}"

    @property
    def readable(self) -> bool:
        """Whether the server may have this session, so reads ask for it."""
        return self.named or self.created


# -- reading answers ------------------------------------------------------------------


def parse(model: type[ModelT], response: httpx.Response) -> ModelT:
    if response.is_error:
        raise api_error(response)
    try:
        return model.model_validate_json(response.content)
    except pydantic.ValidationError as exc:
        raise invalid_response(response, f"{exc.error_count()} problem(s) in the body") from exc


def error_type(exc: ChatModelError) -> str:
    if isinstance(exc, APITimeoutError):
        return "api_timeout"
    if isinstance(exc, APIConnectionError):
        return "api_connection_error"
    if isinstance(exc, APIError):
        return exc.code
    return "invalid_request"


def failed_run(exc: ChatModelError) -> LLMResponse:
    return LLMResponse(error=True, error_type=error_type(exc), error_log=str(exc))


def failed_chunk(exc: ChatModelError) -> LLMStreamResponse:
    return LLMStreamResponse(done=True, error=True, error_type=error_type(exc), error_log=str(exc))


# -- operations -----------------------------------------------------------------------


def _lost_a_write_race(response: httpx.Response) -> bool:
    """The server's answer to a write that collided with a concurrent one: "retry"."""
    if response.status_code != 409:
        return False
    body = error_body(response) or {}
    return body.get("error") == "conflict" and body.get("field") is None


def send_with_retries(
    request: Request, *, resend: Request | None = None
) -> Operation[httpx.Response]:
    """Send an idempotent request; send it again (TRANSPORT_RETRIES times at most, as
    ``resend`` when given) when nothing came back or when it lost a race with a
    concurrent write."""
    attempt = 0
    while True:
        try:
            response = yield request
        except APIConnectionError:
            if attempt >= TRANSPORT_RETRIES:
                raise
        else:
            if attempt >= TRANSPORT_RETRIES or not _lost_a_write_race(response):
                return response
        attempt += 1
        request = resend or request


def create_session(state: SessionState) -> Operation[None]:
    """Create the session under its uuid, chat model name and version, with its
    ``variables`` and ``metadata`` when the ChatModel was given them.

    201 (created) and 200 (it already existed: an earlier attempt, or a concurrent first
    call of a ChatModel with this uuid, got through; it keeps its pinned version) are both
    fine. Any 409 is asked once more: a create racing one for the same uuid can be told the
    uuid "is taken"; asked again, the server finds the session, or repeats the conflict if
    the uuid really is taken (by another chat model's session).
    """
    payload: dict[str, Any] = {
        "chat_model": state.chat_model,
        "version": state.version,
        "session_uuid": state.uuid,
    }
    if state.variables is not None:
        payload["variables"] = dict(state.variables)
    if state.metadata is not None:
        payload["metadata"] = dict(state.metadata)
    request = json_request("POST", "/v1/sessions", payload)
    response = yield from send_with_retries(request)
    if response.status_code == 409:
        response = yield from send_with_retries(request)
    if response.is_error:
        raise api_error(response)
    state.created = True


def session_to_make(state: SessionState, response: httpx.Response) -> bool:
    """Whether ``response`` to a write says the server has no session under the uuid the
    caller named, which this ChatModel has not seen either: then it is made on this write."""
    if not state.named or state.created or response.status_code != 404:
        return False
    body = error_body(response) or {}
    return body.get("error") == "session_not_found"


def write_to_session(
    state: SessionState, request: Request, *, resend: Request | None = None
) -> Operation[httpx.Response]:
    """Send a write (messages, a plain run) to the session; a new session is made first.

    A named session the server does not have is made when the server says so, and the write
    is sent once more: the same bytes (a run under the same Idempotency-Key: a refused run
    records nothing). So continuing a session costs no extra request.
    """
    if not state.readable:
        yield from create_session(state)
    response = yield from send_with_retries(request, resend=resend)
    if session_to_make(state, response):
        yield from create_session(state)
        response = yield from send_with_retries(request, resend=resend)
    if not response.is_error:
        state.created = True
    return response


def get_config(state: SessionState) -> Operation[ChatModelConfig]:
    params = {"version": str(state.version)}
    if state.readable:
        params["session_uuid"] = str(state.uuid)
    path = f"/v1/chat-models/{quote(state.chat_model, safe='')}/config"
    response = yield from send_with_retries(Request("GET", path, params=params))
    return parse(ChatModelConfig, response)


class _MessageList(pydantic.BaseModel):
    data: list[Message]


def with_uuids(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Copies of ``messages``, each with a ``uuid`` (a fresh one unless it had one), so a
    resent request returns the stored messages instead of storing them twice."""
    return [{**message, "uuid": str(message.get("uuid") or uuid.uuid4())} for message in messages]


def add_messages(
    state: SessionState, messages: Sequence[Mapping[str, Any]]
) -> Operation[list[Message]]:
    request = json_request("POST", f"{state.path}/messages", {"messages": with_uuids(messages)})
    response = yield from write_to_session(state, request)
    return parse(_MessageList, response).data


def list_messages(
    state: SessionState,
    *,
    after: int | None,
    before: int | None,
    order: MessageOrder | None,
    limit: int | None,
) -> Operation[MessagePage]:
    """A page of the session's messages; an empty page, asking nothing, before a new
    session is made (it has no messages yet, as ``get_config`` says too)."""
    if not state.readable:
        return MessagePage(data=[], has_more=False)
    bounds = {"after": after, "before": before, "order": order, "limit": limit}
    params = {name: str(value) for name, value in bounds.items() if value is not None}
    response = yield from send_with_retries(Request("GET", f"{state.path}/messages", params=params))
    return parse(MessagePage, response)


def fork(
    state: SessionState,
    *,
    at_message_uuid: str | uuid.UUID | None,
    at_seq: int | None,
    session_uuid: str | uuid.UUID | None,
    metadata: Mapping[str, Any] | None,
) -> Operation[Session]:
    """Fork the session. The new session's uuid is chosen here unless given, so a resent
    request returns the fork the first attempt made instead of making a second one."""
    payload = {
        "at_message_uuid": at_message_uuid,
        "at_seq": at_seq,
        "session_uuid": str(session_uuid or uuid.uuid4()),
        "metadata": metadata,
    }
    body = {name: value for name, value in payload.items() if value is not None}
    request = json_request("POST", f"{state.path}/fork", body)
    response = yield from send_with_retries(request)
    return parse(Session, response)


def delete_session(state: SessionState, *, force: bool) -> Operation[None]:
    """Delete the session, resending (TRANSPORT_RETRIES times at most) when nothing came
    back or the delete lost a race with a concurrent write. A 404 to a request resent after
    no answer means the unanswered one deleted it: that is success too."""
    request = Request("DELETE", state.path, params={"force": "true"} if force else {})
    attempt, unanswered = 0, False
    while True:
        try:
            response = yield request
        except APIConnectionError:
            if attempt >= TRANSPORT_RETRIES:
                raise
            unanswered = True
        else:
            if not response.is_error or (unanswered and response.status_code == 404):
                state.created = True  # it existed: later writes must not make it again
                return
            if attempt >= TRANSPORT_RETRIES or not _lost_a_write_race(response):
                raise api_error(response)
        attempt += 1


@dataclass(frozen=True)
class RunOptions:
    functions: Sequence[Mapping[str, Any]] | None = None
    tools: Sequence[Mapping[str, Any]] | None = None
    tool_choice: str | Mapping[str, Any] | None = None
    function_call: str | Mapping[str, Any] | None = None
    params: Mapping[str, Any] | None = None
    if_busy: IfBusy | None = None
    wait_seconds: float | None = None
    regenerate: bool = False

    def request(
        self, state: SessionState, *, stream: bool, idempotency_key: str, background: bool = False
    ) -> Request:
        """The run request. A streamed run asks the server to go on when its connection
        drops (``on_disconnect: continue``), so the stream can be resumed from its events; the
        client cancels a stream it abandons itself (``_run_stream``). A background run
        (``background: true``) has no connection to lose."""
        payload: dict[str, Any] = {
            "functions": self.functions,
            "tools": self.tools,
            "tool_choice": self.tool_choice,
            "function_call": self.function_call,
            "params": self.params,
            "if_busy": self.if_busy,
            "wait_seconds": self.wait_seconds,
            "regenerate": self.regenerate or None,
        }
        payload = {name: value for name, value in payload.items() if value is not None}
        if stream:
            payload["stream"] = True
        if background:
            payload["background"] = True
        elif stream:
            payload["on_disconnect"] = "continue"
        headers = {IDEMPOTENCY_KEY_HEADER: idempotency_key}
        return json_request("POST", f"{state.path}/run", payload, headers)


class InvalidRunOptions(ChatModelError):
    """Run options that cannot be sent as JSON; reported by run/arun, never raised."""


def run_request(
    state: SessionState,
    options: RunOptions,
    *,
    stream: bool,
    idempotency_key: str,
    background: bool = False,
) -> Request:
    try:
        return options.request(
            state, stream=stream, idempotency_key=idempotency_key, background=background
        )
    except (TypeError, ValueError) as exc:  # e.g. a function schema holding a Python object
        raise InvalidRunOptions(f"The run options cannot be sent as JSON: {exc}") from exc


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


def run(state: SessionState, options: RunOptions) -> Operation[LLMResponse]:
    """Never raises: every failure comes back as ``LLMResponse(error=True, ...)``.

    The run carries a fresh Idempotency-Key. When no answer came back it is resent with
    the same key (and the same body) and ``if_busy: "wait"``: the server answers a key it
    has seen with that run's stored result, waiting first if the run is still going (up
    to ``wait_seconds``, else 409 ``run_in_progress``). So a retried run never calls the
    model twice and never stores a second reply. The caller's ``if_busy`` holds for the
    first send; a resend has to wait, or it would be refused by its own first attempt.
    """
    try:
        key = new_idempotency_key()
        request = run_request(state, options, stream=False, idempotency_key=key)
        resend = run_request(
            state, replace(options, if_busy="wait"), stream=False, idempotency_key=key
        )
        response = yield from write_to_session(state, request, resend=resend)
        return parse(LLMResponse, response)
    except ChatModelError as exc:
        return failed_run(exc)


def start_stream(
    state: SessionState, options: RunOptions
) -> Operation[Request | LLMStreamResponse]:
    """Everything before a streamed run: the request to stream, or the error chunk instead.

    A streamed run carries a fresh Idempotency-Key too (its run record keeps it), but it
    is never resent: a stream that breaks is resumed from the run's events instead
    (``_run_stream``), where the run goes on (``on_disconnect: continue``); the key finds
    the run when its answer never came.
    """
    try:
        key = new_idempotency_key()
        request = run_request(state, options, stream=True, idempotency_key=key)
        if not state.readable:
            yield from create_session(state)
    except ChatModelError as exc:
        return failed_chunk(exc)
    return request


def refused_stream(
    state: SessionState, request: Request, response: httpx.Response
) -> Operation[Request | LLMStreamResponse]:
    """A streamed run the server answered with something else than an event stream (read
    in full): the error chunk, or, when the server has no session under the named uuid
    (:func:`session_to_make`), the same request to stream again once the session is made.
    Nothing was streamed or recorded, so that is no resend of a run."""
    try:
        if session_to_make(state, response):
            yield from create_session(state)
            return request
        if response.is_error:
            raise api_error(response)
        raise invalid_response(response, "not an event stream")
    except ChatModelError as exc:
        return failed_chunk(exc)


# -- deprecated shapes ----------------------------------------------------------------


def prompts(config: ChatModelConfig) -> list[dict[str, Any]]:
    return [{"role": "system", "content": config.system_prompt}]


def chat_log(config: ChatModelConfig) -> list[dict[str, Any]]:
    return prompts(config) + [dict(message) for message in config.message_logs]

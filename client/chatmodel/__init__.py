"""Python client for a chatmodel server: talk to a named chat model in a stored session.

::

    from chatmodel import ChatModel

    session = ChatModel("simple_assistant")
    session.add_messages([{"role": "user", "content": "Hello, I'm a user."}])
    res = session.run()
    print(res.content)

Settings (resolved when a ChatModel is created; first match wins):

1. ``ChatModel(..., base_url=..., api_key=..., timeout=...)``;
2. ``chatmodel.configure(base_url=..., api_key=..., timeout=...)`` (each call replaces the
   previous one);
3. the environment variables ``CHATMODEL_BASE_URL`` and ``CHATMODEL_API_KEY``;
4. ``http://127.0.0.1:8000``, no API key, and a timeout of 10 s to connect and 600 s
   for the rest (models can be slow).

A timeout is a number of seconds or an ``httpx.Timeout``. A key is sent as
``Authorization: Bearer <key>``.

Errors:

* ``run`` and ``arun`` never raise. Transport failures, timeouts, error answers from the
  server and unreadable bodies come back as ``LLMResponse(error=True, error_type=...,
  error_log=...)``; streamed, as one last chunk with ``done=True, error=True``.
  ``error_type`` is the model call's failure (``rate_limited``, ``timeout``, ...), the
  server's error code (``session_not_found``, ``session_busy``, ``validation_error``, ...),
  or, when the server itself could not be used, ``api_connection_error``, ``api_timeout``
  or ``invalid_response``. A plain run that got no answer is first resent with the same
  ``Idempotency-Key`` (twice at most), which never makes the model answer twice.
* ``run(background=True)`` (and ``arun``) returns a ``RunHandle`` (``AsyncRunHandle``) on a
  run that goes on on the server: ``status()`` (a ``RunState``), ``wait(timeout)`` (its
  ``LLMResponse``; ``RunWaitTimeout``, a ``TimeoutError``, when the timeout passes),
  ``events()`` (its chunks, resumed after a dropped connection; never raises) and
  ``cancel()``. ``get_run(uuid)`` / ``aget_run(uuid)`` make one for any run. Starting a
  background run, ``get_run`` and the handles' ``status``, ``wait`` and ``cancel`` raise
  as the calls below do (``RunNotFound`` for an unknown run).
* A streamed run resumes by itself after a dropped connection (5 reconnections in a row
  at most), and stopping early cancels its run.
* ``get_config``, ``add_messages``, ``list_messages``, ``fork``, ``delete_session``,
  ``log_score``, ``log_score_to_session`` (and their ``a`` twins), ``get_prompts`` and
  ``get_messages`` raise ``ChatModelError`` subclasses: ``APIConnectionError`` when the
  server cannot be reached, else an
  ``APIError`` named after the server's error code, such as ``ChatModelNotFound``,
  ``SessionNotFound``, ``ValidationError``, ``AuthenticationError`` (``unauthorized``),
  ``RateLimitError`` (``rate_limited``) or ``SessionBusyError`` (``session_busy``, a
  ``ConflictError``); ``retry_after`` holds the seconds of the server's ``Retry-After``
  (see ``chatmodel._errors``). ``log_score`` without ``message_uuid`` raises
  ``NothingToScore`` when the session has no reply to score.
"""

from chatmodel._client import ChatModel
from chatmodel._config import configure
from chatmodel._errors import (
    AlreadyExists,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    ChatModelError,
    ChatModelNotFound,
    ConflictError,
    InvalidInputError,
    MessageNotFound,
    NotFoundError,
    NothingPublished,
    NothingToScore,
    PayloadTooLarge,
    PermissionDeniedError,
    RateLimitError,
    RunNotFound,
    RunWaitTimeout,
    ServiceUnavailableError,
    SessionBusyError,
    SessionNotFound,
    ValidationError,
    VersionNotFound,
)
from chatmodel._models import (
    AssembledMessage,
    Attempt,
    ChatModelConfig,
    Feedback,
    FunctionCall,
    FunctionCallDelta,
    LLMResponse,
    LLMStreamResponse,
    Message,
    MessagePage,
    ResponseDetail,
    RunState,
    Session,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from chatmodel._run_handle import AsyncRunHandle, RunHandle
from chatmodel._version import __version__

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AlreadyExists",
    "AssembledMessage",
    "AsyncRunHandle",
    "Attempt",
    "AuthenticationError",
    "ChatModel",
    "ChatModelConfig",
    "ChatModelError",
    "ChatModelNotFound",
    "ConflictError",
    "Feedback",
    "FunctionCall",
    "FunctionCallDelta",
    "InvalidInputError",
    "LLMResponse",
    "LLMStreamResponse",
    "Message",
    "MessageNotFound",
    "MessagePage",
    "NotFoundError",
    "NothingPublished",
    "NothingToScore",
    "PayloadTooLarge",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseDetail",
    "RunHandle",
    "RunNotFound",
    "RunState",
    "RunWaitTimeout",
    "ServiceUnavailableError",
    "Session",
    "SessionBusyError",
    "SessionNotFound",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "ValidationError",
    "VersionNotFound",
    "__version__",
    "configure",
]

"""Client and server hold to one error vocabulary. Every ``error`` code the server's native
API can answer is read from the server's own code (its ``ServiceError`` classes, and the
codes its error handlers write as literals), and each must have a client exception of its
own (``ERRORS_BY_CODE``) or be mapped by its status on purpose (``CODES_MAPPED_BY_STATUS``).
A code added to the server without a decision in the client fails here."""

from __future__ import annotations

import ast
import email.utils
import importlib
import inspect
import pkgutil
import time
import uuid
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

import chatmodel
import chatmodel_service
from chatmodel import ChatModel
from chatmodel._errors import CODES_MAPPED_BY_STATUS, ERRORS_BY_CODE, ERRORS_BY_STATUS
from chatmodel_service.errors import ServiceError
from chatmodel_service.llm.gateway import LLMGateway
from tests.client.recording import Recorder
from tests.support.auth import BASE_URL, seed_key, started_app

# The adapters serving other APIs' clients (OpenAI's, LLM Engine's, EGP's, promptmodel's):
# their routes answer those APIs' error shapes, which this client never reads.
ADAPTER_PACKAGES = tuple(
    f"chatmodel_service.{name}"
    for name in (
        "openai_compat",
        "responses_api",
        "llm_engine_compat",
        "egp_compat",
        "promptmodel_compat",
    )
)
# ServiceErrors that only those adapters' routes raise (OpenAI's error shape is
# ``{"error": {"message", "type", "param", "code"}}``), which this client never receives.
ADAPTER_ROUTES_ONLY = {
    "history_mismatch": "a chat completion's messages that do not repeat the session's "
    "history (openai_compat.conversation)",
    "response_not_found": "a Responses API id that names no stored response "
    "(responses_api.binding)",
    "conversation_not_found": "a Conversations API id that names no session "
    "(responses_api.binding)",
    "item_not_found": "a conversation item id that names no live message "
    "(responses_api.conversations)",
}
# The codes the server's error handlers write as literals, with the status each comes with.
HANDLER_CODE_STATUS = {
    "validation_error": 422,  # a request that breaks a schema
    "not_found": 404,  # a path no route serves
    "method_not_allowed": 405,
    "http_error": 400,  # any other status of Starlette's HTTPException
    "internal_error": 500,
}


# -- the server's codes, from its code -----------------------------------------------------


@cache
def service_modules() -> tuple[ModuleType, ...]:
    """Every module of the server package, imported (so every ServiceError is defined)."""
    names = [
        info.name
        for info in pkgutil.walk_packages(chatmodel_service.__path__, "chatmodel_service.")
    ]
    return tuple(importlib.import_module(name) for name in ["chatmodel_service", *names])


def source_of(module: ModuleType) -> str:
    assert module.__file__ is not None, module.__name__
    return Path(module.__file__).read_text(encoding="utf-8")


def native_modules() -> list[ModuleType]:
    return [m for m in service_modules() if not m.__name__.startswith(ADAPTER_PACKAGES)]


def error_classes() -> list[type[ServiceError]]:
    """ServiceError and all its subclasses, wherever they are defined."""
    service_modules()
    found: list[type[ServiceError]] = []
    pending: list[type[ServiceError]] = [ServiceError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def native_error_classes() -> dict[str, type[ServiceError]]:
    """The native API's ServiceErrors by code."""
    classes: dict[str, type[ServiceError]] = {}
    for cls in error_classes():
        if cls.__module__.startswith(ADAPTER_PACKAGES):
            continue
        other = classes.setdefault(cls.code, cls)
        assert other.status_code == cls.status_code, f"{cls.code}: two statuses"
    return classes


def _strings(node: ast.AST) -> set[str]:
    return {
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }


def _literal_codes(module: ModuleType) -> set[str]:
    """The codes of the error bodies (dicts with "error" and "detail") ``module`` writes as
    literals: ``"error": "internal_error"``, or ``codes.get(status, "http_error")`` with
    ``codes`` a dict literal of the module."""
    tree = ast.parse(source_of(module))
    dicts = {
        target.id: node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    codes: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Dict):
            continue
        keys = {
            key.value: value
            for key, value in zip(node.keys, node.values, strict=True)
            if isinstance(key, ast.Constant)
        }
        if "error" not in keys or "detail" not in keys:
            continue
        value = keys["error"]
        if isinstance(value, ast.Attribute) and value.attr == "code":
            continue  # ServiceError.body(): the class's code, read from the classes
        names = {n.id for n in ast.walk(value) if isinstance(n, ast.Name)}
        found = _strings(value).union(*(_strings(dicts[name]) for name in names & dicts.keys()))
        assert found, (
            f"{module.__name__}, line {value.lineno}: cannot tell which codes "
            f"{ast.unparse(value)} answers; teach this test to read them"
        )
        codes |= found
    return codes


def handler_codes() -> set[str]:
    return set().union(*(_literal_codes(module) for module in native_modules()))


def server_codes() -> dict[str, int]:
    """Every code the native API can answer, with its status."""
    codes = {code: cls.status_code for code, cls in native_error_classes().items()}
    for code in handler_codes():
        codes.setdefault(code, HANDLER_CODE_STATUS.get(code, 0))
    return codes


# -- every code has a decision -------------------------------------------------------------


def test_the_server_codes_are_found() -> None:
    """The reading above finds what is known to be there (else the tests below prove
    nothing)."""
    codes = server_codes()
    assert {"unauthorized", "rate_limited", "session_busy", "chat_model_not_found"} <= set(codes)
    assert {"validation_error", "internal_error", "method_not_allowed"} <= handler_codes()
    assert "not_ready" in codes  # a ServiceError defined outside errors.py
    assert not set(ADAPTER_ROUTES_ONLY) & set(codes)


def test_every_code_the_handlers_write_has_a_status_here() -> None:
    assert handler_codes() == set(HANDLER_CODE_STATUS)


def test_every_server_code_has_a_client_class_or_is_mapped_by_status_on_purpose() -> None:
    codes = set(server_codes())
    undecided = sorted(codes - ERRORS_BY_CODE.keys() - CODES_MAPPED_BY_STATUS)
    assert undecided == [], (
        f"server codes without a client decision: {undecided}; give each an exception in "
        "chatmodel/_errors.py ERRORS_BY_CODE, or list it in CODES_MAPPED_BY_STATUS with why"
    )
    assert ERRORS_BY_CODE.keys() & CODES_MAPPED_BY_STATUS == set()
    stale = sorted((ERRORS_BY_CODE.keys() | CODES_MAPPED_BY_STATUS) - codes)
    assert stale == [], f"the client decides on codes the server never answers: {stale}"


def test_adapter_only_codes_stay_on_the_adapter_routes() -> None:
    adapter_classes = [c for c in error_classes() if c.__module__.startswith(ADAPTER_PACKAGES)]
    assert {c.code for c in adapter_classes} == set(ADAPTER_ROUTES_ONLY)
    for module in native_modules():
        source = source_of(module)
        used = [c.__name__ for c in adapter_classes if c.__name__ in source]
        assert used == [], f"{module.__name__} raises {used}: decide on them in the client"


def test_a_dedicated_class_is_still_caught_as_its_status_class() -> None:
    """``except ConflictError`` keeps catching session_busy, ``except InvalidInputError``
    validation_error, ...: a code's class is a subclass of its status's class."""
    codes = server_codes()
    for code, cls in ERRORS_BY_CODE.items():
        by_status = ERRORS_BY_STATUS.get(codes[code], chatmodel.APIError)
        assert issubclass(cls, by_status), f"{code}: {cls.__name__} is no {by_status.__name__}"


# -- every code, as the server sends it, becomes its exception ---------------------------


def server_answer(code: str) -> httpx.Response:
    """The server's answer for ``code``: its own body and headers when a ServiceError says
    it, else the handlers' body shape."""
    cls = native_error_classes().get(code)
    if cls is None:
        body = {"error": code, "detail": "told by the server", "field": None}
        return httpx.Response(HANDLER_CODE_STATUS[code], json=body)
    # The errors that send Retry-After take its seconds (RateLimited must be given them).
    options: dict[str, Any] = {}
    if "retry_after" in inspect.signature(cls).parameters:
        options["retry_after"] = 7
    error = cls("told by the server", **options)
    return httpx.Response(error.status_code, json=error.body(), headers=error.headers)


@pytest.mark.parametrize("code", sorted(server_codes()))
def test_each_server_code_raises_its_exception(code: str) -> None:
    answer = server_answer(code)
    expected = ERRORS_BY_CODE.get(code) or ERRORS_BY_STATUS.get(
        answer.status_code, chatmodel.APIError
    )
    with Recorder(answer).client() as http:
        with pytest.raises(chatmodel.APIError) as raised:
            ChatModel("assistant", http_client=http).get_config()
        result = ChatModel("assistant", session_uuid=uuid.uuid4(), http_client=http).run()

    assert type(raised.value) is expected
    assert isinstance(raised.value, ERRORS_BY_STATUS.get(answer.status_code, chatmodel.APIError))
    error = raised.value
    assert (error.status_code, error.code, error.detail) == (
        answer.status_code,
        code,
        "told by the server",
    )
    sent = answer.headers.get("Retry-After")
    assert error.retry_after == (float(sent) if sent is not None else None)
    assert (result.error, result.error_type) == (True, code)  # a run reports it, never raises


@pytest.mark.parametrize(
    ("status", "code", "headers", "expected", "retry_after"),
    [
        (401, "unauthorized", {"WWW-Authenticate": "Bearer"}, chatmodel.AuthenticationError, None),
        (403, "forbidden", {}, chatmodel.PermissionDeniedError, None),
        (429, "rate_limited", {"Retry-After": "12"}, chatmodel.RateLimitError, 12.0),
        (409, "session_busy", {"Retry-After": "1"}, chatmodel.SessionBusyError, 1.0),
        (409, "run_in_progress", {"Retry-After": "1"}, chatmodel.SessionBusyError, 1.0),
        (503, "database_busy", {"Retry-After": "1"}, chatmodel.ServiceUnavailableError, 1.0),
        (503, "storage_unavailable", {}, chatmodel.ServiceUnavailableError, None),
    ],
)
def test_the_codes_that_used_to_arrive_bare_have_classes(
    status: int,
    code: str,
    headers: dict[str, str],
    expected: type[chatmodel.APIError],
    retry_after: float | None,
) -> None:
    body = {"error": code, "detail": "no", "field": None}
    recorder = Recorder(httpx.Response(status, json=body, headers=headers))
    with recorder.client() as http, pytest.raises(expected) as raised:
        ChatModel("assistant", session_uuid=uuid.uuid4(), http_client=http).delete_session()
    assert type(raised.value) is expected
    assert (raised.value.code, raised.value.retry_after) == (code, retry_after)
    assert len(recorder.requests) == 1  # none of them is resent


def test_retry_after_as_an_http_date() -> None:
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    for header, expected in [(later, (25.0, 30.0)), ("Wed, 21 Oct 2015 07:28:00 GMT", (0.0, 0.0))]:
        body = {"error": "rate_limited", "detail": "slow down", "field": None}
        answer = httpx.Response(429, json=body, headers={"Retry-After": header})
        with Recorder(answer).client() as http, pytest.raises(chatmodel.RateLimitError) as raised:
            ChatModel("assistant", http_client=http).get_config()
        assert raised.value.retry_after is not None
        assert expected[0] <= raised.value.retry_after <= expected[1]
    garbled = httpx.Response(429, json={"error": "rate_limited"}, headers={"Retry-After": "soon"})
    with Recorder(garbled).client() as http, pytest.raises(chatmodel.RateLimitError) as raised:
        ChatModel("assistant", http_client=http).get_config()
    assert raised.value.retry_after is None


# -- against the real app ----------------------------------------------------------------


async def test_a_missing_or_unknown_key_and_the_rate_limit_against_the_real_app(
    database_url: str, gateway: LLMGateway
) -> None:
    async with started_app(database_url, gateway, rate_limit_per_minute=2) as app:
        key, _ = await seed_key(app, "client", "web")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport) as http:

            def session(api_key: str | None) -> ChatModel:
                return ChatModel(
                    "nobody", base_url=BASE_URL, api_key=api_key, async_http_client=http
                )

            for api_key in (None, "cm_unknown_secret"):
                with pytest.raises(chatmodel.AuthenticationError) as refused:
                    await session(api_key).aget_config()
                assert (refused.value.status_code, refused.value.code) == (401, "unauthorized")

            for _ in range(2):  # the bucket's two tokens
                with pytest.raises(chatmodel.ChatModelNotFound):
                    await session(key).aget_config()
            with pytest.raises(chatmodel.RateLimitError) as limited:
                await session(key).aget_config()
            result = await session(key).arun()

    assert (limited.value.status_code, limited.value.code) == (429, "rate_limited")
    assert limited.value.retry_after is not None and limited.value.retry_after >= 1
    assert (result.error, result.error_type) == (True, "rate_limited")

"""Schemathesis against the real app's own ``/openapi.json``, served by real uvicorn.

Every operation of the schema gets schemathesis's generated requests (a fixed, seeded
number per operation: ``MAX_EXAMPLES`` from the fuzzing phase, valid and invalid, plus on
PostgreSQL the coverage phase's boundary values), and every answer must hold:

* no status of 500 or more;
* a 4xx answers JSON in the route's error shape: ours, ``{"error": <code>, "detail":
  <text>, "field": <name or null>}``, or OpenAI's ``{"error": {"message", "type",
  "param", "code"}}`` on the OpenAI-compatible, Responses and Conversations routes (and
  only there);
* a body matches the schema the route declares for its status (``4XX`` included).

The database is fresh and migrated, with data to hit: path, query and body parameters
that name a chat model, a version or a session are drawn from the real ones about half of
the time (schemathesis's fuzz dictionaries), so the fuzzer gets past the 404s.

Runs: keys not required (the default on loopback) on each database, and a smaller one
with keys required and a valid admin key on SQLite. About a minute and a half in all.

No model call leaves the machine: every call the app makes goes to the offline model
(``OfflineOnlyGateway``), whatever model a fuzzed version names, the OpenAI passthrough is
off, and the process refuses to connect to anything but loopback while the test runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import socket
from collections import Counter
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import httpx
import pytest
import requests
import schemathesis
from schemathesis import CheckContext, Response
from schemathesis.checks import not_a_server_error
from schemathesis.config import ChecksConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from chatmodel_service.app import create_app
from chatmodel_service.auth.repository import ProjectRepository
from chatmodel_service.auth.schemas import KeyCreate
from chatmodel_service.auth.service import create_key
from chatmodel_service.config import Settings
from chatmodel_service.db import Database, create_engine
from chatmodel_service.llm import OFFLINE_MODEL
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.llm.types import LLMCall, LLMOutcome, StreamEvent
from chatmodel_service.models import Project
from tests.support.servers import LiveApp, serve_in_thread

if TYPE_CHECKING:
    # Schemathesis names its OpenAPI case type for type checkers only.
    from schemathesis.specs.openapi.schemas import OpenApiCase

# Fixed, so a failure found in CI is the one found on a laptop.
SEED = 7_2024
MAX_EXAMPLES = 20

CHAT_MODEL = "fuzz_assistant"
OPENAI_ROUTES = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/models",
    "/v1/responses",
    "/v1/conversations",
)
ERROR_KEYS = frozenset({"error", "detail", "field"})
OPENAI_ERROR_KEYS = frozenset({"message", "type", "param", "code"})


class OfflineOnlyGateway:
    """The real gateway, except that every call is made to the offline model: a fuzzed
    version may name any model LiteLLM knows, and ``api_base`` any URL."""

    def __init__(self, real: LLMGateway) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)  # check_model and the rest, unchanged

    @staticmethod
    def _offline(call: LLMCall) -> LLMCall:
        return dataclasses.replace(call, model=OFFLINE_MODEL, api_base=None, fallbacks=())

    async def complete(self, call: LLMCall) -> LLMOutcome:
        return await self._real.complete(self._offline(call))

    async def stream(self, call: LLMCall) -> AsyncGenerator[StreamEvent]:
        async for event in self._real.stream(self._offline(call)):
            yield event


def _is_loopback(host: object) -> bool:
    if not isinstance(host, str):
        return True  # a Unix socket path
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse name lookups and connections to anything but loopback in this process."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and not _is_loopback(name):
            raise socket.gaierror(socket.EAI_NONAME, f"fuzz test: no lookups of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    def guard(address: Any) -> None:
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            raise ConnectionRefusedError(f"fuzz test: no connections to {address!r}")

    def connect(self: socket.socket, address: Any) -> None:
        guard(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        guard(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@dataclasses.dataclass
class FuzzTarget:
    live: LiveApp
    on_postgres: bool
    session_uuid: str
    version_numbers: list[int]
    headers: dict[str, str]
    calls: Counter[str] = dataclasses.field(default_factory=Counter)
    statuses: Counter[int] = dataclasses.field(default_factory=Counter)

    def check_every_operation_was_called(self, at_least: int) -> None:
        """Not accidentally a no-op: each operation of the schema was called, many times..."""
        paths = self.live.app.openapi()["paths"]
        operations = {f"{method.upper()} {path}" for path, item in paths.items() for method in item}
        missing = operations - set(self.calls)
        assert not missing, f"operations never called: {sorted(missing)}"
        assert sum(self.calls[op] for op in operations) >= at_least * len(operations), self.calls
        # ... and reached past authentication and validation to real objects.
        successes = sum(n for status, n in self.statuses.items() if 200 <= status < 300)
        assert successes >= len(operations) > self.statuses[401], self.statuses


def seed_data(base_url: str, headers: dict[str, str]) -> tuple[str, list[int]]:
    """A chat model with two published versions and a session with a stored exchange."""
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as http:
        created = http.post("/v1/chat-models", json={"name": CHAT_MODEL})
        assert created.status_code == 201, created.text
        numbers = []
        for prompt, variables in (("You are terse.", []), ("Hello {{name}}.", ["name"])):
            version = {
                "system_prompt": prompt,
                "model": OFFLINE_MODEL,
                "variables": variables,
                "publish": True,
            }
            made = http.post(f"/v1/chat-models/{CHAT_MODEL}/versions", json=version)
            assert made.status_code == 201, made.text
            numbers.append(made.json()["number"])
        session = http.post("/v1/sessions", json={"chat_model": CHAT_MODEL, "version": 1})
        assert session.status_code == 201, session.text
        session_uuid = str(session.json()["uuid"])
        added = http.post(
            f"/v1/sessions/{session_uuid}/messages",
            json={"messages": [{"role": "user", "content": "Hello there."}]},
        )
        assert added.status_code == 201, added.text
        ran = http.post(f"/v1/sessions/{session_uuid}/run")
        assert ran.status_code == 200 and ran.json()["error"] is False, ran.text
    return session_uuid, numbers


async def create_admin_key(settings: Settings) -> str:
    """An admin key of the default project, written straight to the database (as
    ``chatmodel keys create`` bootstraps the first key)."""
    database = Database(create_engine(settings))
    try:
        async with database.transaction() as db:
            projects = ProjectRepository(db)
            project = await projects.get_by_name("default") or await projects.add(
                Project(name="default")
            )
            created = await create_key(db, project.id, KeyCreate(name="fuzz", scope="admin"))
        return created.key
    finally:
        await database.dispose()


@contextmanager
def running_target(
    database_url: str, gateway: LLMGateway, *, keys_required: bool
) -> Iterator[FuzzTarget]:
    settings = Settings(
        database_url=database_url,
        seed_demo=True,
        llm_timeout_seconds=5,
        auth="required" if keys_required else "disabled",
        rate_limit_per_minute=0,
        max_run_wait_seconds=1,
        openai_passthrough=False,
    )
    headers = {}
    if keys_required:
        headers["Authorization"] = f"Bearer {asyncio.run(create_admin_key(settings))}"
    app = create_app(settings, cast(LLMGateway, OfflineOnlyGateway(gateway)))
    with serve_in_thread(app) as live:
        session_uuid, numbers = seed_data(live.base_url, headers)
        yield FuzzTarget(
            live=live,
            on_postgres=database_url.startswith("postgresql"),
            session_uuid=session_uuid,
            version_numbers=numbers,
            headers=headers,
        )


def fuzz_config(target: FuzzTarget, *, max_examples: int, coverage: bool) -> schemathesis.Config:
    """Seeded and bounded; real names and ids offered about half of the time."""
    names = [CHAT_MODEL, "simple_assistant"]
    real = 0.5
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "request-timeout": 30,
            "headers": target.headers,
            "output": {"sanitization": {"enabled": False}},  # show the failing request
            # A body over the size limit is refused with 413 before it is parsed: that
            # is a rejection too (the generator sometimes writes megabytes of escapes).
            "checks": {
                "negative_data_rejection": {
                    "expected-statuses": [
                        *("400", "401", "403", "404", "405", "406", "409", "413", "415"),
                        *("422", "428", "429", "5xx"),
                    ]
                }
            },
            # No example database: the same requests on every run, no .hypothesis/ folder.
            "generation": {
                "max-examples": max_examples,
                "deterministic": True,
                "database": "none",
            },
            "phases": {
                # Positive only: boundary values that pass validation and reach the
                # database (invalid input is half of the fuzzing phase already, and the
                # negative coverage cases would triple the run). The stateful phase needs
                # OpenAPI links, which the schema has none of.
                "coverage": {"enabled": coverage, "generation": {"mode": "positive"}},
                "stateful": {"enabled": False},
            },
            "dictionaries": {
                "chat_models": {"values": names},
                "versions": {"values": target.version_numbers},
                "sessions": {"values": [target.session_uuid]},
            },
            "parameters": {
                "path.name": {"dictionary": "chat_models", "probability": real},
                "path.model": {"dictionary": "chat_models", "probability": real},
                "path.number": {"dictionary": "versions", "probability": real},
                "path.session_uuid": {"dictionary": "sessions", "probability": real},
                "query.chat_model": {"dictionary": "chat_models", "probability": real},
                "query.session_uuid": {"dictionary": "sessions", "probability": real},
                "body.chat_model": {"dictionary": "chat_models", "probability": real},
                # Also a version's LiteLLM model: mostly left to the generator there.
                "body.model": {"dictionary": "chat_models", "probability": 0.3},
                "body.version": {"dictionary": "versions", "probability": real},
            },
        }
    )


def load_schema(
    request: pytest.FixtureRequest, target: FuzzTarget, config: schemathesis.Config
) -> schemathesis.BaseSchema:
    """The schema as the running server serves it, counting the calls made per operation."""
    # schemathesis 4.32's ``from_fixture`` reads (and rewrites, to name each operation's
    # subtest) ``Function._nodeid``, which pytest 9.2 no longer has.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
    schema = schemathesis.openapi.from_url(f"{target.live.base_url}/openapi.json", config=config)

    @schema.hook
    def after_call(
        context: schemathesis.HookContext, case: OpenApiCase, response: Response
    ) -> None:
        target.calls[f"{case.method.upper()} {case.operation.path}"] += 1
        target.statuses[response.status_code] += 1

    return schema


@pytest.fixture
def api_schema(
    request: pytest.FixtureRequest, database_url: str, gateway: LLMGateway, loopback_only: None
) -> Iterator[schemathesis.BaseSchema]:
    """Keys not required (the default on loopback). The coverage phase (~900 requests) runs
    where the database is strictest, PostgreSQL; the fuzzing phase on every database."""
    with running_target(database_url, gateway, keys_required=False) as target:
        config = fuzz_config(target, max_examples=MAX_EXAMPLES, coverage=target.on_postgres)
        yield load_schema(request, target, config)
    target.check_every_operation_was_called(at_least=MAX_EXAMPLES // 2)


@pytest.fixture
def api_schema_with_keys(
    request: pytest.FixtureRequest, database_url: str, gateway: LLMGateway, loopback_only: None
) -> Iterator[schemathesis.BaseSchema]:
    """Keys required, every request with a valid admin key: a smaller run."""
    with running_target(database_url, gateway, keys_required=True) as target:
        yield load_schema(request, target, fuzz_config(target, max_examples=5, coverage=False))
    target.check_every_operation_was_called(at_least=2)


def _is_openai_route(path: str) -> bool:
    return any(path == route or path.startswith(f"{route}/") for route in OPENAI_ROUTES)


def error_body_shape(ctx: CheckContext, response: Response, case: OpenApiCase) -> bool | None:
    """Every 4xx is JSON in the route's error shape, and only that shape."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), (
        f"{response.status_code} is {content_type or 'untyped'}, not JSON: {response.text[:200]}"
    )
    body = response.json()
    assert isinstance(body, dict), f"{response.status_code} body is not an object: {body!r}"
    if _is_openai_route(case.operation.path):
        error = body.get("error")
        assert set(body) == {"error"} and isinstance(error, dict), f"not OpenAI's shape: {body}"
        assert set(error) == OPENAI_ERROR_KEYS, f"not OpenAI's error keys: {body}"
        assert isinstance(error["message"], str) and error["message"], body
        assert isinstance(error["type"], str) and error["type"], body
        assert error["param"] is None or isinstance(error["param"], str), body
        assert error["code"] is None or isinstance(error["code"], str), body
        return None
    # ``errors`` lists every field of a validation error; nothing else may be added.
    assert ERROR_KEYS <= set(body) <= ERROR_KEYS | {"errors"}, f"not our error shape: {body}"
    assert isinstance(body["error"], str) and body["error"], body
    assert isinstance(body["detail"], str) and body["detail"], body
    assert body["field"] is None or isinstance(body["field"], str), body
    return None


# Every status a route answers is declared (``4XX`` by the app for all of them), so
# status and content type are checked too, and invalid input must be refused. Left out:
# ``positive_data_acceptance``. Domain rules the schema cannot state reject schema-valid
# requests with a 422 by design: a version's model must be one LiteLLM knows, a session
# must give the variables its version declares, publish takes `version` or `weights`, a
# cursor must be one the server gave out, a tool message needs content, text no NUL.
CHECKS = [
    not_a_server_error,
    error_body_shape,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    negative_data_rejection,
]

fuzzed = schemathesis.pytest.from_fixture("api_schema")
fuzzed_with_keys = schemathesis.pytest.from_fixture("api_schema_with_keys")


@fuzzed.parametrize()
def test_every_operation_survives_fuzzing(case: OpenApiCase) -> None:
    case.call_and_validate(checks=CHECKS)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@fuzzed_with_keys.parametrize()
def test_every_operation_survives_fuzzing_with_keys_required(case: OpenApiCase) -> None:
    case.call_and_validate(checks=CHECKS)


def _answer(status: int, body: bytes, content_type: str = "application/json") -> Response:
    return Response(
        status_code=status,
        headers={"content-type": [content_type]},
        content=body,
        request=requests.Request("GET", "http://127.0.0.1/").prepare(),
        elapsed=0.0,
        verify=False,
    )


def _case_on(path: str) -> OpenApiCase:
    return cast("OpenApiCase", SimpleNamespace(operation=SimpleNamespace(path=path)))


def _standalone_context() -> CheckContext:
    """A check context outside any run (``error_body_shape`` reads nothing from it)."""
    return CheckContext(
        override=None,
        auth=None,
        headers=None,
        config=ChecksConfig(),
        transport_kwargs=None,
        response_checks=None,
    )


def test_error_body_check_refuses_other_shapes() -> None:
    """The custom check can fail: FastAPI's default body, OpenAI's shape off its routes
    (and ours on them), and plain text are each refused; the right shapes pass."""
    ctx = _standalone_context()
    ours = b'{"error": "not_found", "detail": "No such thing.", "field": null}'
    openai = b'{"error": {"message": "m", "type": "t", "param": null, "code": null}}'
    error_body_shape(ctx, _answer(404, ours), _case_on("/v1/sessions/{session_uuid}"))
    error_body_shape(ctx, _answer(404, openai), _case_on("/v1/models/{model}"))
    refused = [
        (_answer(404, b'{"detail": "Not Found"}'), "/v1/sessions/{session_uuid}"),
        (_answer(404, openai), "/v1/sessions/{session_uuid}"),
        (_answer(405, ours), "/v1/chat/completions"),
        (_answer(405, b"Method Not Allowed", "text/plain"), "/v1/chat-models"),
    ]
    for answer, path in refused:
        with pytest.raises(AssertionError):
            error_body_shape(ctx, answer, _case_on(path))

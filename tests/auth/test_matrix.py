"""The authorization matrix: every route of the app x every kind of caller.

The routes come from ``app.routes``; a route without a rule in ``RULES`` fails the test,
so a new route cannot ship without deciding who may call it. Path parameters are filled
with real objects of project A, so the other project's keys getting 404 (not 200) shows
that nothing of A is reachable from B.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import APIRoute

from chatmodel_service.llm import OFFLINE_MODEL
from tests.support.auth import AuthWorld, keyed

_names = itertools.count()


def _fresh(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


@dataclass(frozen=True)
class Rule:
    """Who may call a route: ``public``, ``client`` (client or admin keys) or ``admin``;
    ``ok`` is its success status, ``foreign`` the status for the other project's key
    whose scope would be enough."""

    scope: str
    ok: int = 200
    foreign: int = 404
    body: Callable[[], Any] | None = None
    # Its string values are filled like the path ("{session_uuid}", "{message_uuid}").
    query: dict[str, Any] | None = None
    fresh_session: bool = False  # a route that deletes its session gets a new one per call


VERSION = {"system_prompt": "Be brief.", "model": OFFLINE_MODEL}
MESSAGES = [{"role": "user", "content": "Hello?"}]
LLM_ENGINE_BODY = {"prompt": "Hello?", "max_new_tokens": 10, "temperature": 0.2}
# Port 9 (discard) of loopback, allowed in this app: nothing listens, nothing leaves.
WEBHOOK = {"url": "http://127.0.0.1:9/hooks", "event_types": ["response.incomplete"]}
FEEDBACK = {"name": "thumbs", "value": True}

RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/health"): Rule("public"),
    # operators: probes are public; metrics (all projects) and usage (the caller's) admin
    ("GET", "/healthz"): Rule("public"),
    ("GET", "/readyz"): Rule("public"),
    ("GET", "/metrics"): Rule("admin", foreign=200),
    ("GET", "/v1/usage"): Rule("admin", foreign=200),
    ("GET", "/admin"): Rule("public"),
    ("GET", "/admin/static/{asset}"): Rule("public"),
    # chat models and versions: reads for clients, writes for admins
    ("POST", "/v1/chat-models"): Rule("admin", 201, 201, body=lambda: {"name": _fresh("model")}),
    ("GET", "/v1/chat-models"): Rule("client", foreign=200),
    ("GET", "/v1/chat-models/{name}"): Rule("client"),
    ("PATCH", "/v1/chat-models/{name}"): Rule("admin", body=lambda: {"retention_days": 30}),
    ("POST", "/v1/chat-models/{name}/versions"): Rule("admin", 201, body=lambda: VERSION),
    ("GET", "/v1/chat-models/{name}/versions"): Rule("client"),
    ("GET", "/v1/chat-models/{name}/versions/{number}"): Rule("client"),
    ("GET", "/v1/chat-models/{name}/config"): Rule("client"),
    # releases and their figures: admin
    ("POST", "/v1/chat-models/{name}/publish"): Rule("admin", body=lambda: {"version": 1}),
    ("POST", "/v1/chat-models/{name}/rollback"): Rule("admin"),
    ("GET", "/v1/chat-models/{name}/releases"): Rule("admin"),
    ("GET", "/v1/chat-models/{name}/versions/{number}/stats"): Rule("admin"),
    ("GET", "/v1/chat-models/{name}/diff"): Rule("admin", query={"from": 1, "to": 2}),
    ("POST", "/v1/chat-models/{name}/versions/{number}/test"): Rule(
        "admin", body=lambda: {"messages": MESSAGES}
    ),
    ("POST", "/v1/chat-models/{name}/versions/draft/test"): Rule(
        "admin", body=lambda: {"version": VERSION, "messages": MESSAGES}
    ),
    # sessions, messages and runs: clients; the listing of all sessions: admin
    ("POST", "/v1/sessions"): Rule("client", 201, body=lambda: {"chat_model": "assistant"}),
    ("GET", "/v1/sessions"): Rule("admin", foreign=200),
    ("GET", "/v1/sessions/{session_uuid}"): Rule("client"),
    ("DELETE", "/v1/sessions/{session_uuid}"): Rule("client", 204, fresh_session=True),
    ("POST", "/v1/sessions/{session_uuid}/fork"): Rule("client", 201, body=lambda: {}),
    ("GET", "/v1/sessions/{session_uuid}/messages"): Rule("client"),
    ("GET", "/v1/sessions/{session_uuid}/summaries"): Rule("client"),
    ("POST", "/v1/sessions/{session_uuid}/messages"): Rule(
        "client", 201, body=lambda: {"messages": MESSAGES}
    ),
    ("POST", "/v1/sessions/{session_uuid}/run"): Rule("client", body=lambda: {}),
    ("GET", "/v1/sessions/{session_uuid}/runs"): Rule("client"),
    # feedback: clients, on their own project's sessions and messages
    ("POST", "/v1/sessions/{session_uuid}/feedback"): Rule("client", 201, body=lambda: FEEDBACK),
    ("POST", "/v1/sessions/{session_uuid}/messages/{message_uuid}/feedback"): Rule(
        "client", 201, body=lambda: FEEDBACK
    ),
    ("GET", "/v1/sessions/{session_uuid}/feedback"): Rule("client"),
    # a run by its uuid: clients (cancelling a finished run answers it unchanged)
    ("GET", "/v1/runs/{run_uuid}"): Rule("client"),
    ("POST", "/v1/runs/{run_uuid}/cancel"): Rule("client"),
    ("GET", "/v1/runs/{run_uuid}/events"): Rule("client"),
    # the Responses and Conversations APIs: clients
    ("POST", "/v1/responses"): Rule("client", body=lambda: {"model": "assistant", "input": "Hi"}),
    ("GET", "/v1/responses/{response_id}"): Rule("client"),
    ("DELETE", "/v1/responses/{response_id}"): Rule("client", fresh_session=True),
    ("POST", "/v1/responses/{response_id}/cancel"): Rule("client"),
    ("GET", "/v1/responses/{response_id}/input_items"): Rule("client"),
    ("POST", "/v1/conversations"): Rule("client", body=lambda: {"model": "assistant"}),
    ("GET", "/v1/conversations/{conversation_id}"): Rule("client"),
    ("POST", "/v1/conversations/{conversation_id}"): Rule(
        "client", body=lambda: {"metadata": {"topic": "auth"}}
    ),
    ("DELETE", "/v1/conversations/{conversation_id}"): Rule("client", fresh_session=True),
    ("GET", "/v1/conversations/{conversation_id}/items"): Rule("client"),
    ("POST", "/v1/conversations/{conversation_id}/items"): Rule(
        "client", body=lambda: {"items": MESSAGES}
    ),
    ("GET", "/v1/conversations/{conversation_id}/items/{item_id}"): Rule("client"),
    ("DELETE", "/v1/conversations/{conversation_id}/items/{item_id}"): Rule(
        "client", fresh_session=True
    ),
    # OpenAI-compatible
    ("POST", "/v1/chat/completions"): Rule(
        "client", body=lambda: {"model": "assistant", "messages": MESSAGES}
    ),
    ("POST", "/v1/completions"): Rule(
        "client", body=lambda: {"model": "assistant", "prompt": "Hello?"}
    ),
    ("GET", "/v1/models"): Rule("client", foreign=200),
    ("GET", "/v1/models/{model}"): Rule("client"),
    # Scale LLM Engine-compatible
    ("POST", "/v1/llm/completions-sync"): Rule(
        "client", body=lambda: LLM_ENGINE_BODY, query={"model_endpoint_name": "assistant"}
    ),
    ("POST", "/v1/llm/completions-stream"): Rule(
        "client", body=lambda: LLM_ENGINE_BODY, query={"model_endpoint_name": "assistant"}
    ),
    # Scale EGP's API (/egp): clients; user-info names each key's own project
    ("GET", "/egp/user-info"): Rule("client", foreign=200),
    ("POST", "/egp/v2/completions"): Rule(
        "client", body=lambda: {"model": "assistant", "prompt": "Hello?"}
    ),
    ("POST", "/egp/v1/completions"): Rule(
        "client", body=lambda: {"model": "assistant", "prompt": "Hello?"}
    ),
    ("POST", "/egp/v1/chat-completions"): Rule(
        "client", body=lambda: {"model": "assistant", "messages": MESSAGES}
    ),
    # promptmodel's SDK (/api/cli): clients. A random session or version uuid is no
    # project's (404 for every key); scores name A's message or session.
    ("GET", "/api/cli/chat_model_versions_with_logs"): Rule(
        "client", query={"chat_model_name": "assistant", "version": "deploy"}
    ),
    ("POST", "/api/cli/make_session"): Rule(
        "client", 404, query={"session_uuid": str(uuid.uuid4()), "version_uuid": str(uuid.uuid4())}
    ),
    ("POST", "/api/cli/chat_log"): Rule(
        "client",
        404,
        body=lambda: [{"uuid": str(uuid.uuid4()), "message": MESSAGES[0]}],
        query={"session_uuid": str(uuid.uuid4()), "version_uuid": ""},
    ),
    ("POST", "/api/cli/chat_message_score"): Rule(
        "client", body=lambda: {"quality": 1}, query={"chat_message_uuid": "{message_uuid}"}
    ),
    ("POST", "/api/cli/save_chat_session_score"): Rule(
        "client", body=lambda: {"quality": 1}, query={"chat_session_uuid": "{session_uuid}"}
    ),
    ("GET", "/api/cli/check_update"): Rule("client", foreign=200, query={"cached_version": 0}),
    # keys and projects: admin, in the caller's own project
    ("POST", "/v1/keys"): Rule("admin", 201, 201, body=lambda: {"name": _fresh("key")}),
    ("GET", "/v1/keys"): Rule("admin", foreign=200),
    ("DELETE", "/v1/keys/{key_id}"): Rule("admin"),
    ("POST", "/v1/projects"): Rule("admin", 201, 201, body=lambda: {"name": _fresh("project")}),
    ("GET", "/v1/projects"): Rule("admin", foreign=200),
    # webhooks: admin, in the caller's own project
    ("POST", "/v1/webhooks"): Rule("admin", 201, 201, body=lambda: WEBHOOK),
    ("GET", "/v1/webhooks"): Rule("admin", foreign=200),
    ("GET", "/v1/webhooks/{webhook_id}"): Rule("admin"),
    ("DELETE", "/v1/webhooks/{webhook_id}"): Rule("admin", 204),
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): Rule("admin"),
    ("POST", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): Rule("admin", 202),
}

CALLERS = (
    "no key",
    "malformed",
    "unknown",
    "revoked",
    "client",
    "admin",
    "other client",
    "other admin",
)
UNKNOWN_KEY = "cm_0123abcd_" + "x" * 43
OPENAI_PREFIXES = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/models",
    "/v1/responses",
    "/v1/conversations",
)


def _headers(world: AuthWorld, caller: str) -> dict[str, str]:
    keys = {
        "malformed": "not-a-key",
        "unknown": UNKNOWN_KEY,
        "revoked": world.revoked_a,
        "client": world.client_a,
        "admin": world.admin_a,
        "other client": world.client_b,
        "other admin": world.admin_b,
    }
    if caller == "no key":
        return {}
    if caller == "malformed":  # also checks the x-api-key header
        return {"x-api-key": keys[caller]}
    return keyed(keys[caller])


def expected(rule: Rule, caller: str) -> int:
    if rule.scope == "public":
        return rule.ok
    if caller in ("no key", "malformed", "unknown", "revoked"):
        return 401
    if caller == "admin":
        return rule.ok
    if caller == "client":
        return rule.ok if rule.scope == "client" else 403
    if caller == "other client" and rule.scope == "admin":
        return 403
    return rule.foreign


async def _path(world: AuthWorld, template: str, session: str | None = None) -> str:
    """The route's path, naming objects of project A: a run, response or item is made on
    ``session`` (by default A's session) for the routes that name one."""
    session = session or world.session_a
    run = item = message = webhook = delivery = None
    if "{webhook_id}" in template:
        webhook, delivery = await _webhook(world, session, "{delivery_id}" in template)
    if "{run_uuid}" in template or "{response_id}" in template:
        ran = await world.client.post(
            f"/v1/sessions/{session}/run",
            json={"messages": MESSAGES},
            headers=keyed(world.client_a),
        )
        assert ran.status_code == 200, ran.text
        run = uuid.UUID(ran.json()["detail"]["run_uuid"])
        item = ran.json()["detail"]["message_uuid"]
    if "{item_id}" in template or "{message_uuid}" in template:
        added = await world.client.post(
            f"/v1/sessions/{session}/messages",
            json={"messages": MESSAGES},
            headers=keyed(world.client_a),
        )
        item = message = added.json()["data"][0]["uuid"]
    return template.format(
        name="assistant",
        number=1,
        session_uuid=session,
        key_id=world.victim_a_id,
        asset="app.js",
        model="assistant",
        run_uuid=run,
        response_id=f"resp_{run.hex}" if run else None,
        conversation_id=f"conv_{uuid.UUID(session).hex}",
        item_id=f"msg_{uuid.UUID(item).hex}" if item else None,
        message_uuid=message,
        webhook_id=webhook,
        delivery_id=delivery,
    )


async def _webhook(world: AuthWorld, session: str, delivery: bool) -> tuple[str, str | None]:
    """A webhook of project A and, with ``delivery``, one delivery of it (of a run)."""
    admin = keyed(world.admin_a)
    wanted = ["run.completed"] if delivery else WEBHOOK["event_types"]
    made = await world.client.post(
        "/v1/webhooks", json=WEBHOOK | {"event_types": wanted}, headers=admin
    )
    assert made.status_code == 201, made.text
    webhook: str = made.json()["id"]
    if not delivery:
        return webhook, None
    ran = await world.client.post(
        f"/v1/sessions/{session}/run", json={"messages": MESSAGES}, headers=admin
    )
    assert ran.status_code == 200, ran.text
    log = await world.client.get(f"/v1/webhooks/{webhook}/deliveries", headers=admin)
    return webhook, log.json()["data"][0]["id"]


def _api_routes(routes: list[Any]) -> list[tuple[str, APIRoute]]:
    """(full path, route) of every APIRoute, also inside included routers (FastAPI 0.16x
    keeps those as one entry of ``app.routes`` that lists its routes' contexts)."""
    found: list[tuple[str, APIRoute]] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append((route.path, route))
        elif hasattr(route, "effective_route_contexts"):
            for context in route.effective_route_contexts():
                if isinstance(context.original_route, APIRoute):
                    found.append((context.path, context.original_route))
    return found


def _routes(world: AuthWorld) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for path, route in _api_routes(world.app.routes):
        assert route.methods, f"{path} answers no method"
        found.extend((method, path) for method in sorted(route.methods))
    return found


async def _new_session(world: AuthWorld) -> str:
    created = await world.client.post(
        "/v1/sessions", json={"chat_model": "assistant"}, headers=keyed(world.client_a)
    )
    assert created.status_code == 201, created.text
    session: str = created.json()["uuid"]
    return session


async def test_every_route_has_a_rule_and_every_cell_its_status(world: AuthWorld) -> None:
    routes = _routes(world)
    assert len(routes) >= len(RULES) - 1  # the walk found the included routers too
    missing = [route for route in routes if route not in RULES]
    assert not missing, f"routes without an authorization rule: {missing}"
    assert set(RULES) == set(routes), f"rules for no route: {set(RULES) - set(routes)}"

    wrong = []
    for (method, template), caller in itertools.product(routes, CALLERS):
        rule = RULES[method, template]
        fresh = await _new_session(world) if rule.fresh_session else None
        path = await _path(world, template, fresh)
        body = rule.body() if rule.body else None
        query = {
            name: await _path(world, value, fresh) if isinstance(value, str) else value
            for name, value in (rule.query or {}).items()
        }
        response = await world.client.request(
            method, path, json=body, params=query, headers=_headers(world, caller)
        )
        want = expected(rule, caller)
        if response.status_code != want:
            wrong.append(f"{method} {template} [{caller}]: {response.status_code} != {want}")
            continue
        if want == 401:
            assert response.headers["www-authenticate"] == "Bearer"
        if want in (401, 403):
            error = response.json()["error"]
            if path.startswith(OPENAI_PREFIXES):
                kind = "authentication_error" if want == 401 else "permission_error"
                assert error["type"] == kind, response.text
            else:
                assert error == ("unauthorized" if want == 401 else "forbidden"), response.text
    assert not wrong, "\n".join(wrong)


async def test_other_projects_listings_hold_nothing_of_project_a(world: AuthWorld) -> None:
    for key in (world.admin_b, world.client_b):
        models = await world.client.get("/v1/chat-models", headers=keyed(key))
        assert models.json()["data"] == []
        openai_models = await world.client.get("/v1/models", headers=keyed(key))
        assert openai_models.json()["data"] == []
    sessions = await world.client.get("/v1/sessions", headers=keyed(world.admin_b))
    assert sessions.json()["data"] == []
    keys = await world.client.get("/v1/keys", headers=keyed(world.admin_b))
    assert {key["name"] for key in keys.json()["data"]} == {"b-ops", "b-web"}
    projects = await world.client.get("/v1/projects", headers=keyed(world.admin_b))
    assert [project["name"] for project in projects.json()["data"]] == ["b"]


async def test_a_session_uuid_of_another_project_is_a_separate_session(world: AuthWorld) -> None:
    """Session uuids are unique per project: B taking A's uuid gets a session of its own,
    and neither reads the other's messages."""
    made = await world.client.post(
        "/v1/chat-models", json={"name": "assistant"}, headers=keyed(world.admin_b)
    )
    assert made.status_code == 201
    await world.client.post(
        "/v1/chat-models/assistant/versions",
        json=VERSION | {"publish": True},
        headers=keyed(world.admin_b),
    )
    a_before = await world.client.get(
        f"/v1/sessions/{world.session_a}", headers=keyed(world.client_a)
    )
    taken = await world.client.post(
        "/v1/sessions",
        json={"chat_model": "assistant", "session_uuid": world.session_a},
        headers=keyed(world.client_b),
    )
    assert taken.status_code == 201, taken.text
    assert taken.json()["chat_model"] == "assistant"
    posted = await world.client.post(
        f"/v1/sessions/{world.session_a}/messages",
        json={"messages": [{"role": "user", "content": "B's"}]},
        headers=keyed(world.client_b),
    )
    assert posted.status_code == 201, posted.text
    a_messages = await world.client.get(
        f"/v1/sessions/{world.session_a}/messages", headers=keyed(world.client_a)
    )
    assert "B's" not in a_messages.text
    a_after = await world.client.get(
        f"/v1/sessions/{world.session_a}", headers=keyed(world.client_a)
    )
    assert a_after.json() == a_before.json()


@pytest.mark.parametrize("path", ["/health", "/docs", "/openapi.json", "/admin"])
async def test_health_docs_and_the_admin_page_are_public(world: AuthWorld, path: str) -> None:
    assert (await world.client.get(path)).status_code == 200

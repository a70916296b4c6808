"""``GET /v1/usage``: runs, errors, tokens and cost per version, UTC day or API key, over
a window, for the caller's project only. Exact figures come from run records written with
known timestamps; real runs show that session runs and stateless calls both count."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from chatmodel_service.db import Database
from chatmodel_service.models import ChatRun
from tests.factories import add_messages, add_version, expect_error, make_chat_model, make_session
from tests.support.auth import AuthWorld, keyed


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def record_runs(app: FastAPI, version_uuid: str, *runs: dict[str, Any]) -> None:
    """Run records of a version, as the service writes them (no session: stateless)."""
    database: Database = app.state.database
    async with database.transaction() as db:
        for fields in runs:
            values: dict[str, Any] = {
                "status": "succeeded",
                "model": "m",
                "latency_ms": 10,
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "cost": 0.25,
                "created_at": at("2026-03-02T12:00:00"),
            } | fields
            if values["status"] == "failed":
                values |= {"error_type": "timeout", "prompt_tokens": None, "cost": None}
                values["completion_tokens"] = None
            db.add(ChatRun(version_id=uuid.UUID(version_uuid), session_id=None, **values))


async def usage(client: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    response = await client.get("/v1/usage", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


FIGURES = ("runs", "errors", "prompt_tokens", "completion_tokens", "total_tokens", "cost")


def figures(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[name] for name in FIGURES)


@pytest.fixture
async def versions(app: FastAPI, client: httpx.AsyncClient) -> dict[str, str]:
    """alpha v1 and v2, beta v1, with runs in March 2026 (and one outside the window)."""
    alpha1 = (await make_chat_model(client, "alpha"))["uuid"]
    alpha2 = (await add_version(client, "alpha"))["uuid"]
    beta1 = (await make_chat_model(client, "beta"))["uuid"]
    await record_runs(
        app,
        alpha1,
        {"created_at": at("2026-03-01T23:30:00"), "key_name": "web"},
        {"created_at": at("2026-03-02T00:10:00"), "key_name": "web", "status": "failed"},
        {"created_at": at("2026-03-02T12:00:00"), "prompt_tokens": 100, "cost": 1.5},
        {"created_at": at("2026-04-20T00:00:00")},  # outside March
    )
    await record_runs(app, alpha2, {"created_at": at("2026-03-03T08:00:00"), "key_name": "ops"})
    await record_runs(app, beta1, {"created_at": at("2026-03-03T23:59:59.999"), "key_name": "web"})
    return {"alpha1": alpha1, "alpha2": alpha2, "beta1": beta1}


MARCH = {"from": "2026-03-01", "to": "2026-03-31"}


async def test_usage_by_version(client: httpx.AsyncClient, versions: dict[str, str]) -> None:
    body = await usage(client, **MARCH, group_by="version")
    assert body["from"] == "2026-03-01T00:00:00Z"
    assert body["to"] == "2026-04-01T00:00:00Z"  # a date as `to` counts that whole day
    assert (body["chat_model"], body["group_by"]) == (None, "version")
    rows = [(r["chat_model"], r["version"], *figures(r)) for r in body["data"]]
    assert rows == [
        ("alpha", 1, 3, 1, 110, 10, 120, 1.75),
        ("alpha", 2, 1, 0, 10, 5, 15, 0.25),
        ("beta", 1, 1, 0, 10, 5, 15, 0.25),
    ]
    assert all(r["day"] is None and r["key_name"] is None for r in body["data"])
    assert figures(body["total"]) == (5, 1, 130, 20, 150, 2.25)


async def test_usage_of_one_chat_model(client: httpx.AsyncClient, versions: dict[str, str]) -> None:
    body = await usage(client, **MARCH, chat_model="alpha")
    assert body["chat_model"] == "alpha"
    assert [(r["version"], r["runs"]) for r in body["data"]] == [(1, 3), (2, 1)]
    assert figures(body["total"]) == (4, 1, 120, 15, 135, 2.0)


async def test_usage_by_utc_day(client: httpx.AsyncClient, versions: dict[str, str]) -> None:
    body = await usage(client, **MARCH, group_by="day")
    rows = [(r["day"], *figures(r)) for r in body["data"]]
    assert rows == [
        ("2026-03-01", 1, 0, 10, 5, 15, 0.25),
        ("2026-03-02", 2, 1, 100, 5, 105, 1.5),
        ("2026-03-03", 2, 0, 20, 10, 30, 0.5),
    ]
    assert body["total"]["runs"] == 5


async def test_the_window_is_from_included_to_excluded_in_utc(
    client: httpx.AsyncClient, versions: dict[str, str]
) -> None:
    # 01:00 at +02:00 is 23:00 UTC the day before: the 23:30 run is inside.
    body = await usage(
        client, **{"from": "2026-03-02T01:00:00+02:00", "to": "2026-03-02T12:00:00Z"}
    )
    assert body["from"] == "2026-03-01T23:00:00Z"
    assert body["total"]["runs"] == 2  # 23:30 and 00:10; the run at 12:00 is `to`, excluded
    one_day = await usage(client, **{"from": "2026-03-03", "to": "2026-03-03"}, group_by="day")
    assert [(r["day"], r["runs"]) for r in one_day["data"]] == [("2026-03-03", 2)]
    naive = await usage(client, **{"from": "2026-03-03T23:59:59", "to": "2026-03-04T00:00:00"})
    assert naive["from"] == "2026-03-03T23:59:59Z" and naive["total"]["runs"] == 1


async def test_usage_by_key(client: httpx.AsyncClient, versions: dict[str, str]) -> None:
    body = await usage(client, **MARCH, group_by="key")
    rows = [(r["key_name"], r["runs"], r["errors"], r["cost"]) for r in body["data"]]
    assert rows == [(None, 1, 0, 1.5), ("ops", 1, 0, 0.25), ("web", 3, 1, 0.5)]


async def test_an_empty_window_has_no_groups_and_zero_totals(
    client: httpx.AsyncClient, versions: dict[str, str]
) -> None:
    body = await usage(client, **{"from": "2025-01-01", "to": "2025-01-31"})
    assert body["data"] == []
    assert figures(body["total"]) == (0, 0, 0, 0, 0, None)


async def test_the_default_window_is_the_last_30_days(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "echo")
    session = await make_session(client, "echo")
    await add_messages(client, session, {"role": "user", "content": "Hello"})
    ran = await client.post(f"/v1/sessions/{session}/run")
    assert ran.json()["error"] is False
    stateless = await client.post(
        "/v1/chat/completions",
        json={"model": "echo", "messages": [{"role": "user", "content": "Hi"}]},
    )
    assert stateless.status_code == 200

    body = await usage(client)
    end = datetime.fromisoformat(body["to"])
    start = datetime.fromisoformat(body["from"])
    assert (end - start).days == 30
    assert abs((datetime.now(UTC) - end).total_seconds()) < 60
    assert [(r["chat_model"], r["version"], r["runs"]) for r in body["data"]] == [("echo", 1, 2)]


# -- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"from": "2026-03-01T25:00:00"}, "from"),
        ({"to": "9999-12-31"}, "to"),  # its next midnight does not exist
        ({"from": "2026-03-05", "to": "2026-03-01"}, "from"),
        ({"from": "2024-01-01", "to": "2026-01-01"}, "from"),  # over 366 days
    ],
)
async def test_bad_windows_are_422_naming_the_field(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    expect_error(await client.get("/v1/usage", params=params), 422, "invalid_input", field)


async def test_an_unknown_grouping_or_chat_model_is_refused(client: httpx.AsyncClient) -> None:
    week = await client.get("/v1/usage", params={"group_by": "week"})
    expect_error(week, 422, "validation_error", "group_by")
    unknown = await client.get("/v1/usage", params={"chat_model": "nope"})
    expect_error(unknown, 404, "chat_model_not_found", "chat_model")


# -- projects ---------------------------------------------------------------------------


async def test_usage_is_scoped_to_the_callers_project(world: AuthWorld) -> None:
    ran = await world.client.post(
        f"/v1/sessions/{world.session_a}/run",
        json={"messages": [{"role": "user", "content": "Hi"}]},
        headers=keyed(world.client_a),
    )
    assert ran.json()["error"] is False

    mine = await world.client.get(
        "/v1/usage", params={"group_by": "key"}, headers=keyed(world.admin_a)
    )
    assert [(r["key_name"], r["runs"]) for r in mine.json()["data"]] == [("web", 1)]
    theirs = await world.client.get("/v1/usage", headers=keyed(world.admin_b))
    assert theirs.status_code == 200
    assert theirs.json()["data"] == [] and theirs.json()["total"]["runs"] == 0
    hidden = await world.client.get(
        "/v1/usage", params={"chat_model": "assistant"}, headers=keyed(world.admin_b)
    )
    expect_error(hidden, 404, "chat_model_not_found", "chat_model")
    client_key = await world.client.get("/v1/usage", headers=keyed(world.client_a))
    expect_error(client_key, 403, "forbidden", None)

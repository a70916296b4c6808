"""Per-version figures, diffs between versions, and the cacheable reads of versions and
config (ETag, Cache-Control, 304)."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest

from chatmodel_service.llm import OFFLINE_MODEL
from tests.factories import (
    WEATHER_FUNCTION,
    add_messages,
    add_version,
    expect_error,
    make_chat_model,
    make_session,
    publish,
    run,
)
from tests.support.llm_server import Delay, ErrorReply, Reply, ScriptedLLMServer

PRICED_MODEL = "openai/gpt-4o-mini"  # LiteLLM's local price map knows it
IMMUTABLE = "public, max-age=31536000, immutable"


async def stats_of(client: httpx.AsyncClient, name: str, number: int) -> dict[str, Any]:
    response = await client.get(f"/v1/chat-models/{name}/versions/{number}/stats")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def runs_of(client: httpx.AsyncClient, *sessions: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    for session in sessions:
        response = await client.get(f"/v1/sessions/{session}/runs")
        assert response.status_code == 200, response.text
        runs.extend(response.json()["data"])
    return runs


async def diff_of(client: httpx.AsyncClient, name: str, old: int, new: int) -> dict[str, Any]:
    response = await client.get(f"/v1/chat-models/{name}/diff", params={"from": old, "to": new})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- per-version figures -------------------------------------------------------------------


async def test_stats_add_up_the_runs_of_one_version(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await make_chat_model(client, "ab", model=PRICED_MODEL, api_base=llm_server.base_url)
    await add_version(client, "ab", model=OFFLINE_MODEL)
    first, second = await make_session(client, "ab"), await make_session(client, "ab")
    other = await make_session(client, "ab", version=2)
    for session in (first, second, other):
        await add_messages(client, session, {"role": "user", "content": "Hello there."})
    # 22 runs of version 1: 20 quick ones, a failure, and a slow one (so the slowest run,
    # whichever it is, stands apart from the rest).
    llm_server.enqueue(
        *[Reply(f"reply {i}", prompt_tokens=10 + i, completion_tokens=i) for i in range(20)]
    )
    llm_server.enqueue(
        ErrorReply(500), Delay(0.5, Reply("slow", prompt_tokens=7, completion_tokens=3))
    )
    for i in range(22):
        await run(client, first if i % 2 else second)
    await run(client, other)  # version 2 (offline): must not count for version 1

    stats = await stats_of(client, "ab", 1)

    runs = await runs_of(client, first, second)
    latencies = sorted(r["latency_ms"] for r in runs)
    assert (stats["version"], stats["sessions"], stats["runs"], stats["errors"]) == (1, 2, 22, 1)
    assert stats["prompt_tokens"] == sum(10 + i for i in range(20)) + 7
    assert stats["completion_tokens"] == sum(range(20)) + 3
    assert stats["total_tokens"] == stats["prompt_tokens"] + stats["completion_tokens"]
    assert stats["cost"] == pytest.approx(sum(r["cost"] or 0 for r in runs))
    assert stats["cost"] > 0
    assert stats["latency_ms"]["mean"] == pytest.approx(sum(latencies) / 22)
    # Nearest rank: the ceil(0.95 * 22) = 21st of 22, not the slowest run.
    assert stats["latency_ms"]["p95"] == latencies[math.ceil(0.95 * 22) - 1] == latencies[20]
    assert stats["latency_ms"]["p95"] < latencies[21]


async def test_stats_of_other_versions(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot")
    await add_version(client, "bot")
    session = await make_session(client, "bot")
    await add_messages(client, session, {"role": "user", "content": "Echo me."})
    await run(client, session)
    await run(client, session)

    offline = await stats_of(client, "bot", 1)
    unused = await stats_of(client, "bot", 2)

    usage = [r["usage"] for r in await runs_of(client, session)]
    assert (offline["sessions"], offline["runs"], offline["errors"]) == (1, 2, 0)
    assert offline["prompt_tokens"] == sum(u["prompt_tokens"] for u in usage)
    assert offline["cost"] == 0  # the offline model is free, and that is known
    assert offline["latency_ms"]["p95"] is not None
    assert unused == {
        "version": 2,
        "sessions": 0,
        "runs": 0,
        "errors": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "cost": None,
        "latency_ms": {"mean": None, "p95": None},
        "feedback": {},
    }


@pytest.mark.parametrize(
    ("path", "status", "error", "field"),
    [
        ("/v1/chat-models/bot/versions/9/stats", 404, "version_not_found", "version"),
        ("/v1/chat-models/bot/versions/0/stats", 422, "validation_error", "number"),
        ("/v1/chat-models/ghost/versions/1/stats", 404, "chat_model_not_found", "chat_model"),
    ],
)
async def test_stats_of_unknown_versions(
    client: httpx.AsyncClient, path: str, status: int, error: str, field: str
) -> None:
    await make_chat_model(client, "bot")

    expect_error(await client.get(path), status, error, field)


# --- diffs ---------------------------------------------------------------------------------


async def test_diff_shows_the_prompt_and_every_changed_setting(client: httpx.AsyncClient) -> None:
    await make_chat_model(
        client,
        "bot",
        system_prompt="You are helpful.\nAnswer briefly.\nSign as Bot.",
        params={"temperature": 0.2, "max_tokens": 100},
        memo="first",
    )
    await add_version(
        client,
        "bot",
        system_prompt="You are helpful.\nAnswer in detail.\nSign as Bot.",
        model=PRICED_MODEL,
        api_base="http://127.0.0.1:9/v1",
        params={"temperature": 0.7, "top_p": 0.9},
        functions=[WEATHER_FUNCTION],
        memo="second",
    )

    diff = await diff_of(client, "bot", 1, 2)

    assert (diff["from"], diff["to"]) == (1, 2)
    assert diff["system_prompt_diff"] == [
        "--- v1",
        "+++ v2",
        "@@ -1,3 +1,3 @@",
        " You are helpful.",
        "-Answer briefly.",
        "+Answer in detail.",
        " Sign as Bot.",
    ]
    assert diff["changes"] == [
        {"field": "model", "from": OFFLINE_MODEL, "to": PRICED_MODEL},
        {"field": "api_base", "from": None, "to": "http://127.0.0.1:9/v1"},
        {"field": "params.max_tokens", "from": 100, "to": None},
        {"field": "params.temperature", "from": 0.2, "to": 0.7},
        {"field": "params.top_p", "from": None, "to": 0.9},
        {"field": "functions", "from": None, "to": [WEATHER_FUNCTION]},
        {"field": "memo", "from": "first", "to": "second"},
    ]
    backwards = await diff_of(client, "bot", 2, 1)
    assert backwards["changes"][0] == {"field": "model", "from": PRICED_MODEL, "to": OFFLINE_MODEL}
    assert backwards["system_prompt_diff"][4:6] == ["-Answer in detail.", "+Answer briefly."]


async def test_diff_reports_template_variables(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot", system_prompt="Hello.")
    await add_version(client, "bot", system_prompt="Hello {{user_name}}.", variables=["user_name"])

    diff = await diff_of(client, "bot", 1, 2)

    assert diff["changes"] == [{"field": "variables", "from": None, "to": ["user_name"]}]
    assert diff["system_prompt_diff"][-2:] == ["-Hello.", "+Hello {{user_name}}."]


async def test_diff_of_identical_settings_is_empty(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot", system_prompt="Same.", params={"temperature": 1})
    await add_version(client, "bot", system_prompt="Same.", params={"temperature": 1})

    assert await diff_of(client, "bot", 1, 2) == {
        "from": 1,
        "to": 2,
        "system_prompt_diff": [],
        "changes": [],
    }


@pytest.mark.parametrize(
    ("params", "status", "error", "field"),
    [
        ({"from": 7, "to": 1}, 404, "version_not_found", "from"),
        ({"from": 1, "to": 7}, 404, "version_not_found", "to"),
        ({"from": 1}, 422, "validation_error", "to"),
        ({"from": 0, "to": 1}, 422, "validation_error", "from"),
        ({"from": "latest", "to": 1}, 422, "validation_error", "from"),
    ],
)
async def test_diff_of_unknown_versions(
    client: httpx.AsyncClient, params: dict[str, Any], status: int, error: str, field: str
) -> None:
    await make_chat_model(client, "bot")

    response = await client.get("/v1/chat-models/bot/diff", params=params)

    detail = expect_error(response, status, error, field)
    if status == 404:
        assert "version 7" in detail


# --- cacheable reads -----------------------------------------------------------------------


async def test_a_version_is_immutable_and_revalidates_with_its_etag(
    client: httpx.AsyncClient,
) -> None:
    first = await make_chat_model(client, "bot")
    await add_version(client, "bot")

    response = await client.get("/v1/chat-models/bot/versions/1")

    assert response.status_code == 200
    assert response.json() == first
    etag = response.headers["etag"]
    assert etag.startswith('"') and first["uuid"].replace("-", "") in etag  # strong, from uuid
    assert response.headers["cache-control"] == IMMUTABLE
    second = await client.get("/v1/chat-models/bot/versions/2")
    assert second.headers["etag"] != etag
    for validator in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        cached = await client.get(
            "/v1/chat-models/bot/versions/1", headers={"If-None-Match": validator}
        )
        assert cached.status_code == 304, validator
        assert cached.content == b""
        assert (cached.headers["etag"], cached.headers["cache-control"]) == (etag, IMMUTABLE)
    stale = await client.get("/v1/chat-models/bot/versions/1", headers={"If-None-Match": '"other"'})
    assert (stale.status_code, stale.json()) == (200, first)


async def test_deploy_config_etag_follows_publishing(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot")
    await add_version(client, "bot")

    before = await client.get("/v1/chat-models/bot/config")
    etag = before.headers["etag"]
    unchanged = await client.get("/v1/chat-models/bot/config", headers={"If-None-Match": etag})
    await publish(client, "bot", 2)
    moved = await client.get("/v1/chat-models/bot/config", headers={"If-None-Match": etag})
    await publish(client, "bot", 1)  # the same version again, in a new release
    republished = await client.get("/v1/chat-models/bot/config", headers={"If-None-Match": etag})

    assert (before.status_code, before.json()["version"]) == (200, 1)
    assert before.headers["cache-control"] == "no-cache"
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    assert unchanged.headers["cache-control"] == "no-cache"
    assert (moved.status_code, moved.json()["version"]) == (200, 2)
    assert moved.headers["etag"] != etag
    assert (republished.status_code, republished.json()["version"]) == (200, 1)
    assert republished.headers["etag"] not in (etag, moved.headers["etag"])


async def test_numbered_and_latest_config_etags(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot")
    numbered = await client.get("/v1/chat-models/bot/config", params={"version": 1})
    latest = await client.get("/v1/chat-models/bot/config", params={"version": "latest"})
    assert numbered.headers["cache-control"] == "no-cache"
    assert latest.headers["etag"] == numbered.headers["etag"]  # both are version 1

    await add_version(client, "bot", publish=True)
    again = await client.get(
        "/v1/chat-models/bot/config",
        params={"version": 1},
        headers={"If-None-Match": numbered.headers["etag"]},
    )
    newer = await client.get(
        "/v1/chat-models/bot/config",
        params={"version": "latest"},
        headers={"If-None-Match": latest.headers["etag"]},
    )

    assert again.status_code == 304  # publishing does not change version 1
    assert (newer.status_code, newer.json()["version"]) == (200, 2)


async def test_session_config_has_no_etag(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot")
    session = await make_session(client, "bot")
    etag = (await client.get("/v1/chat-models/bot/config")).headers["etag"]

    response = await client.get(
        "/v1/chat-models/bot/config",
        params={"session_uuid": session},
        headers={"If-None-Match": "*"},
    )

    assert response.status_code == 200
    assert response.json()["session_uuid"] == session
    assert "etag" not in response.headers
    assert etag  # the same chat model without a session does have one

"""``GET /v1/usage?group_by=version,day``: one row per version per UTC day, with runs,
errors and error rate, tokens, cost and latency p95, on SQLite and PostgreSQL. Run records
are written with known days and latencies, so every figure is known in advance."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import add_version, expect_error, make_chat_model
from tests.usage.test_usage import at, record_runs, usage

MARCH = {"from": "2026-03-01", "to": "2026-03-31"}
FIGURES = (
    "runs",
    "errors",
    "error_rate",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost",
    "latency_p95_ms",
)


def figures(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[name] for name in FIGURES)


def day_runs(day: str, latencies: list[int], **fields: Any) -> list[dict[str, Any]]:
    """One run per latency, spread over ``day`` (UTC) from its first to its last second."""
    times = ["00:00:00", "23:59:59"] + [f"{10 + i % 12:02d}:{i % 60:02d}:00" for i in range(60)]
    return [
        {"created_at": at(f"{day}T{time}"), "latency_ms": latency, **fields}
        for time, latency in zip(times, latencies, strict=False)
    ]


@pytest.fixture
async def split(app: FastAPI, client: httpx.AsyncClient) -> dict[str, str]:
    """alpha v1 and v2 with runs on 1 and 2 March 2026 (and one in April); beta v1 on 1 March.

    1 March: v1 latencies 10, 20, 30 (the 30 ms one failed), v2 one run of 500 ms.
    2 March: v1 twenty runs of 1..20 ms, v2 two failed runs of 100 and 200 ms."""
    alpha1 = (await make_chat_model(client, "alpha"))["uuid"]
    alpha2 = (await add_version(client, "alpha"))["uuid"]
    beta1 = (await make_chat_model(client, "beta"))["uuid"]
    await record_runs(
        app,
        alpha1,
        *day_runs("2026-03-01", [10, 20]),
        *day_runs("2026-03-01", [30], status="failed"),
        *day_runs("2026-03-02", list(range(20, 0, -1))),
        {"created_at": at("2026-04-02T00:00:00"), "latency_ms": 9000},
    )
    await record_runs(
        app,
        alpha2,
        *day_runs("2026-03-01", [500], prompt_tokens=40, completion_tokens=2, cost=1.5),
        *day_runs("2026-03-02", [200, 100], status="failed"),
    )
    await record_runs(app, beta1, *day_runs("2026-03-01", [7000]))
    return {"alpha1": alpha1, "alpha2": alpha2, "beta1": beta1}


async def test_one_row_per_version_per_day(
    client: httpx.AsyncClient, split: dict[str, str]
) -> None:
    body = await usage(client, **MARCH, chat_model="alpha", group_by="version,day")
    assert body["group_by"] == "version,day"
    rows = [(r["chat_model"], r["version"], r["day"], *figures(r)) for r in body["data"]]
    assert rows == [
        # nearest rank: ceil(0.95 * 3) = 3rd of 10, 20, 30; ceil(0.95 * 20) = 19th of 1..20
        ("alpha", 1, "2026-03-01", 3, 1, 1 / 3, 20, 10, 30, 0.5, 30),
        ("alpha", 1, "2026-03-02", 20, 0, 0.0, 200, 100, 300, 5.0, 19),
        ("alpha", 2, "2026-03-01", 1, 0, 0.0, 40, 2, 42, 1.5, 500),
        ("alpha", 2, "2026-03-02", 2, 2, 1.0, 0, 0, 0, None, 200),
    ]
    assert all(r["key_name"] is None for r in body["data"])
    # The total's p95 ranks all 26 runs together: the 25th smallest is 200 ms.
    assert figures(body["total"]) == (26, 3, 3 / 26, 260, 112, 372, 7.0, 200)


async def test_all_chat_models_and_the_other_order(
    client: httpx.AsyncClient, split: dict[str, str]
) -> None:
    body = await usage(client, **MARCH, group_by=" day , version")
    assert body["group_by"] == "day,version"
    rows = [(r["day"], r["chat_model"], r["version"], r["runs"]) for r in body["data"]]
    assert rows == [  # ordered by day first, as asked
        ("2026-03-01", "alpha", 1, 3),
        ("2026-03-01", "alpha", 2, 1),
        ("2026-03-01", "beta", 1, 1),
        ("2026-03-02", "alpha", 1, 20),
        ("2026-03-02", "alpha", 2, 2),
    ]
    assert body["data"][2]["latency_p95_ms"] == 7000


async def test_single_groupings_are_unchanged_and_carry_p95_and_error_rate(
    client: httpx.AsyncClient, split: dict[str, str]
) -> None:
    by_version = await usage(client, **MARCH, chat_model="alpha")
    assert by_version["group_by"] == "version"
    rows = [(r["version"], r["day"], *figures(r)) for r in by_version["data"]]
    assert rows == [
        (1, None, 23, 1, 1 / 23, 220, 110, 330, 5.5, 20),  # 22nd of 1..20, 10, 20, 30
        (2, None, 3, 2, 2 / 3, 40, 2, 42, 1.5, 500),
    ]
    by_day = await usage(client, **MARCH, group_by="day")
    assert [(r["day"], r["version"], r["runs"], r["latency_p95_ms"]) for r in by_day["data"]] == [
        ("2026-03-01", None, 5, 7000),
        ("2026-03-02", None, 22, 100),  # 21st of 1..20, 100, 200
    ]
    by_key = await usage(client, **MARCH, group_by="key")
    assert [(r["key_name"], r["runs"], r["errors"]) for r in by_key["data"]] == [(None, 27, 3)]

    # The same percentile as a version's stats: over all of v2's runs, both give 500 ms.
    stats = await client.get("/v1/chat-models/alpha/versions/2/stats")
    assert stats.json()["latency_ms"]["p95"] == by_version["data"][1]["latency_p95_ms"] == 500
    april = await usage(client, **{"from": "2026-04-01", "to": "2026-04-30"})
    all_v1 = await client.get("/v1/chat-models/alpha/versions/1/stats")
    assert april["data"][0]["latency_p95_ms"] == 9000
    assert all_v1.json()["latency_ms"]["p95"] == 30  # 23rd of the 24 runs of v1 in all


async def test_every_grouping_together(client: httpx.AsyncClient, split: dict[str, str]) -> None:
    body = await usage(client, **MARCH, chat_model="alpha", group_by="key,version,day")
    assert [(r["key_name"], r["version"], r["day"], r["runs"]) for r in body["data"]] == [
        (None, 1, "2026-03-01", 3),
        (None, 1, "2026-03-02", 20),
        (None, 2, "2026-03-01", 1),
        (None, 2, "2026-03-02", 2),
    ]


async def test_an_empty_window_has_no_p95_and_no_error_rate(
    client: httpx.AsyncClient, split: dict[str, str]
) -> None:
    body = await usage(client, **{"from": "2025-01-01", "to": "2025-01-31"}, group_by="version,day")
    assert body["data"] == []
    assert figures(body["total"]) == (0, 0, None, 0, 0, 0, None, None)


@pytest.mark.parametrize(
    ("group_by", "said"),
    [
        ("week", "'week' is not a grouping"),
        ("version,week", "'week' is not a grouping"),
        ("version,day,version", "'version' is named twice"),
        ("version,", "'' is not a grouping"),
        ("", "'' is not a grouping"),
        ("Version", "'Version' is not a grouping"),
    ],
)
async def test_unknown_or_repeated_groupings_are_422_naming_group_by(
    client: httpx.AsyncClient, group_by: str, said: str
) -> None:
    response = await client.get("/v1/usage", params={"group_by": group_by})
    detail = expect_error(response, 422, "validation_error", "group_by")
    assert said in detail

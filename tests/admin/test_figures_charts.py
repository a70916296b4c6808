"""The Figures tab's charts in a real browser (Debian's Chromium through Playwright)
against the app under real uvicorn: a chat model split over two versions gets real runs
through the REST API (a scripted OpenAI-compatible server answers, once with an error),
plus run records on earlier days; every point of the chart, the split comparison and the
Versions table's small figures must carry the figures ``GET /v1/usage`` gives. A chat
model without runs shows an explanation. Screenshots land in the test's folder."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from chatmodel_service.config import Settings
from chatmodel_service.db import Database, create_engine
from chatmodel_service.models import ChatRun
from tests.support.databases import run_async
from tests.support.llm_server import ErrorReply, Reply, ScriptedLLMServer
from tests.support.servers import LiveApp

NAME = "split_bot"
METRICS = ("runs", "error_rate", "latency_p95_ms", "total_tokens", "cost")
MINUS = "\N{MINUS SIGN}"  # what the page writes in a negative difference


def _version(http: httpx.Client, api_base: str, prompt: str) -> dict[str, Any]:
    created = http.post(
        f"/v1/chat-models/{NAME}/versions",
        json={"system_prompt": prompt, "model": "openai/gpt-4o-mini", "api_base": api_base},
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def _run_pinned(http: httpx.Client, version: int, question: str) -> bool:
    """A session pinned to ``version``, run once; True if the run failed."""
    session = http.post("/v1/sessions", json={"chat_model": NAME, "version": version})
    assert session.status_code == 201, session.text
    run = http.post(
        f"/v1/sessions/{session.json()['uuid']}/run",
        json={"messages": [{"role": "user", "content": question}]},
    )
    assert run.status_code in (200, 502), run.text
    return bool(run.json()["error"])


def _record_earlier_runs(database_url: str, versions: dict[int, str]) -> None:
    """Run records on the three days before today, as the service writes them: v1 ran
    each day (one failure two days ago), v2 ran three days ago."""
    today = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0)

    def run(number: int, days_ago: int, latency: int, failed: bool = False) -> ChatRun:
        return ChatRun(
            version_id=uuid.UUID(versions[number]),
            session_id=None,
            status="failed" if failed else "succeeded",
            error_type="timeout" if failed else None,
            model="openai/gpt-4o-mini",
            latency_ms=latency,
            prompt_tokens=None if failed else 100,
            completion_tokens=None if failed else 20,
            cost=None if failed else 0.002,
            created_at=today - dt.timedelta(days=days_ago),
        )

    async def write() -> None:
        database = Database(create_engine(Settings(database_url=database_url)))
        try:
            async with database.transaction() as db:
                db.add_all(
                    [
                        run(1, 3, 120),
                        run(1, 3, 180),
                        run(1, 2, 90),
                        run(1, 2, 4000, failed=True),
                        run(1, 1, 150),
                        run(2, 3, 300),
                    ]
                )
        finally:
            await database.engine.dispose()

    run_async(write)


@pytest.fixture
def split_bot(live_app: LiveApp, llm_server: ScriptedLLMServer, database_url: str) -> str:
    """split_bot v1 and v2, published as a 50/50 split; real runs today (v1: two answers
    and a failure, v2: two answers) and recorded runs on the three days before."""
    with httpx.Client(base_url=live_app.base_url, timeout=30) as http:
        assert http.post("/v1/chat-models", json={"name": NAME}).status_code == 201
        v1 = _version(http, llm_server.base_url, "You answer briefly.")
        v2 = _version(http, llm_server.base_url, "You answer in detail.")
        published = http.post(
            f"/v1/chat-models/{NAME}/publish", json={"weights": {"1": 50, "2": 50}}
        )
        assert published.status_code == 200, published.text
        llm_server.enqueue(
            Reply("Yes.", prompt_tokens=12, completion_tokens=3),
            Reply("No.", prompt_tokens=14, completion_tokens=3),
            ErrorReply(500, "upstream broke"),
            Reply("Yes, because of the weather.", prompt_tokens=15, completion_tokens=30),
            Reply("No, the shop is shut.", prompt_tokens=16, completion_tokens=40),
        )
        failures = [
            _run_pinned(http, 1, "Is it sunny?"),
            _run_pinned(http, 1, "Is it late?"),
            _run_pinned(http, 1, "Is it broken?"),
            _run_pinned(http, 2, "Is it sunny?"),
            _run_pinned(http, 2, "Is it open?"),
        ]
        assert failures == [False, False, True, False, False]
    _record_earlier_runs(database_url, {1: v1["uuid"], 2: v2["uuid"]})
    return NAME


def _usage(live_app: LiveApp, **params: str) -> dict[str, Any]:
    response = httpx.get(f"{live_app.base_url}/v1/usage", params={"chat_model": NAME, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _points(page: Page) -> list[tuple[int, str, float]]:
    """Every point of the chart: (version, day, value) from its data attributes."""
    found: list[list[str]] = page.eval_on_selector_all(
        "#figures-chart circle.point",
        "points => points.map(p => [p.dataset.version, p.dataset.day, p.dataset.value])",
    )
    return sorted((int(version), day, float(value)) for version, day, value in found)


def _new_page(browser: Browser, errors: list[str]) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page


def test_the_chart_and_the_split_show_the_usage_figures(
    live_app: LiveApp, split_bot: str, browser: Browser, tmp_path: Path
) -> None:
    errors: list[str] = []
    page = _new_page(browser, errors)
    page.goto(f"{live_app.base_url}/admin#/{split_bot}/figures")
    chart = page.locator("#figures-chart svg.line-chart")
    expect(chart).to_have_attribute("data-metric", "runs")
    expect(page.locator("#figures-empty")).to_be_hidden()

    # The chart's window is the page's last 30 UTC days; ask the API for the same one.
    start, end = chart.get_attribute("data-from"), chart.get_attribute("data-to")
    assert start and end
    daily = _usage(live_app, group_by="version,day", **{"from": start, "to": end})
    assert {(row["version"], row["runs"]) for row in daily["data"] if row["day"] == end} == {
        (1, 3),
        (2, 2),
    }
    assert len(daily["data"]) == 6  # v1 on four days, v2 on two
    page.screenshot(path=tmp_path / "figures-runs.png", full_page=True)

    for metric in METRICS:
        page.locator("#figures-metric").select_option(metric)
        expect(page.locator("#figures-chart svg")).to_have_attribute("data-metric", metric)
        expected = sorted(
            (row["version"], row["day"], float(row[metric]))
            for row in daily["data"]
            if row[metric] is not None
        )
        assert expected, metric  # every figure has data to draw
        assert _points(page) == expected, metric  # the API's numbers, exactly
        numbers = page.locator("#figures-days-table td[data-value]")
        expect(numbers).to_have_count(len(expected))
    page.locator("#figures-metric").select_option("error_rate")
    page.locator("#figures-numbers summary").click()
    legend = page.locator("#figures-legend li")
    expect(legend).to_have_count(2)
    expect(legend).to_contain_text(["v1", "v2"])
    expect(legend.locator(".badge")).to_have_text(["50%", "50%"])
    page.screenshot(path=tmp_path / "figures-error-rate.png", full_page=True)

    # The split: the two sides since the split was published (today's real runs only).
    release = httpx.get(f"{live_app.base_url}/v1/chat-models/{NAME}/releases").json()["data"][0]
    sides = _usage(live_app, group_by="version", **{"from": release["created_at"]})
    v1, v2 = sides["data"]
    assert (v1["runs"], v1["errors"], v2["runs"], v2["errors"]) == (3, 1, 2, 0)
    table = page.locator("#figures-split-table")
    expect(page.locator("#figures-split")).to_be_visible()
    expect(table.locator("thead")).to_contain_text(f"v2 {MINUS} v1")
    figures = {
        "runs": (v1["runs"], v2["runs"]),
        "error_rate": (v1["error_rate"], v2["error_rate"]),
        "latency_p95_ms": (v1["latency_p95_ms"], v2["latency_p95_ms"]),
        "tokens_per_run": (v1["total_tokens"] / 3, v2["total_tokens"] / 2),
    }
    for metric, (first, second) in figures.items():
        row = table.locator(f"tr[data-metric={metric}]")
        shown = [
            float(v)
            for v in row.locator("td[data-version]").evaluate_all(
                "cells => cells.map(c => c.dataset.value)"
            )
        ]
        assert shown == pytest.approx([first, second]), metric
        difference = row.locator("td.difference").get_attribute("data-difference")
        assert difference is not None
        assert float(difference) == pytest.approx(second - first), metric
    runs_row = table.locator("tr[data-metric=runs]")
    expect(runs_row.locator("td.difference")).to_have_text(f"{MINUS}1")
    expect(table.locator("tr[data-metric=error_rate] td.difference")).to_have_text(
        f"{MINUS}33.3 pts"
    )
    page.locator("#figures-split").screenshot(path=tmp_path / "figures-split.png")
    page.emulate_media(color_scheme="dark")
    page.locator(".figures-chart").screenshot(path=tmp_path / "figures-dark.png")
    page.emulate_media(color_scheme="light")

    # The Versions table: runs and error rate per version over the last 7 days.
    page.locator("#tab-versions").click()
    week = _usage(live_app, group_by="version", **{"from": _days_ago(end, 6), "to": end})
    for row in week["data"]:
        cell = page.locator(f"[data-recent-version='{row['version']}']")
        expect(cell).to_have_attribute("data-runs", str(row["runs"]))
        expect(cell).to_have_attribute("data-errors", str(row["errors"]))
    assert [(r["version"], r["runs"], r["errors"]) for r in week["data"]] == [(1, 8, 2), (2, 3, 0)]
    expect(page.locator("[data-recent-version='1']")).to_contain_text("8 runs · 25% errors")
    page.locator("#versions-table").screenshot(path=tmp_path / "versions-recent.png")
    assert errors == []


def _days_ago(day: str, days: int) -> str:
    return (dt.date.fromisoformat(day) - dt.timedelta(days=days)).isoformat()


def test_a_chat_model_without_runs_explains_what_will_appear(
    live_app: LiveApp, browser: Browser, tmp_path: Path
) -> None:
    with httpx.Client(base_url=live_app.base_url, timeout=30) as http:
        assert http.post("/v1/chat-models", json={"name": "quiet_bot"}).status_code == 201
        version = http.post(
            "/v1/chat-models/quiet_bot/versions",
            json={"system_prompt": "Hi.", "model": "chatmodel-offline/echo"},
        )
        assert version.status_code == 201, version.text
    errors: list[str] = []
    page = _new_page(browser, errors)
    page.goto(f"{live_app.base_url}/admin#/quiet_bot/figures")
    empty = page.locator("#figures-empty")
    expect(empty).to_be_visible()
    expect(empty).to_contain_text("No runs yet")
    expect(empty).to_contain_text("charts its runs, error rate, p95 latency, tokens and cost")
    expect(empty).to_contain_text("publish a version")  # nothing is published yet
    expect(empty).to_contain_text("POST /v1/sessions/{id}/run")
    expect(page.locator("#figures-table")).to_be_hidden()
    expect(page.locator("#figures-chart")).to_be_hidden()
    page.screenshot(path=tmp_path / "figures-empty.png", full_page=True)

    page.locator("#tab-versions").click()
    expect(page.locator("[data-recent-version='1'] .recent-text")).to_have_text("no runs")
    assert errors == []

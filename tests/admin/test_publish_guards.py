"""The admin page's publishing guards and empty states, and signing in on a deep link, in a
real browser (the ``browser`` fixture: Debian's Chromium driven by Playwright) against the
app under real uvicorn. Screenshots land in the test's temporary folder.

The page's logic does not depend on the database, so these run on SQLite only; the
server's side of the split guard runs on both in ``tests/releases/test_split_guard.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect

from chatmodel_service.app import create_app
from chatmodel_service.config import Settings
from chatmodel_service.llm import OFFLINE_MODEL
from chatmodel_service.llm.gateway import LLMGateway
from tests.support.auth import seed_key, started_app
from tests.support.servers import LiveApp, serve_in_thread

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

PLAN_PROMPT = "You help customers on the {{plan}} plan."


# -- data, through the REST API -------------------------------------------------------


def create_model(http: httpx.Client, name: str) -> None:
    response = http.post("/v1/chat-models", json={"name": name})
    assert response.status_code == 201, response.text


def create_version(http: httpx.Client, name: str, system_prompt: str, **fields: Any) -> int:
    body = {"system_prompt": system_prompt, "model": OFFLINE_MODEL, **fields}
    response = http.post(f"/v1/chat-models/{name}/versions", json=body)
    assert response.status_code == 201, response.text
    number: int = response.json()["number"]
    return number


def release_numbers(http: httpx.Client, name: str) -> list[int]:
    response = http.get(f"/v1/chat-models/{name}/releases")
    assert response.status_code == 200, response.text
    return [release["release"] for release in response.json()["data"]]


def plain_then_plan(http: httpx.Client, name: str = "bot") -> None:
    """v1 declares no variables and is live; v2 declares {plan}, not published."""
    create_model(http, name)
    create_version(http, name, "You help customers.", publish=True)
    create_version(http, name, PLAN_PROMPT, variables=["plan"])


# -- the page -------------------------------------------------------------------------


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page; at the end, no script error was thrown on it."""
    opened = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    assert errors == []


def open_section(page: Page, base_url: str, name: str, section: str) -> None:
    page.goto(f"{base_url}/admin#/{name}/{section}")
    expect(page.locator("#chat-model-title")).to_have_text(name)


def strip_variables(route: Route) -> None:
    """Answer the versions list as if no version declared variables (a page that
    misjudges a split, so the server's refusal is what it meets)."""
    response = route.fetch()
    body = response.json()
    for version in body["data"]:
        version["variables"] = None
    route.fulfill(response=response, body=json.dumps(body))


def test_a_split_of_different_variables_cannot_be_confirmed(
    live_app: LiveApp, page: Page, tmp_path: Path
) -> None:
    with httpx.Client(base_url=live_app.base_url) as http:
        plain_then_plan(http)
        create_version(http, "bot", "You help customers briefly.")  # v3, no variables
        open_section(page, live_app.base_url, "bot", "publish")
        expect(page.locator("#current-release")).to_contain_text("Release #1")

        # v1 (none) and v2 ({plan}): the review says why, and offers only Cancel.
        page.locator("#split-version-0").select_option("1")
        page.locator("#split-version-1").select_option("2")
        page.get_by_role("button", name="Review split").click()
        note = page.locator("#confirm-note")
        expect(note).to_contain_text("v1 declares none, v2 declares {plan}")
        expect(note).to_contain_text(
            "sessions created with variables {plan} would fail on v1, which declares none"
        )
        expect(note).to_contain_text(
            "sessions created without variables would fail on v2, which declares {plan}"
        )
        expect(page.locator("#confirm-ok")).to_be_disabled()
        page.screenshot(path=tmp_path / "1-split-refused.png")
        page.locator("#confirm-cancel").click()
        expect(page.locator("#confirm-dialog")).to_be_hidden()
        assert release_numbers(http, "bot") == [1]

        # A page that misjudges the versions meets the server's refusal, shown as such.
        page.route("**/v1/chat-models/bot/versions", strip_variables)
        page.reload()
        expect(page.locator("#current-release")).to_contain_text("Release #1")
        page.locator("#split-version-0").select_option("1")
        page.locator("#split-version-1").select_option("2")
        page.get_by_role("button", name="Review split").click()
        page.locator("#confirm-ok").click()
        error = page.locator("#publish-error")
        expect(error).to_contain_text("Variables mismatch (422)")
        expect(error).to_contain_text("would fail on version 2, which declares {plan}")
        expect(error).to_contain_text("weights")
        page.screenshot(path=tmp_path / "2-server-refusal.png")
        assert release_numbers(http, "bot") == [1]
        page.unroute("**/v1/chat-models/bot/versions")

        # v1 and v3 declare the same (none): confirmed and live.
        page.reload()
        expect(page.locator("#current-release")).to_contain_text("Release #1")
        page.locator("#split-version-0").select_option("1")
        page.locator("#split-version-1").select_option("3")
        page.get_by_role("button", name="Review split").click()
        expect(page.locator("#confirm-note")).not_to_contain_text("variables")
        page.locator("#confirm-ok").click()
        expect(page.locator("#deploy-status")).to_have_text("v1 50% · v3 50%")
        assert release_numbers(http, "bot") == [2, 1]


def test_confirm_is_offered_only_for_a_change_and_rollback_stands_out(
    live_app: LiveApp, page: Page, tmp_path: Path
) -> None:
    with httpx.Client(base_url=live_app.base_url) as http:
        plain_then_plan(http)
        open_section(page, live_app.base_url, "bot", "publish")
        expect(page.locator("#current-release")).to_contain_text("Release #1")

        # Publishing v1 again would change nothing.
        page.locator("#publish-version").select_option("1")
        page.get_by_role("button", name="Review publish").click()
        expect(page.locator("#confirm-note")).to_contain_text("This is what is live already")
        expect(page.locator("#confirm-ok")).to_be_disabled()
        page.screenshot(path=tmp_path / "1-nothing-changes.png")
        page.keyboard.press("Escape")
        expect(page.locator("#confirm-dialog")).to_be_hidden()
        assert release_numbers(http, "bot") == [1]

        # v2 needs {plan}: the review says what breaks, and the server's warning follows.
        page.locator("#publish-version").select_option("2")
        page.get_by_role("button", name="Review publish").click()
        expect(page.locator("#confirm-note")).to_contain_text(
            "sessions created without variables would fail on v2, which declares {plan}"
        )
        expect(page.locator("#confirm-ok")).to_be_enabled()
        page.locator("#confirm-ok").click()
        status = page.locator("#publish-status")
        expect(status).to_contain_text("Release #2 (publish) is live: v2 100%.")
        expect(status).to_contain_text(
            "sessions created without variables would fail on version 2, which declares {plan}"
        )
        page.screenshot(path=tmp_path / "2-published-with-warning.png")

        # The rollback button names its target and is not the plain primary button.
        rollback = page.locator("#rollback-submit")
        expect(rollback).to_have_text("Review rollback to #1")
        expect(rollback).to_have_class("danger")
        rollback.click()
        ok = page.locator("#confirm-ok")
        expect(ok).to_have_text("Roll back to release #1")
        expect(ok).to_have_class("danger")
        page.screenshot(path=tmp_path / "3-rollback.png")
        ok.click()
        expect(page.locator("#deploy-status")).to_have_text("v1 100%")
        assert release_numbers(http, "bot") == [3, 2, 1]

        # The history keeps each release's warning.
        page.locator("#tab-releases").click()
        rows = page.locator("#releases-table tbody tr")
        expect(rows).to_have_count(3)
        expect(rows.nth(0)).to_contain_text(
            "sessions created with variables {plan} would fail on version 1"
        )
        expect(rows.nth(1)).to_contain_text("sessions created without variables would fail")
        expect(rows.nth(2).locator(".release-warning")).to_have_count(0)


def test_empty_and_unknown_chat_models(live_app: LiveApp, page: Page, tmp_path: Path) -> None:
    with httpx.Client(base_url=live_app.base_url) as http:
        create_model(http, "empty")
        open_section(page, live_app.base_url, "empty", "publish")
        current = page.locator("#current-release")
        expect(current).to_contain_text("Nothing is published yet")
        expect(current).not_to_contain_text("Live now", ignore_case=True)
        expect(page.locator("#publish-submit")).to_be_disabled()
        expect(page.locator("#publish-problem")).to_have_text(
            "There is no version to publish yet: create one on the Versions tab."
        )
        page.screenshot(path=tmp_path / "1-empty-publish.png")

        page.locator("#tab-diff").click()
        expect(page.locator("#diff-result")).to_have_text(
            "There are no versions yet: create two on the Versions tab to compare them."
        )
        create_version(http, "empty", "The first.")
        page.reload()
        expect(page.locator("#diff-result")).to_have_text(
            "There is only one version: create another to compare."
        )
        page.locator("#tab-publish").click()
        expect(page.locator("#publish-submit")).to_be_enabled()
        expect(page.locator("#publish-problem")).to_be_hidden()

        # An address naming no chat model says so and offers nothing to do to it.
        open_section(page, live_app.base_url, "nope", "versions")
        expect(page.locator("#chat-model-error")).to_contain_text("No chat model named 'nope'.")
        expect(page.get_by_role("button", name="New version", exact=True)).to_be_hidden()
        expect(page.locator("#tabs")).to_be_hidden()
        page.screenshot(path=tmp_path / "2-unknown.png")
        page.locator("#chat-model-list").get_by_text("empty").click()
        expect(page.get_by_role("button", name="New version", exact=True)).to_be_visible()
        expect(page.locator("#chat-model-error")).to_be_empty()


async def _seed_admin_key(database_url: str, gateway: LLMGateway) -> str:
    async with started_app(database_url, gateway) as app:
        key, _ = await seed_key(app, "admin", "browser")
    return key


def admin_key(database_url: str, gateway: LLMGateway) -> str:
    """An admin key of the default project, written to the database before the server
    starts (in a thread of its own: Playwright's sync API holds this thread's loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _seed_admin_key(database_url, gateway)).result()


def test_signing_in_on_a_deep_link_shows_it_without_a_reload(
    database_url: str, gateway: LLMGateway, page: Page, tmp_path: Path
) -> None:
    key = admin_key(database_url, gateway)
    settings = Settings(database_url=database_url, seed_demo=False, auth="required")
    headers = {"Authorization": f"Bearer {key}"}
    with (
        serve_in_thread(create_app(settings, gateway)) as live,
        httpx.Client(base_url=live.base_url, headers=headers) as http,
    ):
        plain_then_plan(http)
        page.goto(f"{live.base_url}/admin#/bot/versions")
        dialog = page.locator("#login-dialog")
        expect(dialog).to_be_visible()
        expect(page.locator("#chat-model-list")).to_have_text("Sign in to see chat models.")
        expect(page.locator("#chat-models-error")).to_be_empty()
        page.screenshot(path=tmp_path / "1-signed-out.png")
        page.evaluate("window.stillTheSamePage = true")

        page.get_by_label("Admin API key").fill(key)
        page.get_by_role("button", name="Sign in").click()

        expect(dialog).to_be_hidden()
        expect(page.locator("#versions-table tbody tr")).to_have_count(2)
        expect(page.locator("#version-detail")).to_contain_text("Version 2")
        expect(page.locator("#deploy-status")).to_have_text("v1 100%")
        expect(page.locator("#chat-model-error")).to_be_empty()
        expect(page.locator("#chat-model-list")).to_contain_text("bot")
        expect(page.locator("#tab-versions")).to_have_attribute("aria-selected", "true")
        page.screenshot(path=tmp_path / "2-signed-in.png")
        assert page.evaluate("window.stillTheSamePage") is True

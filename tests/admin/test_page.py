"""The admin page in a real browser (the ``browser`` fixture: Debian's Chromium driven by
Playwright), against the app under real uvicorn. Screenshots land in the test's temporary
folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect

from chatmodel_service.app import create_app
from chatmodel_service.config import Settings
from chatmodel_service.llm.gateway import LLMGateway
from tests.support.servers import LiveApp, serve_in_thread


def test_page_and_assets_are_served(live_app: LiveApp) -> None:
    with httpx.Client(base_url=live_app.base_url) as http:
        page = http.get("/admin")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        script = http.get("/admin/static/app.js")
        assert script.headers["content-type"].startswith("text/javascript")
        assert http.get("/admin/static/style.css").headers["content-type"].startswith("text/css")
        missing = http.get("/admin/static/../app.py")
        assert missing.status_code == 404
        assert http.get("/admin/static/nope.js").json()["error"] == "not_found"


def _confirm(page: Page) -> None:
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    page.locator("#confirm-ok").click()
    expect(dialog).to_be_hidden()


def _release_kinds(page: Page) -> list[str]:
    page.locator("#tab-releases").click()
    page.locator("#releases-refresh").click()
    rows = page.locator("#releases-table tbody tr")
    expect(rows.first).to_be_visible()
    return [row.inner_text() for row in rows.all()]


def test_publish_split_rollback_cycle_and_session_messages(
    live_app: LiveApp, browser: Browser, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_app.base_url}/admin")
    page.get_by_text("simple_assistant").first.click()
    expect(page.locator("#chat-model-title")).to_have_text("simple_assistant")

    # A new version through the form.
    page.get_by_role("button", name="New version", exact=True).click()
    page.get_by_label("System prompt", exact=True).fill("You are a concise assistant.")
    page.get_by_label("Model", exact=True).fill("chatmodel-offline/echo")
    page.get_by_label("Memo", exact=True).fill("shorter answers")
    page.get_by_role("button", name="Create version").click()
    expect(page.locator("#version-detail")).to_contain_text("Version 2")
    page.screenshot(path=tmp_path / "1-version.png", full_page=True)

    # The diff between v1 and v2.
    page.locator("#tab-diff").click()
    page.locator("#diff-from").select_option("1")
    page.locator("#diff-to").select_option("2")
    page.get_by_role("button", name="Show diff").click()
    expect(page.locator("#diff-result")).to_contain_text("concise")
    expect(page.locator("#diff-result")).to_contain_text("helpful")
    page.screenshot(path=tmp_path / "2-diff.png")

    # Publish v2, split v1/v2 50/50, roll back: each confirmed first.
    page.locator("#tab-publish").click()
    page.locator("#publish-version").select_option("2")
    page.get_by_role("button", name="Review publish").click()
    _confirm(page)
    expect(page.locator("#deploy-status")).to_contain_text("v2 100%")
    page.get_by_role("button", name="Review split").click()
    expect(page.locator("#confirm-from")).to_contain_text("v2 · 100%")
    expect(page.locator("#confirm-to")).to_contain_text("v1 · 50%")
    page.screenshot(path=tmp_path / "3-confirm-split.png")
    _confirm(page)
    expect(page.locator("#deploy-status")).to_contain_text("50%")
    page.get_by_role("button", name="Review rollback").click()
    _confirm(page)
    expect(page.locator("#deploy-status")).to_contain_text("v2 100%")

    kinds = _release_kinds(page)
    page.screenshot(path=tmp_path / "4-releases.png")
    assert [row.split()[1].lower() for row in kinds[:3]] == ["rollback", "split", "publish"]

    with httpx.Client(base_url=live_app.base_url, timeout=30) as http:
        # Someone else publishes v1: this page's expected_release is now stale.
        http.post(
            "/v1/chat-models/simple_assistant/publish", json={"version": 1}
        ).raise_for_status()
        page.locator("#tab-publish").click()
        # v1, a change as far as this page knows (it still shows v2 live).
        page.locator("#publish-version").select_option("1")
        page.get_by_role("button", name="Review publish").click()
        _confirm(page)
        error = page.locator("#publish-error")
        expect(error).to_contain_text("Stale release (409)")
        expect(error).to_contain_text("expected_release")
        expect(page.locator("#deploy-status")).to_have_text("v1 100%")  # reloaded
        page.screenshot(path=tmp_path / "5-stale.png")

        # A session made over the REST API, with a function call round trip.
        session = http.post("/v1/sessions", json={"chat_model": "simple_assistant"}).json()
        messages_url = f"/v1/sessions/{session['uuid']}/messages"
        run_url = f"/v1/sessions/{session['uuid']}/run"
        question = {"role": "user", "content": "What is the weather in Boston?"}
        http.post(messages_url, json={"messages": [question]}).raise_for_status()
        weather = {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
        }
        http.post(run_url, json={"functions": [weather]}).raise_for_status()
        result = {"role": "function", "content": "13 degrees celsius"}
        http.post(messages_url, json={"messages": [result]}).raise_for_status()
        http.post(run_url).raise_for_status()
    page.locator("#tab-sessions").click()
    page.locator("#sessions-refresh").click()
    page.get_by_role("button", name=session["uuid"][:8]).click()
    messages = page.locator("#message-list")
    expect(messages.locator("li")).to_have_count(4)
    expect(messages.locator("li.role-assistant").first).to_contain_text("Function call")
    expect(messages).to_contain_text('get_weather({"location":"Boston"})')
    expect(messages).to_contain_text("get_weather returned: 13 degrees celsius")
    page.screenshot(path=tmp_path / "6-session.png")

    # Figures count the session's runs on the version it was pinned to (v1).
    page.locator("#tab-figures").click()
    v1 = page.locator("#figures-table tbody tr", has_text="v1")
    expect(v1.locator("td").nth(2)).to_have_text("2")  # runs
    page.screenshot(path=tmp_path / "7-figures.png")
    assert errors == []


def _create_key(database_url: str, scope: str, name: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATMODEL_")}
    env["CHATMODEL_DATABASE_URL"] = database_url
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "chatmodel._cli",
            "keys",
            "create",
            "--project",
            "default",
            "--scope",
            scope,
            "--name",
            name,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_page_signs_in_with_an_admin_key(
    database_url: str, gateway: LLMGateway, browser: Browser, tmp_path: Path
) -> None:
    admin_key = _create_key(database_url, "admin", "browser")
    client_key = _create_key(database_url, "client", "web")
    settings = Settings(database_url=database_url, seed_demo=True, auth="required")
    with serve_in_thread(create_app(settings, gateway)) as live:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{live.base_url}/admin")
        dialog = page.locator("#login-dialog")
        expect(dialog).to_be_visible()
        page.screenshot(path=tmp_path / "sign-in.png")

        page.get_by_label("Admin API key").fill(client_key)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#login-message")).to_contain_text("cannot manage chat models")

        page.get_by_label("Admin API key").fill(admin_key)
        page.get_by_role("button", name="Sign in").click()
        expect(dialog).to_be_hidden()
        page.get_by_text("simple_assistant").first.click()
        page.get_by_role("button", name="New version", exact=True).click()
        page.get_by_label("System prompt", exact=True).fill("Signed-in edit.")
        page.get_by_label("Model", exact=True).fill("chatmodel-offline/echo")
        page.get_by_role("button", name="Create version").click()
        expect(page.locator("#version-detail")).to_contain_text("Version 2")

        # The key travels only in a header: a request without it (what a forged cross-site
        # form would send) is refused, and the page set no cookie to ride along.
        forged = httpx.post(
            f"{live.base_url}/v1/chat-models/simple_assistant/versions",
            json={"system_prompt": "forged", "model": "chatmodel-offline/echo"},
        )
        assert forged.status_code == 401
        assert page.context.cookies() == []

        page.get_by_role("button", name="Sign out").click()
        expect(dialog).to_be_visible()

"""The Sessions tab as an observability view, in real Chromium against the app under real
uvicorn: failed runs as cards where they happened, regenerated replies marked, the
server-side filters, and the list beside the detail from 1200 px. Screenshots land in the
test's temporary folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.support.llm_server import ErrorReply, Reply, ScriptedLLMServer
from tests.support.servers import LiveApp, free_port


def _post(http: httpx.Client, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post(url, json=body)
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


def _session(http: httpx.Client, user_id: str, version: int = 1) -> str:
    body = {"chat_model": "support", "version": version, "metadata": {"user_id": user_id}}
    return str(_post(http, "/v1/sessions", body)["uuid"])


def _ask(http: httpx.Client, session: str, question: str, **body: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": question}]
    return _post(http, f"/v1/sessions/{session}/run", {"messages": messages, **body})


def make_sessions(live_app: LiveApp, server: ScriptedLLMServer) -> dict[str, Any]:
    """Chat model "support" (v1 on the scripted server, one retry; v2 on a closed port)
    and four sessions, oldest first: two failed runs (ada), a regenerated reply (bob), a
    connection error on v2 (cy), a plain answer (dee)."""
    with httpx.Client(base_url=live_app.base_url, timeout=60) as http:
        _post(http, "/v1/chat-models", {"name": "support"})
        version = {"system_prompt": "Be brief.", "model": "openai/scripted"}
        retried = {"api_base": server.base_url, "params": {"num_retries": 1}, "publish": True}
        _post(http, "/v1/chat-models/support/versions", version | retried)
        closed = {"api_base": f"http://127.0.0.1:{free_port()}/v1"}
        _post(http, "/v1/chat-models/support/versions", version | closed)

        failing = _session(http, "ada")
        server.enqueue(ErrorReply(503, "engine overloaded"), ErrorReply(503, "engine overloaded"))
        first = _ask(http, failing, "My order never arrived.")
        server.enqueue(ErrorReply(400, "this request is malformed"))
        second = _ask(http, failing, "Hello? Anyone there?")
        assert first["error"] and second["error"], (first, second)

        regenerated = _session(http, "bob")
        server.enqueue(Reply("Red."), Reply("Blue."))
        _ask(http, regenerated, "Name a colour.")
        _post(http, f"/v1/sessions/{regenerated}/run", {"regenerate": True})

        unreachable = _session(http, "cy", version=2)
        third = _ask(http, unreachable, "Is anyone listening?")
        assert third["error_type"] == "connection_error", third

        server.enqueue(Reply("In your account settings."))
        _ask(http, _session(http, "dee"), "Where can I change my PASSWORD?")

        runs = http.get(f"/v1/sessions/{failing}/runs").json()["data"]
    assert [r["error_type"] for r in runs] == ["provider_error", "bad_request"], runs
    return {"failing": failing, "regenerated": regenerated, "failed_runs": runs}


def _rows(page: Page) -> Locator:
    return page.locator("#sessions-table tbody tr")


def _expect_users(page: Page, users: list[str]) -> None:
    """The listed sessions, newest first, by their user column."""
    expect(page.locator("#sessions-table")).not_to_have_attribute("aria-busy", "true")
    expect(page.locator("#sessions-table tbody td.session-user")).to_have_text(users)


def _open(page: Page, session: str) -> Locator:
    page.get_by_role("button", name=session[:8]).click()
    expect(page.locator("#session-heading")).to_have_text(f"Session {session[:8]}")
    return page.locator("#message-list")


def _side_by_side(page: Page) -> bool:
    listed = page.locator(".sessions-list").bounding_box()
    detail = page.locator("#session-detail").bounding_box()
    assert listed is not None and detail is not None
    return detail["x"] >= listed["x"] + listed["width"] and abs(detail["y"] - listed["y"]) < 5


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = tmp_path / "screenshots"
    folder.mkdir()
    return folder


def test_failed_runs_regenerated_replies_and_filters(
    live_app: LiveApp, llm_server: ScriptedLLMServer, browser: Browser, shots: Path
) -> None:
    made = make_sessions(live_app, llm_server)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_app.base_url}/admin#/support/sessions")
    _expect_users(page, ["dee", "cy", "bob", "ada"])

    # Each row: created, version, user, first user message, messages, runs, errors.
    cells = _rows(page).filter(has_text="ada").locator("td")
    expect(cells.nth(0)).to_contain_text(made["failing"][:8])
    expect(cells.nth(1)).to_have_text("v1")
    expect(cells.nth(3)).to_have_text("My order never arrived.")
    expect(cells.nth(4)).to_have_text("2")  # messages: both questions, no reply
    expect(cells.nth(5)).to_have_text("2")  # runs
    expect(cells.nth(6)).to_have_text("2 failed")
    expect(_rows(page).filter(has_text="cy").locator("td").nth(1)).to_have_text("v2")
    expect(_rows(page).filter(has_text="dee").locator("td").nth(6)).to_have_text("—")

    # The failing session: each failed run is a card of its own, after its question.
    timeline = _open(page, made["failing"])
    cards = timeline.locator("li.run-failed")
    expect(cards).to_have_count(2)
    first_run, second_run = made["failed_runs"]
    for card, run in zip(cards.all(), (first_run, second_run), strict=True):
        expect(card.locator(".error-type")).to_have_text(run["error_type"])
        expect(card.locator(".error-log")).to_contain_text(run["error_log"].splitlines()[0])
        expect(card.locator(".run-facts")).to_contain_text(f"Attempts{len(run['attempts'])}")
    assert len(first_run["attempts"]) == 2  # the 503 was retried once
    expect(cards.first.locator(".attempts li")).to_have_count(2)
    expect(timeline.locator("> li")).to_have_class(
        ["message role-user", "run-card run-failed", "message role-user", "run-card run-failed"]
    )
    expect(timeline.locator("> li").nth(0)).to_contain_text("My order never arrived.")
    expect(timeline.locator("> li").nth(2)).to_contain_text("Hello? Anyone there?")
    assert _side_by_side(page)
    page.screenshot(path=shots / "1-failed-runs-1400.png")
    timeline.screenshot(path=shots / "1-failed-runs-timeline.png")

    # The regenerated reply: dimmed, marked, pointing at the reply that replaced it.
    timeline = _open(page, made["regenerated"])
    superseded = timeline.locator("li.superseded")
    expect(superseded).to_have_count(1)
    expect(superseded).to_contain_text("Red.")
    expect(superseded.locator(".tag-superseded")).to_have_text("Superseded by regenerate → #3")
    assert float(superseded.evaluate("node => getComputedStyle(node).opacity")) < 1
    replacement = timeline.locator("li#message-3")
    expect(replacement).to_contain_text("Blue.")
    expect(replacement.locator(".tag-regenerated")).to_have_text("Regenerated, replaces #2")
    expect(timeline.locator("li.run-card")).to_have_count(0)  # both runs stored a reply
    page.screenshot(path=shots / "2-regenerated-1400.png")
    timeline.screenshot(path=shots / "2-regenerated-timeline.png")

    # Filters, answered by the server.
    filters = page.locator("#sessions-filters")
    filters.get_by_label("User", exact=True).fill("bob")
    _expect_users(page, ["bob"])
    filters.get_by_role("button", name="Clear").click()
    _expect_users(page, ["dee", "cy", "bob", "ada"])
    filters.get_by_label("Errors", exact=True).select_option("true")
    _expect_users(page, ["cy", "ada"])
    expect(page.locator("#sessions-status")).to_have_text("2 sessions match these filters.")
    page.screenshot(path=shots / "3-with-errors-1400.png")
    filters.get_by_label("Errors", exact=True).select_option("false")
    _expect_users(page, ["dee", "bob"])
    filters.get_by_label("Errors", exact=True).select_option("")
    filters.get_by_label("Text", exact=True).fill("password")  # stored as "PASSWORD"
    _expect_users(page, ["dee"])
    filters.get_by_label("Text", exact=True).fill("colour")
    filters.get_by_label("Text", exact=True).press("Enter")
    _expect_users(page, ["bob"])
    filters.get_by_label("Text", exact=True).fill("")
    filters.get_by_label("Version", exact=True).select_option("2")
    _expect_users(page, ["cy"])
    filters.get_by_label("User", exact=True).fill("nobody")
    expect(_rows(page)).to_have_count(0)
    expect(page.locator("#sessions-empty")).to_have_text("No sessions match these filters.")
    filters.get_by_role("button", name="Clear").click()
    _expect_users(page, ["dee", "cy", "bob", "ada"])

    # 1200 px: still side by side; below that and on a phone, the detail under the list.
    _open(page, made["failing"])
    page.set_viewport_size({"width": 1200, "height": 900})
    assert _side_by_side(page)
    page.screenshot(path=shots / "4-failed-runs-1200.png")
    page.set_viewport_size({"width": 1180, "height": 900})
    assert not _side_by_side(page)
    page.set_viewport_size({"width": 390, "height": 844})
    assert not _side_by_side(page)
    expect(_rows(page).first).to_contain_text("Where can I change my PASSWORD?")
    page.screenshot(path=shots / "5-phone.png", full_page=True)

    # "Load more" follows the cursor with the filters of the rows shown.
    page.set_viewport_size({"width": 1400, "height": 900})
    with httpx.Client(base_url=live_app.base_url, timeout=60) as http:
        for _ in range(26):
            _session(http, "zed")
    filters.get_by_label("User", exact=True).fill("zed")
    _expect_users(page, ["zed"] * 25)
    expect(page.locator("#sessions-status")).to_have_text(
        "25 sessions (more below) match these filters."
    )
    page.get_by_role("button", name="Load more sessions").click()
    _expect_users(page, ["zed"] * 26)
    expect(page.get_by_role("button", name="Load more sessions")).to_be_hidden()
    filters.get_by_role("button", name="Clear").click()
    expect(_rows(page)).to_have_count(25)
    assert errors == []


def test_feedback_shows_under_its_message_and_the_session(
    live_app: LiveApp, llm_server: ScriptedLLMServer, browser: Browser
) -> None:
    with httpx.Client(base_url=live_app.base_url, timeout=60) as http:
        _post(http, "/v1/chat-models", {"name": "support"})
        version = {"system_prompt": "Be brief.", "model": "openai/scripted"}
        _post(
            http,
            "/v1/chat-models/support/versions",
            version | {"api_base": llm_server.base_url, "publish": True},
        )
        session = _session(http, "ada")
        llm_server.enqueue(Reply("Check your spam folder."))
        reply = _ask(http, session, "Where is my invoice?")["detail"]["message_uuid"]
        scored = f"/v1/sessions/{session}/messages/{reply}/feedback"
        _post(
            http, scored, {"name": "thumbs", "value": False, "comment": "Not there.", "by": "ada"}
        )
        _post(http, scored, {"name": "rating", "value": 2})
        _post(http, f"/v1/sessions/{session}/feedback", {"name": "resolved", "value": "no"})
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_app.base_url}/admin#/support/sessions")
    _expect_users(page, ["ada"])

    timeline = _open(page, session)

    answer = timeline.locator("> li").nth(1)
    expect(answer).to_contain_text("Check your spam folder.")
    expect(answer.locator(".feedback-name")).to_have_text(["thumbs", "rating"])
    expect(answer.locator(".feedback-value")).to_have_text(["false", "2"])
    expect(answer.locator(".feedback-comment")).to_have_text(["Not there."])
    expect(answer.locator(".feedback-by")).to_have_text(["ada"])
    expect(timeline.locator("> li").nth(0).locator("li.feedback")).to_have_count(0)
    own = page.locator("#session-feedback")
    expect(own).to_be_visible()
    expect(own.locator(".feedback-name")).to_have_text(["resolved"])
    expect(own.locator(".feedback-value")).to_have_text(["no"])
    page.get_by_role("button", name="Close").click()
    expect(own).to_be_hidden()
    assert errors == []

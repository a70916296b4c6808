"""The playground ("Try it") in a real browser against the app under real uvicorn: a
conversation with the unsaved New-version form, and two saved versions side by side. The
models are scripted OpenAI-compatible servers on 127.0.0.1, which record what the page
made the service send. Screenshots land in the test's temporary folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Locator, Page, expect

from tests.support.llm_server import ErrorReply, Reply, ScriptedLLMServer
from tests.support.servers import LiveApp

CHAT_MODEL = "simple_assistant"  # the demo chat model live_app seeds, with version 1


def _open_chat_model(browser: Browser, live_app: LiveApp) -> tuple[Page, list[str]]:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_app.base_url}/admin")
    page.get_by_text(CHAT_MODEL).first.click()
    expect(page.locator("#chat-model-title")).to_have_text(CHAT_MODEL)
    return page, errors


def _send(playground: Locator, text: str) -> None:
    playground.get_by_label("Message", exact=True).fill(text)
    playground.get_by_role("button", name="Send", exact=True).click()


def _screenshots(page: Page, playground: Locator, folder: Path, name: str) -> None:
    """The playground at 1400x900 and at phone width, and the whole page at both."""
    for width, height, device in ((1400, 900, "desktop"), (390, 844, "phone")):
        page.set_viewport_size({"width": width, "height": height})
        playground.screenshot(path=folder / f"{name}-{device}.png")
        page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar at the top of the page
        page.screenshot(path=folder / f"{name}-{device}-page.png", full_page=True)
    page.set_viewport_size({"width": 1400, "height": 900})


def _stored(live_app: LiveApp) -> tuple[int, int]:
    """(versions of the demo chat model, sessions) as the API lists them."""
    with httpx.Client(base_url=live_app.base_url) as http:
        versions = http.get(f"/v1/chat-models/{CHAT_MODEL}/versions").json()["data"]
        sessions = http.get("/v1/sessions").json()["data"]
    return len(versions), len(sessions)


def test_a_conversation_with_the_unsaved_new_version_form(
    live_app: LiveApp, browser: Browser, llm_server: ScriptedLLMServer, tmp_path: Path
) -> None:
    stored_before = _stored(live_app)
    page, errors = _open_chat_model(browser, live_app)
    expect(page.locator("#version-detail")).to_contain_text("Version 1")
    page.get_by_role("button", name="New version", exact=True).click()
    form = page.locator("#new-version-form")
    form.get_by_label("System prompt", exact=True).fill("You help {{customer}} kindly.")
    form.get_by_label("Model", exact=True).fill("openai/scripted")
    form.get_by_label("API base").fill(llm_server.base_url)
    form.get_by_label("Variables").fill("customer")
    form.get_by_role("button", name="Try it").click()

    playground = page.locator("#playground")
    expect(playground.get_by_role("heading", name="Try the draft")).to_be_visible()
    playground.get_by_label("{{customer}}").fill("Ada")
    llm_server.enqueue(Reply("Hello Ada, how can I help?", prompt_tokens=11, completion_tokens=7))
    _send(playground, "Hi there")

    draft_replies = playground.locator('.pg-reply[data-column="draft"]')
    expect(draft_replies.first).to_contain_text("Hello Ada, how can I help?")
    expect(draft_replies.first).to_contain_text("18 tokens (11 in, 7 out)")
    system = {"role": "system", "content": "You help Ada kindly."}
    first_turn = [system, {"role": "user", "content": "Hi there"}]
    assert llm_server.requests[0]["messages"] == first_turn

    # The second turn carries the conversation so far, the model's reply included.
    llm_server.enqueue(Reply("Refunds take five days."))
    _send(playground, "How long do refunds take?")
    expect(draft_replies.nth(1)).to_contain_text("Refunds take five days.")
    assert llm_server.requests[1]["messages"] == [
        *first_turn,
        {"role": "assistant", "content": "Hello Ada, how can I help?"},
        {"role": "user", "content": "How long do refunds take?"},
    ]
    expect(playground.locator(".pg-transcript > li")).to_have_count(4)

    # A failing model call is an answer too, shown in its column.
    llm_server.enqueue(ErrorReply(429, "Slow down, scripted"))
    _send(playground, "Again?")
    expect(draft_replies.nth(2)).to_contain_text("Rate limited")
    expect(draft_replies.nth(2)).to_contain_text("Slow down, scripted")

    # Beside saved v1 (the offline model, which echoes): the draft's history goes on, the
    # failed turn left out.
    playground.get_by_label("Compare with").select_option("1")
    llm_server.enqueue(Reply("Still here, Ada."))
    _send(playground, "Are you there?")
    expect(draft_replies.nth(3)).to_contain_text("Still here, Ada.")
    expect(playground.locator('.pg-reply[data-column="v1"]')).to_contain_text("Are you there?")
    assert llm_server.requests[3]["messages"][-3:] == [
        {"role": "assistant", "content": "Refunds take five days."},
        {"role": "user", "content": "Again?"},
        {"role": "user", "content": "Are you there?"},
    ]
    _screenshots(page, playground, tmp_path, "draft")

    # A draft the service refuses names the form's field, and the form marks it.
    form.get_by_label("Model", exact=True).fill("")
    _send(playground, "Anyone there?")
    expect(draft_replies.nth(4)).to_contain_text("version.model")
    expect(form.get_by_label("Model", exact=True)).to_have_attribute("aria-invalid", "true")
    assert len(llm_server.requests) == 4

    playground.get_by_role("button", name="Reset").click()
    expect(playground.locator(".pg-transcript > li")).to_have_count(0)
    assert _stored(live_app) == stored_before  # no version, no session
    assert errors == []


def _scripted_version(live_app: LiveApp, server: ScriptedLLMServer, prompt: str, memo: str) -> int:
    created = httpx.post(
        f"{live_app.base_url}/v1/chat-models/{CHAT_MODEL}/versions",
        json={
            "system_prompt": prompt,
            "model": "openai/scripted",
            "api_base": server.base_url,
            "memo": memo,
        },
    )
    assert created.status_code == 201, created.text
    number: int = created.json()["number"]
    return number


def _messages(server: ScriptedLLMServer, index: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = server.requests[index]["messages"]
    return messages


def test_two_saved_versions_side_by_side_on_the_same_messages(
    live_app: LiveApp, browser: Browser, llm_server: ScriptedLLMServer, tmp_path: Path
) -> None:
    # One scripted server per version, so each reply is known to come from its own prompt.
    with ScriptedLLMServer() as butler_server:
        pirate = _scripted_version(live_app, llm_server, "Answer like a pirate.", "pirate")
        butler = _scripted_version(live_app, butler_server, "Answer like a butler.", "butler")
        llm_server.enqueue(Reply("Arr, ahoy matey!"), Reply("Aye, the sea be calm."))
        butler_server.enqueue(Reply("Good evening, sir."), Reply("Quite calm, sir."))
        page, errors = _open_chat_model(browser, live_app)
        expect(page.locator("#version-detail")).to_contain_text(f"Version {butler}")
        page.locator("#version-detail").get_by_role("button", name="Try it").click()

        playground = page.locator("#playground")
        expect(playground.get_by_role("heading", name=f"Try version {butler}")).to_be_visible()
        playground.get_by_label("Compare with").select_option(str(pirate))
        _send(playground, "Hello!")
        butler_column = playground.locator(f'.pg-reply[data-column="v{butler}"]')
        pirate_column = playground.locator(f'.pg-reply[data-column="v{pirate}"]')
        expect(butler_column.first).to_contain_text("Good evening, sir.")
        expect(pirate_column.first).to_contain_text("Arr, ahoy matey!")
        expect(pirate_column.first).not_to_contain_text("Good evening")
        butler_box, pirate_box = (
            butler_column.first.bounding_box(),
            pirate_column.first.bounding_box(),
        )
        assert butler_box and pirate_box
        assert butler_box["y"] == pirate_box["y"]  # side by side: the same row,
        assert butler_box["x"] + butler_box["width"] <= pirate_box["x"]  # v3 on the left

        # The same next message on both; each column goes on from its own reply.
        _send(playground, "How is the sea?")
        expect(butler_column.nth(1)).to_contain_text("Quite calm, sir.")
        expect(pirate_column.nth(1)).to_contain_text("Aye, the sea be calm.")
        _screenshots(page, playground, tmp_path, "compare")

        assert _messages(butler_server, 1) == [
            {"role": "system", "content": "Answer like a butler."},
            {"role": "user", "content": "Hello!"},
            {"role": "assistant", "content": "Good evening, sir."},
            {"role": "user", "content": "How is the sea?"},
        ]
        assert _messages(llm_server, 1) == [
            {"role": "system", "content": "Answer like a pirate."},
            {"role": "user", "content": "Hello!"},
            {"role": "assistant", "content": "Arr, ahoy matey!"},
            {"role": "user", "content": "How is the sea?"},
        ]
        assert errors == []

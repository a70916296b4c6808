"""``chatmodel chat`` as a person uses it, on a pseudo-terminal, and as a script feeds it,
through a pipe: against the app under real uvicorn, the scripted model server behind it."""

from __future__ import annotations

import re

import httpx

from tests.client.cli_support import TerminalSession, cli_env, run_cli
from tests.support.llm_server import Reply, ScriptedLLMServer, SlowStream
from tests.support.servers import LiveApp, free_port, scripted_chat_model

DEMO = "simple_assistant"
SESSION_UUID = re.compile(r"session ([0-9a-f-]{36})")


def conversation(request: dict[str, object]) -> list[tuple[object, object]]:
    """The (role, content) pairs a model call was sent, the system prompt left out."""
    messages = request["messages"]
    assert isinstance(messages, list)
    return [(m["role"], m["content"]) for m in messages if m["role"] != "system"]


def stored(live_app: LiveApp, session_uuid: str) -> list[tuple[str, str]]:
    page = httpx.get(f"{live_app.base_url}/v1/sessions/{session_uuid}/messages", timeout=10)
    assert page.status_code == 200, page.text
    return [(m["role"], m["content"]) for m in page.json()["data"]]


def chat_at(live_app: LiveApp, *args: str) -> TerminalSession:
    return TerminalSession("--base-url", live_app.base_url, "chat", *args)


def test_chat_on_a_terminal_streams_each_reply_and_keeps_the_history(
    live_app: LiveApp, llm_server: ScriptedLLMServer
) -> None:
    name = scripted_chat_model(live_app, llm_server)
    llm_server.enqueue(Reply("Hello Ana, nice to meet you"), Reply("Your name is Ana"))

    with chat_at(live_app, name) as terminal:
        banner = terminal.read_until("> ")
        found = SESSION_UUID.search(banner)
        assert found is not None, banner
        session_uuid = found.group(1)
        assert f"{name} v1 (openai/scripted): new session {session_uuid}" in banner
        assert f"continue it with --session {session_uuid}" in banner
        terminal.type("My name is Ana\n")
        assert "Hello Ana, nice to meet you\n" in terminal.read_until("> ")
        terminal.type("What is my name?\n")
        assert "Your name is Ana\n" in terminal.read_until("> ")
        terminal.type("exit\n")
        assert terminal.wait() == 0

    assert [request.get("stream") for request in llm_server.requests] == [True, True]
    assert conversation(llm_server.requests[1]) == [
        ("user", "My name is Ana"),
        ("assistant", "Hello Ana, nice to meet you"),
        ("user", "What is my name?"),
    ]
    assert stored(live_app, session_uuid) == [
        ("user", "My name is Ana"),
        ("assistant", "Hello Ana, nice to meet you"),
        ("user", "What is my name?"),
        ("assistant", "Your name is Ana"),
    ]


def test_chat_with_session_continues_that_conversation(
    live_app: LiveApp, llm_server: ScriptedLLMServer
) -> None:
    name = scripted_chat_model(live_app, llm_server)
    llm_server.enqueue(Reply("Earlier answer"), Reply("Welcome back"))
    first = run_cli("--base-url", live_app.base_url, "run", name, "Earlier question", "--json")
    session_uuid = first.json()["detail"]["session_uuid"]

    with chat_at(live_app, name, "--session", session_uuid) as terminal:
        banner = terminal.read_until("> ")
        assert f"session {session_uuid}, 2 messages so far" in banner
        assert "new session" not in banner
        terminal.type("I am back\n")
        assert "Welcome back\n" in terminal.read_until("> ")
        terminal.type("!exit\n")
        assert terminal.wait() == 0

    assert conversation(llm_server.requests[1]) == [
        ("user", "Earlier question"),
        ("assistant", "Earlier answer"),
        ("user", "I am back"),
    ]


def test_ctrl_c_stops_a_reply_cancels_its_run_and_the_chat_goes_on(
    live_app: LiveApp, llm_server: ScriptedLLMServer
) -> None:
    name = scripted_chat_model(live_app, llm_server)
    words = " ".join(f"word{number}" for number in range(1, 41))
    llm_server.enqueue(SlowStream(Reply(words), chunk_delay=0.5), Reply("Still here"))

    with chat_at(live_app, name) as terminal:
        found = SESSION_UUID.search(terminal.read_until("> "))
        assert found is not None
        session_uuid = found.group(1)
        terminal.type("Count slowly\n")
        terminal.read_until("word1")
        terminal.interrupt()
        assert "[stopped: the reply was cancelled]" in terminal.read_until("> ")
        terminal.type("Are you there?\n")
        assert "Still here\n" in terminal.read_until("> ")
        terminal.type("\x04")  # Ctrl-D: the end of the input
        assert terminal.wait() == 0

    assert "word40" not in terminal.output
    runs = httpx.get(f"{live_app.base_url}/v1/sessions/{session_uuid}/runs", timeout=10)
    assert [run["status"] for run in runs.json()["data"]] == ["cancelled", "succeeded"]
    # Nothing was stored for the stopped reply.
    assert stored(live_app, session_uuid) == [
        ("user", "Count slowly"),
        ("user", "Are you there?"),
        ("assistant", "Still here"),
    ]


def test_chat_reads_piped_lines_and_multi_line_messages(live_app: LiveApp) -> None:
    done = run_cli(
        "--base-url",
        live_app.base_url,
        "chat",
        DEMO,
        stdin="Hello there\n\n!multi\nline one\nline two\n!end\nAnd goodbye\n",
    )

    assert done.code == 0, done.stderr
    # No prompts without a terminal: only the replies (the offline model echoes).
    assert done.stdout == "Hello there\nline one\nline two\nAnd goodbye\n"
    found = SESSION_UUID.search(done.stderr)
    assert found is not None, done.stderr
    assert stored(live_app, found.group(1)) == [
        ("user", "Hello there"),
        ("assistant", "Hello there"),
        ("user", "line one\nline two"),
        ("assistant", "line one\nline two"),
        ("user", "And goodbye"),
        ("assistant", "And goodbye"),
    ]


def test_a_failed_run_is_printed_with_its_error_log_and_the_chat_goes_on(
    live_app: LiveApp,
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    version = httpx.post(
        f"{live_app.base_url}/v1/chat-models/{DEMO}/versions",
        json={"system_prompt": "Hi.", "model": "openai/gone", "api_base": closed},
        timeout=10,
    )
    assert version.status_code == 201, version.text

    done = run_cli(
        "--base-url",
        live_app.base_url,
        "chat",
        DEMO,
        "--version",
        "v2",
        stdin="first\nsecond\nexit\nnot sent\n",
    )

    assert done.code == 0, done.stderr
    failures = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(failures) == 2, done.stderr
    for line in failures:
        assert line.startswith("error: the run failed (connection_error): ")
        assert f"Could not reach the provider at {closed}" in line
    assert done.stdout == ""
    found = SESSION_UUID.search(done.stderr)
    assert found is not None
    assert stored(live_app, found.group(1)) == [("user", "first"), ("user", "second")]


def test_chat_refuses_an_unknown_chat_model_or_session_before_reading(
    live_app: LiveApp,
) -> None:
    unknown = run_cli("--base-url", live_app.base_url, "chat", "nope", stdin="hi\n")
    assert unknown.code == 1
    assert unknown.stderr == "error: No chat model named 'nope'. (field: chat_model)\n"

    missing = "5b0c3f4e-8a56-4f0e-9d61-0a4b1c2d3e4f"
    gone = run_cli(
        "--base-url", live_app.base_url, "chat", DEMO, "--session", missing, stdin="hi\n"
    )
    assert gone.code == 1
    assert f"No session {missing} for chat model '{DEMO}'" in gone.stderr

    mixed = run_cli("chat", DEMO, "--session", missing, "--version", "2", env=cli_env())
    assert mixed.code == 2
    assert "--session keeps its own" in mixed.stderr


def test_run_on_a_terminal_streams_the_reply_and_names_its_session(live_app: LiveApp) -> None:
    with TerminalSession("--base-url", live_app.base_url, "run", DEMO, "Hello there") as terminal:
        assert terminal.wait() == 0
    found = SESSION_UUID.search(terminal.output)
    assert found is not None, terminal.output
    assert terminal.output.startswith("Hello there\n")
    assert f"continue it with --session {found.group(1)}" in terminal.output
    assert stored(live_app, found.group(1)) == [
        ("user", "Hello there"),
        ("assistant", "Hello there"),
    ]

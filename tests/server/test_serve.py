"""`chatmodel serve` for real: a uvicorn process on 127.0.0.1, migrated and seeded on start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from chatmodel_service.models import Base
from tests.factories import WEATHER_FUNCTION
from tests.support.databases import table_names
from tests.support.servers import free_port, serve_process


def test_demo_conversation_with_function_call(served: str) -> None:
    with httpx.Client(base_url=served, timeout=30) as http:
        models = http.get("/v1/chat-models").json()["data"]
        assert [m["name"] for m in models] == ["simple_assistant"]
        session = http.post("/v1/sessions", json={"chat_model": "simple_assistant"}).json()["uuid"]
        http.post(
            f"/v1/sessions/{session}/messages",
            json={"messages": [{"role": "user", "content": "What's the weather in Boston?"}]},
        ).raise_for_status()

        call = http.post(f"/v1/sessions/{session}/run", json={"functions": [WEATHER_FUNCTION]})
        assert call.status_code == 200
        assert call.json()["function_call"]["args"] == {"location": "Boston"}

        http.post(
            f"/v1/sessions/{session}/messages",
            json={"messages": [{"role": "function", "content": "13 degrees celsius"}]},
        ).raise_for_status()
        answer = http.post(f"/v1/sessions/{session}/run").json()
        assert answer["error"] is False
        assert "13 degrees celsius" in answer["content"]
        roles = [m["role"] for m in http.get(f"/v1/sessions/{session}/messages").json()["data"]]
        assert roles == ["user", "assistant", "function", "assistant"]


def test_unreachable_provider_is_an_error_response(served: str) -> None:
    closed_port = free_port()
    with httpx.Client(base_url=served, timeout=30) as http:
        http.post("/v1/chat-models", json={"name": "unreachable"}).raise_for_status()
        http.post(
            "/v1/chat-models/unreachable/versions",
            json={
                "system_prompt": "You are remote.",
                "model": "openai/some-model",
                "api_base": f"http://127.0.0.1:{closed_port}/v1",
                "publish": True,
            },
        ).raise_for_status()
        session = http.post("/v1/sessions", json={"chat_model": "unreachable"}).json()["uuid"]
        http.post(
            f"/v1/sessions/{session}/messages",
            json={"messages": [{"role": "user", "content": "Anyone there?"}]},
        ).raise_for_status()

        response = http.post(f"/v1/sessions/{session}/run")

        assert response.status_code == 200
        body = response.json()
        assert body["error"] is True
        assert body["error_type"] == "connection_error", body["error_log"]
        assert f"127.0.0.1:{closed_port}" in body["error_log"]
        assert "Traceback" not in body["error_log"]
        messages = http.get(f"/v1/sessions/{session}/messages").json()["data"]
        assert [(m["role"], m["content"]) for m in messages] == [("user", "Anyone there?")]


def test_db_upgrade_command(empty_database_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATMODEL_")}
    env["CHATMODEL_DATABASE_URL"] = empty_database_url
    done = subprocess.run(
        [sys.executable, "-m", "chatmodel_service.cli", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "upgraded to head" in done.stdout
    assert set(Base.metadata.tables) <= table_names(empty_database_url)


def test_serve_says_where_the_admin_page_docs_and_database_are(
    tmp_path: Path, database_url: str
) -> None:
    with serve_process(tmp_path, database_url) as (base_url, _):
        banner = (tmp_path / "serve.log").read_text()
        for page in ("/admin", "/docs"):
            assert f"{base_url}{page}" in banner, banner
            assert httpx.get(f"{base_url}{page}", timeout=10).status_code == 200
    assert f"serving on {base_url}" in banner
    shown = database_url.split("@")[-1]  # a PostgreSQL URL's password is never printed
    assert "chatmodel: database   " in banner and shown in banner, banner
    assert "chatmodel: API keys   not required on this loopback address" in banner

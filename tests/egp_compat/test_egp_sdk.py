"""Scale EGP's own SDK (``scale-egp``, each release in a venv of its own) against a real
server with API keys required: the seed 001 example, run as written with only the key, the
endpoint URL and the model changed, on the demo chat model (the offline model, which
echoes the prompt).

1.1.15 is the newest release; 1.1.7 the last one whose ``completions().create()`` takes no
``account_id`` (from 1.1.8 it is a required argument: a change of the SDK's signature that
no server can undo, so the 1.1.15 example passes it).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from chatmodel_service.app import create_app
from chatmodel_service.auth.schemas import KeyCreate, KeyScope
from chatmodel_service.auth.service import create_key
from chatmodel_service.config import Settings
from chatmodel_service.db import Database, create_engine
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.models import DEFAULT_PROJECT_ID
from tests.support.auth import auth_settings
from tests.support.sdks import run_sdk
from tests.support.servers import serve_in_thread

DEMO = "simple_assistant"
PROMPT = "Hello, what can you do?"


@dataclass(frozen=True)
class EGPServer:
    base_url: str
    client_key: str  # what the SDK is given
    admin_key: str  # for reading the usage report

    @property
    def endpoint_url(self) -> str:
        return f"{self.base_url}/egp"

    def env(self) -> dict[str, str]:
        return {"EGP_API_KEY": self.client_key, "EGP_ENDPOINT_URL": self.endpoint_url}

    def usage(self) -> dict[str, Any]:
        response = httpx.get(
            f"{self.base_url}/v1/usage",
            params={"group_by": "key"},
            headers={"x-api-key": self.admin_key},
        )
        assert response.status_code == 200, response.text
        report: dict[str, Any] = response.json()
        return report


async def _key(settings: Settings, scope: KeyScope, name: str) -> str:
    database = Database(create_engine(settings))
    try:
        async with database.transaction() as db:
            created = await create_key(db, DEFAULT_PROJECT_ID, KeyCreate(name=name, scope=scope))
    finally:
        await database.dispose()
    return created.key


@pytest.fixture
def egp_server(database_url: str, gateway: LLMGateway) -> Iterator[EGPServer]:
    """The app with keys required and the demo chat model, and a client and an admin key
    of the default project."""
    settings = auth_settings(database_url, seed_demo=True)
    client_key = asyncio.run(_key(settings, "client", "egp-app"))
    admin_key = asyncio.run(_key(settings, "admin", "ops"))
    with serve_in_thread(create_app(settings, gateway)) as live:
        yield EGPServer(live.base_url, client_key, admin_key)


def _run(sdk: str, code: str, env: dict[str, str]) -> str:
    done = run_sdk(sdk, code, env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _runs_of_key(server: EGPServer, key_name: str) -> dict[str, Any]:
    """The usage report's row of the runs made with that key."""
    report = server.usage()
    rows = [row for row in report["data"] if row["key_name"] == key_name]
    assert len(rows) == 1, report
    row: dict[str, Any] = rows[0]
    return row


# The seed's example, as 001_0d0b435ed6ca60da.txt writes it (key, URL and model changed).
SEED_001_EXAMPLE = """
from scale_egp.sdk.client import EGPClient

API_KEY = "{api_key}"
ENDPOINT_URL = "{endpoint_url}"

client = EGPClient(api_key=API_KEY, endpoint_url=ENDPOINT_URL)

completion = client.completions().create(model="{model}", prompt="Hello, what can you do?")
print(completion)
"""


def test_sdk_1_1_7_runs_the_seed_example_as_written(egp_server: EGPServer) -> None:
    code = SEED_001_EXAMPLE.format(
        api_key=egp_server.client_key, endpoint_url=egp_server.endpoint_url, model=DEMO
    )
    printed = _run("egp-1.1.7", code, {})

    # pydantic 1's repr of the SDK's Completion
    match = re.fullmatch(
        r"completion=CompletionContent\(text='(.*)', finish_reason='stop'\) "
        r"token_usage=TokenUsage\(prompt=(\d+), completion=(\d+), total=(\d+)\)\n",
        printed,
    )
    assert match, printed
    text, prompt, completion, total = match.groups()
    assert text == PROMPT
    assert int(completion) > 0
    assert int(prompt) + int(completion) == int(total)
    row = _runs_of_key(egp_server, "egp-app")
    assert row["runs"] == 1
    assert row["errors"] == 0
    assert row["total_tokens"] == int(total)


SDK_1_1_15 = """
import json
from scale_egp.exceptions import EGPException
from scale_egp.sdk.client import EGPClient

client = EGPClient()  # EGP_API_KEY, EGP_ENDPOINT_URL
print(json.dumps({"account_id": client.account_id}))

completion = client.completions().create(
    model="simple_assistant", prompt="Hello, what can you do?", account_id=client.account_id
)
print(completion.json())

pieces = list(
    client.completions().stream(
        model="simple_assistant", prompt="Stream this, please.", account_id=client.account_id
    )
)
print(json.dumps([piece.dict() for piece in pieces]))

try:
    client.completions().create(model="gpt-4", prompt="Hi", account_id=client.account_id)
except EGPException as exc:
    print(json.dumps({"error": type(exc).__name__, "code": exc.code, "message": exc.message}))
"""


def test_sdk_1_1_15_completion_stream_and_error(egp_server: EGPServer) -> None:
    lines = _run("egp-1.1.15", SDK_1_1_15, egp_server.env()).splitlines()
    account, completion, pieces, error = (json.loads(line) for line in lines)

    # the project is the account (user-info's access_profiles)
    assert account == {"account_id": str(DEFAULT_PROJECT_ID)}

    assert completion["completion"] == {"text": PROMPT, "finish_reason": "stop"}
    usage = completion["token_usage"]
    assert usage["completion"] > 0
    assert usage["total"] == usage["prompt"] + usage["completion"]

    assert "".join(p["completion"]["text"] for p in pieces) == "Stream this, please."
    assert len(pieces) > 2  # the offline model streams word by word
    assert all(p["token_usage"] is None for p in pieces[:-1])
    last = pieces[-1]
    assert last["completion"]["finish_reason"] == "stop"
    assert last["token_usage"]["total"] == (
        last["token_usage"]["prompt"] + last["token_usage"]["completion"]
    )

    assert error["error"] == "ItemDoesNotExist"
    assert error["code"] == 404
    assert "The model 'gpt-4' does not exist" in error["message"]

    row = _runs_of_key(egp_server, "egp-app")
    assert row["runs"] == 2  # the failed call named no chat model: no run
    assert row["errors"] == 0
    assert row["total_tokens"] == usage["total"] + last["token_usage"]["total"]


def test_another_account_is_refused(egp_server: EGPServer) -> None:
    code = """
from scale_egp.exceptions import EGPException
from scale_egp.sdk.client import EGPClient

client = EGPClient(account_id="someone-else")
try:
    client.completions().create(model="simple_assistant", prompt="Hi", account_id="someone-else")
except EGPException as exc:
    print(exc.code, exc.message)
"""
    printed = _run("egp-1.1.15", code, egp_server.env())
    assert printed.startswith("403 This API key has no access to account 'someone-else'")
    assert egp_server.usage()["data"] == []


def test_a_bad_key_is_refused_by_the_constructor(egp_server: EGPServer) -> None:
    code = """
from scale_egp.exceptions import EGPException
from scale_egp.sdk.client import EGPClient

try:
    EGPClient()
except EGPException as exc:
    print(exc.code, exc.message)
"""
    env = egp_server.env() | {"EGP_API_KEY": "cm_0123abcd_" + "x" * 43}
    assert _run("egp-1.1.15", code, env) == "401 The API key cm_0123abcd_… is not known.\n"

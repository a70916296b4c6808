"""Settings the server cannot take, and the limits they set.

A ``CHATMODEL_*`` variable with a value its setting cannot take stops every server command
of the real ``chatmodel`` console script before it starts: one line on stderr naming the
variable, its value and what it may be, exit status 2, no traceback. And a request over a
count limit answers ``invalid_input`` whether it is over the configured limit or over the
built-in cap that limit may be raised to."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests.factories import expect_error, make_chat_model, make_session

CHATMODEL = Path(sys.executable).with_name("chatmodel")  # the venv's console script
SERVER_COMMANDS = [["serve"], ["db", "upgrade"], ["keys", "list"], ["gc", "--dry-run"]]


def run_chatmodel(tmp_path: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """``chatmodel ARGS`` with only these ``CHATMODEL_*`` variables (and a database in
    ``tmp_path`` that a refused command never creates)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATMODEL_")}
    env["CHATMODEL_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'chatmodel.db'}"
    return subprocess.run(
        [str(CHATMODEL), *args],
        env=env | variables,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_refused(done: subprocess.CompletedProcess[str], tmp_path: Path, *lines: str) -> None:
    assert (done.returncode, done.stderr.splitlines()) == (2, list(lines)), done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert not (tmp_path / "chatmodel.db").exists()


@pytest.mark.parametrize("command", SERVER_COMMANDS, ids=" ".join)
def test_a_setting_over_its_cap_stops_every_server_command_with_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    done = run_chatmodel(tmp_path, *command, CHATMODEL_MAX_MESSAGES_PER_ADD="5000")

    assert_refused(
        done,
        tmp_path,
        "chatmodel: CHATMODEL_MAX_MESSAGES_PER_ADD=5000 is invalid: "
        "must be a whole number between 1 and 1000",
    )


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("CHATMODEL_PORT", "eighty", "a whole number"),
        ("CHATMODEL_LLM_TIMEOUT_SECONDS", "0", "a number greater than 0"),
        ("CHATMODEL_RUN_LEASE_SECONDS", "soon", "a number greater than 0 and at most 3600"),
        ("CHATMODEL_RATE_LIMIT_PER_MINUTE", "-1", "a whole number at least 0"),
        ("CHATMODEL_SEED_DEMO", "maybe", "true or false"),
        ("CHATMODEL_LOG_FORMAT", "xml", "one of: auto, json, text"),
        ("CHATMODEL_AUTH", "sometimes", "one of: auto, required, disabled"),
    ],
)
def test_every_kind_of_bad_setting_is_one_line_naming_what_it_may_be(
    tmp_path: Path, variable: str, value: str, allowed: str
) -> None:
    done = run_chatmodel(tmp_path, "serve", **{variable: value})

    assert_refused(done, tmp_path, f"chatmodel: {variable}={value} is invalid: must be {allowed}")


def test_each_bad_setting_gets_its_line(tmp_path: Path) -> None:
    done = run_chatmodel(
        tmp_path, "serve", CHATMODEL_MAX_CONTENT_CHARS="0", CHATMODEL_DB_ECHO="loud"
    )

    assert_refused(
        done,
        tmp_path,
        "chatmodel: CHATMODEL_DB_ECHO=loud is invalid: must be true or false",
        "chatmodel: CHATMODEL_MAX_CONTENT_CHARS=0 is invalid: "
        "must be a whole number between 1 and 1000000",
    )


MANY = [{"role": "user", "content": "again"}] * 1001  # over the largest limit a setting allows


async def test_more_messages_than_any_limit_allows_are_invalid_input(
    client: httpx.AsyncClient,
) -> None:
    await make_chat_model(client, "bot")
    session = await make_session(client, "bot")

    added = await client.post(f"/v1/sessions/{session}/messages", json={"messages": MANY})
    run = await client.post(f"/v1/sessions/{session}/run", json={"messages": MANY})

    assert "1000" in expect_error(added, 422, "invalid_input", "messages")
    assert "1000" in expect_error(run, 422, "invalid_input", "messages")
    assert (await client.get(f"/v1/sessions/{session}/messages")).json()["data"] == []


async def test_more_chat_messages_than_any_limit_allows_are_invalid_input(
    client: httpx.AsyncClient,
) -> None:
    """In OpenAI's shape: a 400 (a 422 elsewhere) with our code."""
    await make_chat_model(client, "bot")

    response = await client.post(
        "/v1/chat/completions",
        json={"model": "bot", "messages": MANY},
        headers={"X-Session-Id": str(uuid.uuid4())},
    )

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_input", "messages"), error

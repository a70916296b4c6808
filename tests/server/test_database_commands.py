"""The commands that work on the database directly (``keys``, ``gc``, ``db``), run as the
real ``chatmodel`` command: the key ids they show are the ones the API takes, ``--json``
prints JSON, each says which database it uses, and none but ``db upgrade`` makes a SQLite
file where there was none."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from chatmodel_service.app import create_app
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.migrate import head_revisions
from tests.client.cli_support import Done, cli_env
from tests.support.auth import auth_settings
from tests.support.servers import LiveApp, serve_in_thread

KEY_FIELDS = {"id", "project", "name", "scope", "prefix", "created_at", "last_used_at"}


def chatmodel(*args: str, database: str | None = None, cwd: Path | None = None) -> Done:
    """``chatmodel ARGS`` as a user runs it, on ``database`` (else no CHATMODEL_DATABASE_URL)."""
    env = cli_env() if database is None else cli_env(CHATMODEL_DATABASE_URL=database)
    done = subprocess.run(
        [sys.executable, "-m", "chatmodel._cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return Done(done.returncode, done.stdout, done.stderr)


def create_key(database: str, name: str, scope: str = "admin") -> str:
    done = chatmodel("keys", "create", "--scope", scope, "--name", name, database=database)
    assert done.code == 0, done.stderr
    return done.stdout.splitlines()[-1]


def listed_keys(database: str) -> list[dict[str, Any]]:
    keys: list[dict[str, Any]] = chatmodel("keys", "list", "--json", database=database).json()[
        "data"
    ]
    return keys


def test_keys_list_shows_the_ids_that_delete_v1_keys_takes(
    database_url: str, gateway: LLMGateway
) -> None:
    ops = create_key(database_url, "ops")
    web = create_key(database_url, "web", "client")

    keys = listed_keys(database_url)

    assert [(k["name"], k["scope"], k["project"]) for k in keys] == [
        ("ops", "admin", "default"),
        ("web", "client", "default"),
    ]
    assert {k["prefix"] for k in keys} == {ops[3:11], web[3:11]}
    assert all(set(k) >= KEY_FIELDS and k["revoked_at"] is None for k in keys)
    human = chatmodel("keys", "list", database=database_url)
    assert human.stdout.split("\n", 1)[0].split() == [
        "ID",
        "NAME",
        "SCOPE",
        "PROJECT",
        "PREFIX",
        "CREATED",
        "REVOKED",
        "LAST",
        "USED",
    ]
    web_row = next(line for line in human.stdout.splitlines() if " web " in line)
    assert web_row.split()[:5] == [keys[1]["id"], "web", "client", "default", f"cm_{web[3:11]}_…"]
    for secret in (ops, web):  # neither the key nor its hash is ever shown
        assert secret not in human.stdout + human.stderr
    assert "hash" not in json.dumps(keys)
    # The same document before the command, as a global option of the client's CLI.
    before = chatmodel("--json", "keys", "list", database=database_url).json()
    assert [k["id"] for k in before["data"]] == [k["id"] for k in keys]

    with serve_in_thread(create_app(auth_settings(database_url), gateway)) as live:
        admin = {"Authorization": f"Bearer {ops}"}
        revoked = httpx.delete(f"{live.base_url}/v1/keys/{keys[1]['id']}", headers=admin)
        assert revoked.status_code == 200, revoked.text
        refused = httpx.get(f"{live.base_url}/v1/chat-models", headers={"x-api-key": web})
        assert refused.status_code == 401
    after = {k["name"]: k["revoked_at"] for k in listed_keys(database_url)}
    assert after["ops"] is None and after["web"] is not None


def test_keys_revoke_by_name_or_id(database_url: str, gateway: LLMGateway) -> None:
    ops = create_key(database_url, "ops")
    web = create_key(database_url, "web", "client")
    web_id = next(k["id"] for k in listed_keys(database_url) if k["name"] == "web")

    revoked = chatmodel("keys", "revoke", "web", database=database_url)
    assert revoked.code == 0, revoked.stderr
    assert revoked.stdout == (
        f"revoked client key 'web' (cm_{web[3:11]}_…, id {web_id}) of project 'default'\n"
    )
    again = chatmodel("keys", "revoke", web_id, "--json", database=database_url)
    document = again.json()
    assert (document["id"], document["name"]) == (web_id, "web")
    assert document["revoked_at"] is not None
    told = chatmodel("keys", "revoke", web_id, database=database_url)
    assert told.code == 0 and "was already revoked, at " in told.stdout
    unknown = chatmodel("keys", "revoke", "nobody", database=database_url)
    assert unknown.code == 1
    assert "has no API key with the id or name 'nobody'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    missing_id = chatmodel("keys", "revoke", str(uuid.uuid4()), database=database_url)
    assert missing_id.code == 1

    with serve_in_thread(create_app(auth_settings(database_url), gateway)) as live:
        with_web = httpx.get(f"{live.base_url}/v1/chat-models", headers={"x-api-key": web})
        with_ops = httpx.get(f"{live.base_url}/v1/chat-models", headers={"x-api-key": ops})
    assert (with_web.status_code, with_ops.status_code) == (401, 200)


def test_gc_prints_json_with_json(live_app: LiveApp, database_url: str) -> None:
    created = httpx.post(
        f"{live_app.base_url}/v1/chat-models", json={"name": "brief", "retention_days": 30}
    )
    assert created.status_code == 201, created.text

    for args in (["gc", "--dry-run", "--json"], ["--json", "gc", "--dry-run"]):
        document = chatmodel(*args, database=database_url).json()
        assert document == {
            "dry_run": True,
            "data": [
                {
                    "project": "default",
                    "chat_model": "brief",
                    "retention_days": 30,
                    "sessions": 0,
                    "messages": 0,
                    "runs": 0,
                    "skipped_held_by_run": 0,
                }
            ],
        }


def test_json_where_a_command_prints_none_is_a_usage_error(tmp_path: Path) -> None:
    refused = chatmodel("--json", "db", "upgrade", cwd=tmp_path)

    assert refused.code == 2
    assert "--json: 'chatmodel db' prints no JSON" in refused.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "command",
    [
        ["keys", "list"],
        ["keys", "revoke", "ops"],
        ["gc"],
        ["db", "current"],
        ["db", "downgrade", "base"],
    ],
    ids=" ".join,
)
def test_a_command_in_a_folder_without_a_database_creates_none(
    tmp_path: Path, command: list[str]
) -> None:
    done = chatmodel(*command, cwd=tmp_path)

    assert done.code == 1
    assert list(tmp_path.iterdir()) == []
    database_line, error = done.stderr.splitlines()
    assert database_line == (
        f"chatmodel: database sqlite+aiosqlite:///./chatmodel.db "
        f"(the file {tmp_path / 'chatmodel.db'})"
    )
    assert error.startswith(f"chatmodel: error: there is no database at {tmp_path}/chatmodel.db")
    assert "(the default: ./chatmodel.db of the current folder)" in error
    assert "--database-url" in error and "CHATMODEL_DATABASE_URL" in error
    assert "'chatmodel db upgrade'" in error
    assert done.stdout == ""


def test_keys_create_in_an_empty_folder_says_it_creates_the_database(tmp_path: Path) -> None:
    created = chatmodel("keys", "create", "--name", "ops", cwd=tmp_path)

    assert created.code == 0, created.stderr
    assert created.stderr.splitlines()[0] == (
        f"chatmodel: database sqlite+aiosqlite:///./chatmodel.db (the file "
        f"{tmp_path / 'chatmodel.db'}): no file there yet, creating it"
    )
    assert created.stdout.splitlines()[-1].startswith("cm_")
    listed = chatmodel("keys", "list", cwd=tmp_path)
    assert listed.code == 0, listed.stderr
    assert "ops" in listed.stdout


def test_a_missing_file_named_by_the_setting_or_the_option_is_not_created(tmp_path: Path) -> None:
    file = tmp_path / "elsewhere" / "chat.db"
    url = f"sqlite+aiosqlite:///{file}"

    from_setting = chatmodel("keys", "list", database=url, cwd=tmp_path)
    from_option = chatmodel("gc", "--database-url", url, cwd=tmp_path)

    assert (from_setting.code, from_option.code) == (1, 1)
    assert "(from CHATMODEL_DATABASE_URL)" in from_setting.stderr
    assert "(given with --database-url)" in from_option.stderr
    assert list(tmp_path.iterdir()) == []


def test_db_upgrade_says_it_creates_the_file_then_the_others_use_it(tmp_path: Path) -> None:
    created = chatmodel("db", "upgrade", cwd=tmp_path)

    assert created.code == 0, created.stderr
    assert created.stderr == (
        f"chatmodel: database sqlite+aiosqlite:///./chatmodel.db (the file "
        f"{tmp_path / 'chatmodel.db'}): no file there yet, creating it\n"
    )
    assert (tmp_path / "chatmodel.db").is_file()
    current = chatmodel("db", "current", cwd=tmp_path)
    assert current.stdout == f"at revision {', '.join(head_revisions())}, the newest\n"
    listed = chatmodel("keys", "list", cwd=tmp_path)
    assert (listed.code, listed.stdout) == (0, "project 'default' has no keys\n")


def test_each_command_names_its_database_without_the_password(database_url: str) -> None:
    shown = make_url(database_url).render_as_string(hide_password=True)
    password = make_url(database_url).password

    for command in (["keys", "list"], ["gc", "--dry-run"], ["db", "current"]):
        done = chatmodel(*command, database=database_url)
        assert done.code == 0, done.stderr
        assert done.stderr.splitlines()[0] == f"chatmodel: database {shown}"
        if password:
            assert str(password) not in done.stderr + done.stdout

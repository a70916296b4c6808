"""The ``chatmodel`` API commands run as real processes against the app under real uvicorn:
``run``, ``versions test``, ``models update``, ``sessions list``, ``usage``, versions and
releases written as the tables print them, what a refused key is told, and ``--verbose``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from chatmodel._cli_parser import build_parser
from chatmodel_service.app import create_app
from chatmodel_service.llm.gateway import LLMGateway
from tests.client.cli_support import Done, cli_env, run_cli
from tests.support.auth import auth_settings
from tests.support.servers import LiveApp, free_port, serve_in_thread

DEMO = "simple_assistant"
NEEDS_KEY = "error: this server needs an API key: pass --api-key KEY or set CHATMODEL_API_KEY\n"


def at(server: LiveApp, *args: str, stdin: str | None = None) -> Done:
    return run_cli("--base-url", server.base_url, *args, stdin=stdin)


def add_version(server: LiveApp, **fields: Any) -> int:
    body = {"system_prompt": "You are terse.", "model": "chatmodel-offline/echo"} | fields
    made = httpx.post(f"{server.base_url}/v1/chat-models/{DEMO}/versions", json=body, timeout=10)
    assert made.status_code == 201, made.text
    number: int = made.json()["number"]
    return number


def closed_version(server: LiveApp) -> tuple[int, str]:
    """A version whose model server is a closed port: (its number, that URL)."""
    closed = f"http://127.0.0.1:{free_port()}/v1"
    return add_version(server, model="openai/gone", api_base=closed), closed


def releases(server: LiveApp) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = at(server, "releases", DEMO, "--json").json()["data"]
    return data


# -- run --------------------------------------------------------------------------------


def test_run_prints_the_reply_and_continues_a_session(live_app: LiveApp) -> None:
    plain = at(live_app, "run", DEMO, "Hello there")
    assert (plain.code, plain.stdout) == (0, "Hello there\n")
    assert plain.stderr == ""  # not a terminal, not --verbose: nothing else is said

    document = at(live_app, "run", DEMO, "Remember me", "--json").json()
    assert (document["content"], document["error"]) == ("Remember me", False)
    session_uuid = document["detail"]["session_uuid"]
    again = at(live_app, "run", DEMO, "-", "--session", session_uuid, stdin="Once more\n")
    assert (again.code, again.stdout) == (0, "Once more\n")

    shown = at(live_app, "sessions", "show", session_uuid, "--json").json()
    contents = [m["content"] for m in shown["messages"]["data"]]
    assert contents == ["Remember me", "Remember me", "Once more", "Once more"]


def test_a_failed_run_exits_1_with_its_error_and_error_log(live_app: LiveApp) -> None:
    number, closed = closed_version(live_app)

    failed = at(live_app, "run", DEMO, "Hi", "--version", f"v{number}")

    assert failed.code == 1
    assert failed.stdout == ""
    assert failed.stderr.startswith("error: the run failed (connection_error): ")
    assert f"Could not reach the provider at {closed}" in failed.stderr
    as_json = at(live_app, "run", DEMO, "Hi", "--version", str(number), "--json")
    assert as_json.code == 1
    document = json.loads(as_json.stdout)
    assert (document["error"], document["error_type"]) == (True, "connection_error")
    assert closed in document["error_log"]


def test_run_on_an_unknown_chat_model_or_version_is_refused(live_app: LiveApp) -> None:
    unknown = at(live_app, "run", "nope", "Hi")
    assert (unknown.code, unknown.stdout) == (1, "")
    assert unknown.stderr == "error: No chat model named 'nope'. (field: chat_model)\n"
    no_version = at(live_app, "run", DEMO, "Hi", "--version", "v9")
    assert no_version.code == 1
    assert "no version 9" in no_version.stderr
    bad = at(live_app, "run", DEMO, "Hi", "--version", "Nine!")  # not a label name either
    assert bad.code == 2
    assert "--version" in bad.stderr


# -- versions test, models update ---------------------------------------------------------


def test_versions_test_answers_once_and_stores_nothing(live_app: LiveApp) -> None:
    tried = at(live_app, "versions", "test", DEMO, "v1", "Try me")
    assert (tried.code, tried.stdout) == (0, "Try me\n")
    document = at(live_app, "versions", "test", DEMO, "1", "Try me", "--json").json()
    assert document["detail"]["session_uuid"] is None
    assert at(live_app, "sessions", "list", "--json").json()["data"] == []

    number, closed = closed_version(live_app)
    failed = at(live_app, "versions", "test", DEMO, f"v{number}", "Try me")
    assert failed.code == 1
    assert failed.stderr.startswith("error: the run failed (connection_error): ")
    assert closed in failed.stderr
    missing = at(live_app, "versions", "test", DEMO, "v9", "Try me")
    assert missing.code == 1
    assert "no version 9" in missing.stderr


def test_models_update_changes_only_what_it_is_given(live_app: LiveApp) -> None:
    changed = at(live_app, "models", "update", DEMO, "--retention-days", "30")
    assert changed.code == 0, changed.stderr
    assert "retention:      30 days" in changed.stdout
    before = at(live_app, "models", "show", DEMO, "--json").json()
    assert before["retention_days"] == 30

    again = at(
        live_app, "models", "update", DEMO, "--retention-days", "none", "--description", "Demo"
    )
    assert again.code == 0, again.stderr
    after = at(live_app, "models", "show", DEMO, "--json").json()
    assert (after["retention_days"], after["description"]) == (None, "Demo")

    nothing = at(live_app, "models", "update", DEMO)
    assert nothing.code == 2
    assert "--description or --retention-days" in nothing.stderr
    too_many = at(live_app, "models", "update", DEMO, "--retention-days", "99999999")
    assert too_many.code == 1
    assert "retention_days" in too_many.stderr


# -- sessions list, usage -----------------------------------------------------------------


def test_sessions_list_filters_as_the_page_does(live_app: LiveApp) -> None:
    ana = at(live_app, "run", DEMO, "Ana asks about tea", "--user-id", "ana", "--json").json()
    bob = at(live_app, "run", DEMO, "Bob asks about coffee", "--user-id", "bob", "--json").json()
    number, _ = closed_version(live_app)
    assert at(live_app, "run", DEMO, "This one fails", "--version", str(number)).code == 1

    table = at(live_app, "sessions", "list", DEMO).stdout.splitlines()
    assert table[0].split()[:4] == ["SESSION", "CHAT", "MODEL", "MESSAGES"]
    assert "FIRST MESSAGE" in table[0] and "USER" in table[0] and "FAILED" in table[0]
    assert len(table) == 4
    ana_row = next(line for line in table if line.startswith(ana["detail"]["session_uuid"]))
    assert " ana " in ana_row and ana_row.endswith("Ana asks about tea")

    def listed(*filters: str) -> list[str]:
        page = at(live_app, "sessions", "list", *filters, "--json").json()
        return [s["uuid"] for s in page["data"]]

    assert listed("--user-id", "bob") == [bob["detail"]["session_uuid"]]
    assert listed(DEMO, "--search", "TEA") == [ana["detail"]["session_uuid"]]
    assert len(listed("--has-errors")) == 1
    assert len(listed("--no-errors")) == 2
    assert len(listed(DEMO, "--version", f"v{number}")) == 1
    assert listed("--since", "2999-01-01") == []
    assert len(listed("--until", "2999-01-01")) == 3
    first = at(live_app, "sessions", "list", "--limit", "2").stdout.splitlines()
    assert len(first) == 4 and first[-1].startswith("... more sessions: add --cursor ")
    cursor = first[-1].rsplit(" ", 1)[1]
    assert len(listed("--limit", "2", "--cursor", cursor)) == 1
    bad_date = at(live_app, "sessions", "list", "--since", "yesterday")
    assert bad_date.code == 2
    assert "--since" in bad_date.stderr


def test_usage_prints_a_row_per_group_and_a_total(live_app: LiveApp) -> None:
    for text in ("one", "two"):
        assert at(live_app, "run", DEMO, text).code == 0

    by_version = at(live_app, "usage", "--chat-model", DEMO).stdout.splitlines()
    assert by_version[0].startswith(f"usage of {DEMO} from ")
    assert by_version[1].split() == ["CHAT", "MODEL", "VERSION", "RUNS", "ERRORS", "TOKENS", "COST"]
    assert by_version[2].split()[:4] == [DEMO, "v1", "2", "0"]
    assert by_version[3].split()[:3] == ["total", "2", "0"]
    by_day = at(live_app, "usage", "--group-by", "day", "--json").json()
    assert by_day["group_by"] == "day"
    assert [group["runs"] for group in by_day["data"]] == [2]
    nothing = at(live_app, "usage", "--since", "2000-01-01", "--until", "2000-01-02", "--json")
    assert nothing.json()["total"]["runs"] == 0
    wrong = at(live_app, "usage", "--group-by", "month")
    assert wrong.code == 1
    assert "group_by" in wrong.stderr


# -- versions and releases as the tables print them ---------------------------------------


def test_versions_may_be_written_as_the_tables_print_them(live_app: LiveApp) -> None:
    add_version(live_app, system_prompt="You are terse.\nAnswer in one word.\n")

    assert (
        at(live_app, "diff", DEMO, "v1", "v2").stdout == at(live_app, "diff", DEMO, "1", "2").stdout
    )
    assert "+Answer in one word." in at(live_app, "diff", DEMO, "v1", "V2").stdout
    assert at(live_app, "versions", "show", DEMO, "v2", "--json").json()["number"] == 2
    assert at(live_app, "stats", DEMO, "v1", "--json").json()["version"] == 1
    published = at(live_app, "publish", DEMO, "v2")
    assert published.code == 0, published.stderr
    assert releases(live_app)[0]["versions"] == {"2": 100}
    split = at(live_app, "publish", DEMO, "--weights", "v1=50,v2=50")
    assert split.code == 0, split.stderr
    assert releases(live_app)[0]["versions"] == {"1": 50, "2": 50}
    wrong = at(live_app, "diff", DEMO, "version1", "v2")
    assert wrong.code == 2
    assert "not a version number (3 or v3): 'version1'" in wrong.stderr


def test_expect_release_takes_the_number_the_table_shows(live_app: LiveApp) -> None:
    add_version(live_app)
    assert [r["release"] for r in releases(live_app)] == [1]

    by_number = at(live_app, "publish", DEMO, "v2", "--expect-release", "1")
    assert by_number.code == 0, by_number.stderr
    by_hash = at(live_app, "publish", DEMO, "v1", "--expect-release", "#2", "--note", "back")
    assert by_hash.code == 0, by_hash.stderr
    assert [r["release"] for r in releases(live_app)] == [3, 2, 1]

    stale = at(live_app, "publish", DEMO, "v2", "--expect-release", "2")
    assert stale.code == 1
    assert "is not current: release 3" in stale.stderr
    assert "(field: expected_release)" in stale.stderr
    no_such = at(live_app, "rollback", DEMO, "--expect-release", "#9")
    assert no_such.code == 1
    assert no_such.stderr == (
        f"error: --expect-release 9: chat model '{DEMO}' has no release #9 (its newest is #3)\n"
    )
    by_id = at(live_app, "rollback", DEMO, "--expect-release", releases(live_app)[0]["id"])
    assert by_id.code == 0, by_id.stderr
    assert [r["kind"] for r in releases(live_app)][:1] == ["rollback"]
    garbled = at(live_app, "publish", DEMO, "v1", "--expect-release", "latest")
    assert garbled.code == 2
    assert "--expect-release" in garbled.stderr


def test_a_split_of_mismatched_variables_is_refused_unless_allowed(live_app: LiveApp) -> None:
    planned = add_version(live_app, system_prompt="Plan: {{plan}}", variables=["plan"])

    refused = at(live_app, "publish", DEMO, "--weights", f"v1=50,v{planned}=50")
    assert refused.code == 1
    assert "(field: weights)" in refused.stderr
    assert f"version {planned} declares {{plan}}" in refused.stderr
    assert [r["release"] for r in releases(live_app)] == [1]

    alone = at(live_app, "publish", DEMO, "v1", "--allow-variable-mismatch")
    assert alone.code == 2
    assert "--allow-variable-mismatch goes with --weights" in alone.stderr

    allowed = at(
        live_app, "publish", DEMO, "--weights", f"v1=50,v{planned}=50", "--allow-variable-mismatch"
    )
    assert allowed.code == 0, allowed.stderr
    warnings = [line for line in allowed.stdout.splitlines() if line.startswith("warning")]
    assert len(warnings) == 1
    assert warnings[0].startswith("warning (variables_mismatch): ")
    assert [r["release"] for r in releases(live_app)] == [2, 1]


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield child
                yield from _subparsers(child)


def test_every_positional_argument_has_help() -> None:
    missing = [
        f"{command.prog} {action.metavar}"
        for command in _subparsers(build_parser())
        for action in command._actions
        if not action.option_strings
        and not isinstance(action, argparse._SubParsersAction)
        and not action.help
    ]
    assert missing == []
    shown = run_cli("diff", "--help")
    assert "the version before (3 or v3)" in shown.stdout
    listed = run_cli("--help").stdout
    for command in ("chat", "run", "sessions", "usage"):
        assert f"\n    {command} " in listed


# -- keys and servers ----------------------------------------------------------------------


@dataclass
class KeyedServer:
    live: LiveApp
    admin_key: str
    client_key: str


def _new_key(database_url: str, scope: str, name: str) -> str:
    made = run_cli(
        *("keys", "create", "--project", "default", "--scope", scope, "--name", name),
        env=cli_env(CHATMODEL_DATABASE_URL=database_url),
    )
    assert made.code == 0, made.stderr
    return made.stdout.strip().splitlines()[-1]


@pytest.fixture
def keyed_server(database_url: str, gateway: LLMGateway) -> Iterator[KeyedServer]:
    """The app with API keys required (demo chat model seeded), an admin and a client key."""
    admin_key = _new_key(database_url, "admin", "ops")
    client_key = _new_key(database_url, "client", "app")
    application = create_app(auth_settings(database_url, seed_demo=True), gateway)
    with serve_in_thread(application) as live:
        yield KeyedServer(live, admin_key, client_key)


def test_a_refused_key_says_which_option_to_use(keyed_server: KeyedServer) -> None:
    url = keyed_server.live.base_url
    no_key = run_cli("--base-url", url, "models", "list")
    assert (no_key.code, no_key.stderr) == (1, NEEDS_KEY)
    chat = run_cli("--base-url", url, "chat", DEMO, stdin="Hello\n")
    assert (chat.code, chat.stderr) == (1, NEEDS_KEY)

    unknown_key = "cm_0123abcd_" + "x" * 43
    wrong = run_cli("--base-url", url, "--api-key", unknown_key, "models", "list")
    assert wrong.code == 1
    assert "The API key cm_0123abcd_… is not known." in wrong.stderr
    assert "--api-key KEY or CHATMODEL_API_KEY" in wrong.stderr
    assert unknown_key not in wrong.stderr

    with_env = cli_env(CHATMODEL_API_KEY=keyed_server.client_key)
    scoped = run_cli("--base-url", url, "sessions", "list", env=with_env)
    assert scoped.code == 1
    assert "needs a key with the admin scope" in scoped.stderr
    # A client key may talk to a chat model.
    talked = run_cli("--base-url", url, "run", DEMO, "Hello", env=with_env)
    assert (talked.code, talked.stdout) == (0, "Hello\n")
    admin = cli_env(CHATMODEL_API_KEY=keyed_server.admin_key)
    assert run_cli("--base-url", url, "sessions", "list", "--json", env=admin).code == 0


def test_verbose_names_the_server_and_the_key_never_its_secret(
    keyed_server: KeyedServer,
) -> None:
    url = keyed_server.live.base_url
    key = keyed_server.admin_key
    from_env = run_cli(
        "models",
        "list",
        "--verbose",
        env=cli_env(CHATMODEL_BASE_URL=url, CHATMODEL_API_KEY=key),
    )
    assert from_env.code == 0, from_env.stderr
    assert from_env.stderr.splitlines() == [
        f"chatmodel: server {url} (from CHATMODEL_BASE_URL)",
        f"chatmodel: API key {key[:12]}… (from CHATMODEL_API_KEY)",
    ]
    assert key[12:] not in from_env.stderr

    from_options = run_cli("--verbose", "--base-url", url, "--api-key", key, "models", "list")
    assert from_options.stderr.splitlines()[:2] == [
        f"chatmodel: server {url} (from --base-url)",
        f"chatmodel: API key {key[:12]}… (from --api-key)",
    ]
    closed = f"http://127.0.0.1:{free_port()}"
    defaulted = run_cli("--verbose", "releases", DEMO, env=cli_env())
    assert defaulted.stderr.splitlines()[:2] == [
        "chatmodel: server http://127.0.0.1:8000 (the default; set --base-url or "
        "CHATMODEL_BASE_URL)",
        "chatmodel: no API key (set --api-key or CHATMODEL_API_KEY if the server needs one)",
    ]
    # Without --verbose, only a --base-url that overrides the configured server is said.
    overridden = run_cli(
        "--base-url",
        url,
        "--api-key",
        key,
        "models",
        "list",
        "--json",
        env=cli_env(CHATMODEL_BASE_URL=closed),
    )
    assert overridden.code == 0, overridden.stderr
    assert overridden.stderr == (
        f"chatmodel: server {url} (from --base-url, not CHATMODEL_BASE_URL's {closed})\n"
    )
    assert [m["name"] for m in json.loads(overridden.stdout)["data"]] == [DEMO]

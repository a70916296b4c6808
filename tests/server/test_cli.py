"""The ``chatmodel`` command line, run as a real process against a real server."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx

from chatmodel_service.releases.assignment import pick_version
from tests.client.cli_support import Done, cli_env, run_cli
from tests.support.databases import table_names
from tests.support.servers import LiveApp, free_port

DEMO = "simple_assistant"
V2_PROMPT = "You are a helpful assistant.\nAnswer in one sentence.\n"


def at(server: LiveApp, *args: str) -> Done:
    return run_cli("--base-url", server.base_url, *args)


def create_v2(server: LiveApp, tmp_path: Path) -> dict[str, Any]:
    prompt = tmp_path / "prompt.md"
    prompt.write_text(V2_PROMPT)
    version: dict[str, Any] = at(
        server,
        "versions",
        "create",
        DEMO,
        "--prompt-file",
        str(prompt),
        "--model",
        "chatmodel-offline/echo",
        "--param",
        "temperature=0.2",
        "--param",
        'stop=["x"]',
        "--param",
        "max_tokens=50",
        "--memo",
        "shorter answers",
        "--json",
    ).json()
    return version


def releases(server: LiveApp) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = at(server, "releases", DEMO, "--json").json()["data"]
    return data


def new_session_version(server: LiveApp, session_uuid: uuid.UUID) -> int:
    response = httpx.post(
        f"{server.base_url}/v1/sessions",
        json={"chat_model": DEMO, "session_uuid": str(session_uuid)},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    version: int = response.json()["version"]
    return version


def uuids_landing_on(weights: dict[int, int]) -> dict[int, uuid.UUID]:
    """One session uuid per version of the split, chosen with the server's own rule."""
    found: dict[int, uuid.UUID] = {}
    while len(found) < len(weights):
        candidate = uuid.uuid4()
        found.setdefault(pick_version(weights, str(candidate)), candidate)
    return found


def test_versions_create_reads_the_prompt_file_and_parses_params(
    live_app: LiveApp, tmp_path: Path
) -> None:
    version = create_v2(live_app, tmp_path)

    assert version["number"] == 2
    assert version["system_prompt"] == V2_PROMPT
    assert version["params"] == {"temperature": 0.2, "stop": ["x"], "max_tokens": 50}
    assert version["memo"] == "shorter answers"
    # A value that is not JSON is sent as the string given.
    inline = at(
        live_app,
        "versions",
        "create",
        DEMO,
        "--prompt",
        "Be terse.",
        "--model",
        "chatmodel-offline/echo",
        "--param",
        "stop=END",
        "--json",
    ).json()
    assert (inline["number"], inline["params"]) == (3, {"stop": "END"})
    listed = at(live_app, "versions", "list", DEMO).stdout.splitlines()
    assert [line.split()[0] for line in listed] == ["VERSION", "v1", "v2", "v3"]


def test_publish_split_and_rollback_cycle(live_app: LiveApp, tmp_path: Path) -> None:
    create_v2(live_app, tmp_path)

    first = at(live_app, "publish", DEMO, "1", "--note", "baseline", "--by", "ana")
    assert first.code == 0, first.stderr
    assert "v1 100%" in first.stdout
    current = releases(live_app)[0]
    assert (current["kind"], current["versions"], current["published_by"]) == (
        "publish",
        {"1": 100},
        "ana",
    )

    split = at(
        live_app,
        "publish",
        DEMO,
        "--weights",
        "1=50,2=50",
        "--expect-release",
        current["id"],
        "--note",
        "a/b",
    )
    assert split.code == 0, split.stderr
    current = releases(live_app)[0]
    assert (current["kind"], current["versions"], current["previous_versions"]) == (
        "split",
        {"1": 50, "2": 50},
        {"1": 100},
    )
    for expected, session_uuid in uuids_landing_on({1: 50, 2: 50}).items():
        assert new_session_version(live_app, session_uuid) == expected

    back = at(live_app, "rollback", DEMO, "--by", "ana")
    assert back.code == 0, back.stderr
    history = releases(live_app)
    assert [r["kind"] for r in history[:3]] == ["rollback", "split", "publish"]
    assert history[0]["versions"] == {"1": 100}
    assert new_session_version(live_app, uuids_landing_on({1: 50, 2: 50})[2]) == 1


def test_stale_expected_release_is_refused_with_the_servers_detail(
    live_app: LiveApp, tmp_path: Path
) -> None:
    create_v2(live_app, tmp_path)
    seen = releases(live_app)[0]["id"]
    assert at(live_app, "publish", DEMO, "2").code == 0

    stale = at(live_app, "publish", DEMO, "--expect-release", seen, "1")

    assert stale.code == 1
    assert stale.stderr.startswith("error: ")
    assert f"Release {seen} is not current" in stale.stderr
    assert "(field: expected_release)" in stale.stderr
    assert releases(live_app)[0]["versions"] == {"2": 100}


def test_weights_not_summing_to_100_name_the_field(live_app: LiveApp, tmp_path: Path) -> None:
    create_v2(live_app, tmp_path)
    before = releases(live_app)

    refused = at(live_app, "publish", DEMO, "--weights", "1=60,2=30")

    assert refused.code == 1
    assert "weights" in refused.stderr
    assert "100" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert releases(live_app) == before


def test_diff_shows_the_changed_prompt_lines_and_fields(live_app: LiveApp, tmp_path: Path) -> None:
    create_v2(live_app, tmp_path)

    shown = at(live_app, "diff", DEMO, "1", "2")

    assert shown.code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "+Answer in one sentence." in lines
    assert " You are a helpful assistant." in lines
    assert any(line.split()[:3] == ["params.temperature", "-", "0.2"] for line in lines)
    assert "\033[" not in shown.stdout  # not a terminal: no colors
    document = at(live_app, "diff", DEMO, "1", "2", "--json").json()
    assert "+Answer in one sentence." in document["system_prompt_diff"]


def test_json_output_is_one_document(live_app: LiveApp) -> None:
    models = at(live_app, "--json", "models", "list").json()
    assert [m["name"] for m in models["data"]] == [DEMO]
    session_uuid = uuid.uuid4()
    new_session_version(live_app, session_uuid)
    httpx.post(
        f"{live_app.base_url}/v1/sessions/{session_uuid}/messages",
        json={"messages": [{"role": "user", "content": "Hi there"}]},
        timeout=10,
    ).raise_for_status()

    shown = at(live_app, "sessions", "show", str(session_uuid), "--json").json()

    assert shown["session"]["uuid"] == str(session_uuid)
    assert [m["content"] for m in shown["messages"]["data"]] == ["Hi there"]
    human = at(live_app, "sessions", "show", str(session_uuid))
    assert "Hi there" in human.stdout


def test_tables_are_aligned(live_app: LiveApp) -> None:
    listed = at(live_app, "models", "list")
    header, row = listed.stdout.splitlines()
    assert header.split() == ["NAME", "LATEST", "DEPLOYED", "DESCRIPTION"]
    assert row.startswith(DEMO)
    assert header.index("LATEST") == row.index("1  ")
    assert header.index("DEPLOYED") == row.index("v1 100%")


def test_unknown_chat_model_is_an_error_with_the_field(live_app: LiveApp) -> None:
    missing = at(live_app, "models", "show", "nope")
    assert missing.code == 1
    assert missing.stderr == "error: No chat model named 'nope'. (field: chat_model)\n"


def test_unreachable_server_is_a_readable_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    done = run_cli("releases", DEMO, env=cli_env(CHATMODEL_BASE_URL=url))

    assert done.code == 1
    assert done.stderr.startswith(f"error: Could not reach the chatmodel server at {url}/")
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_base_url_option_wins_over_the_environment(live_app: LiveApp) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    env = cli_env(CHATMODEL_BASE_URL=closed)
    done = run_cli("models", "list", "--base-url", live_app.base_url, "--json", env=env)
    assert done.json()["data"][0]["name"] == DEMO


def test_a_reader_that_goes_away_ends_the_command_quietly(live_app: LiveApp) -> None:
    """`chatmodel models list | head -0`: the pipe is closed before anything is written."""
    process = subprocess.Popen(
        [sys.executable, "-m", "chatmodel._cli", "--base-url", live_app.base_url, "models", "list"],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before the command prints
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=30) == 141, stderr
    assert stderr == ""


def test_usage_errors_exit_2_without_a_request() -> None:
    closed = cli_env(CHATMODEL_BASE_URL=f"http://127.0.0.1:{free_port()}")
    both = run_cli("publish", DEMO, "1", "--weights", "1=50,2=50", env=closed)
    assert both.code == 2
    assert "not both" in both.stderr
    malformed = run_cli("publish", DEMO, "--weights", "one=50", env=closed)
    assert malformed.code == 2
    assert "--weights" in malformed.stderr
    no_file = run_cli(
        "versions",
        "create",
        DEMO,
        "--prompt-file",
        "/nonexistent/prompt.md",
        "--model",
        "m",
        env=closed,
    )
    assert no_file.code == 2
    assert "/nonexistent/prompt.md" in no_file.stderr


def test_help_and_import_do_not_load_the_server() -> None:
    script = (
        "import sys, contextlib, io\n"
        "import chatmodel._cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    chatmodel._cli.main(['--help'])\n"
        "banned = {'litellm', 'fastapi', 'sqlalchemy', 'starlette', 'uvicorn',\n"
        "          'chatmodel_service'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & banned))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=30
    )
    assert done.stdout.strip() == "[]"
    shown = run_cli("--help")
    assert shown.code == 0
    for command in ("serve", "db", "models", "versions", "publish", "rollback", "releases"):
        assert command in shown.stdout


def test_server_commands_without_the_server_extra_say_what_to_install() -> None:
    script = (
        "import sys\n"
        "sys.modules['sqlalchemy'] = None  # as if chatmodel[server] were not installed\n"
        "from chatmodel._cli import main\n"
        "sys.exit(main(['serve']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 2
    assert "install chatmodel[server]" in done.stderr
    assert "Traceback" not in done.stderr


def test_db_upgrade_is_delegated_to_the_server_package(empty_database_url: str) -> None:
    done = run_cli("db", "upgrade", env=cli_env(CHATMODEL_DATABASE_URL=empty_database_url))

    assert done.code == 0, done.stderr
    assert "upgraded to head" in done.stdout
    assert "alembic_version" in table_names(empty_database_url)

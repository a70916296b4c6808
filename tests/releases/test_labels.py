"""Release labels: ``production`` (what "deploy" means), ``staging`` and admin-defined ones,
each with a publish/split/rollback history and ``expected_release`` check of its own, and
named on every route that picks a version: sessions, configs, the OpenAI-compatible and
Responses routes (``model="name@staging"``), the client and the command line."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chatmodel import ChatModel
from chatmodel_service.migrate import upgrade
from chatmodel_service.models import DEFAULT_PROJECT_ID
from chatmodel_service.releases.assignment import pick_version
from tests.client.cli_support import run_cli
from tests.factories import add_version, expect_error, make_chat_model
from tests.support.databases import run_async, run_sync_on
from tests.support.servers import LiveApp

DEMO = "simple_assistant"  # seeded on the live app: version 1, published to production


async def publish(
    client: httpx.AsyncClient, name: str, status: int = 200, **body: Any
) -> dict[str, Any]:
    response = await client.post(f"/v1/chat-models/{name}/publish", json=body)
    assert response.status_code == status, response.text
    release: dict[str, Any] = response.json()
    return release


async def roll_back(
    client: httpx.AsyncClient, name: str, status: int = 200, **body: Any
) -> dict[str, Any]:
    response = await client.post(f"/v1/chat-models/{name}/rollback", json=body)
    assert response.status_code == status, response.text
    release: dict[str, Any] = response.json()
    return release


async def history(client: httpx.AsyncClient, name: str, **params: str) -> list[tuple[int, str]]:
    """(release number, label) of the releases listed, newest first."""
    response = await client.get(f"/v1/chat-models/{name}/releases", params=params)
    assert response.status_code == 200, response.text
    return [(r["release"], r["label"]) for r in response.json()["data"]]


async def labels_of(client: httpx.AsyncClient, name: str) -> dict[str, dict[str, int]]:
    response = await client.get(f"/v1/chat-models/{name}")
    assert response.status_code == 200, response.text
    labels: dict[str, dict[str, int]] = response.json()["labels"]
    assert response.json()["published_versions"] == labels["production"]
    return labels


async def three_versions(client: httpx.AsyncClient, name: str = "bot") -> None:
    """A chat model with versions 1, 2 and 3 and nothing published."""
    await make_chat_model(client, name, system_prompt="first", publish=False)
    await add_version(client, name, system_prompt="second")
    await add_version(client, name, system_prompt="third")


async def session_version(client: httpx.AsyncClient, name: str, **fields: Any) -> int:
    response = await client.post("/v1/sessions", json={"chat_model": name, **fields})
    assert response.status_code == 201, response.text
    version: int = response.json()["version"]
    return version


# --- publishing to a label ----------------------------------------------------------------


async def test_publishing_to_staging_leaves_production_unchanged(
    client: httpx.AsyncClient,
) -> None:
    await three_versions(client)
    assert await labels_of(client, "bot") == {"production": {}, "staging": {}}

    live = await publish(client, "bot", version=1)
    staged = await publish(client, "bot", version=2, label="staging", note="try it")

    assert (live["label"], staged["label"]) == ("production", "staging")
    # Release numbers count per chat model, across labels.
    assert (live["release"], staged["release"]) == (1, 2)
    assert staged["previous_versions"] == {}  # staging's first release replaced nothing
    assert await labels_of(client, "bot") == {"production": {"1": 100}, "staging": {"2": 100}}
    assert await session_version(client, "bot") == 1
    assert await session_version(client, "bot", version="staging") == 2
    assert await history(client, "bot") == [(1, "production")]
    assert await history(client, "bot", label="staging") == [(2, "staging")]
    assert await history(client, "bot", label="all") == [(2, "staging"), (1, "production")]


async def test_each_label_has_its_own_history_and_rollback(client: httpx.AsyncClient) -> None:
    await three_versions(client)
    await publish(client, "bot", version=1)  # 1 production
    await publish(client, "bot", version=1, label="staging")  # 2 staging
    await publish(client, "bot", version=2, label="staging")  # 3 staging
    await publish(client, "bot", version=3)  # 4 production
    await publish(client, "bot", weights={"2": 50, "3": 50}, label="qa")  # 5 qa (admin-made)

    back = await roll_back(client, "bot", label="staging", by="carol")

    assert (back["release"], back["label"], back["kind"]) == (6, "staging", "rollback")
    assert (back["versions"], back["previous_versions"]) == ({"1": 100}, {"2": 100})
    assert back["note"] == "Rolled back to release 2."
    assert await labels_of(client, "bot") == {
        "production": {"3": 100},
        "qa": {"2": 50, "3": 50},
        "staging": {"1": 100},
    }
    assert await history(client, "bot", label="staging") == [
        (6, "staging"),
        (3, "staging"),
        (2, "staging"),
    ]
    # In the combined listing, each release replaced the one before it on its own label.
    response = await client.get("/v1/chat-models/bot/releases", params={"label": "all"})
    replaced = {r["release"]: r["previous_versions"] for r in response.json()["data"]}
    assert replaced == {
        6: {"2": 100},
        5: {},
        4: {"1": 100},
        3: {"1": 100},
        2: {},
        1: {},
    }

    # Production's rollback goes to production's previous release, not staging's.
    prod_back = await roll_back(client, "bot")
    assert (prod_back["label"], prod_back["versions"]) == ("production", {"1": 100})
    assert (await labels_of(client, "bot"))["staging"] == {"1": 100}

    # A label with a single release has nothing to roll back to; other labels do not count.
    expect_error(
        await client.post("/v1/chat-models/bot/rollback", json={"label": "qa"}),
        409,
        "nothing_to_roll_back",
        None,
    )
    expect_error(
        await client.post("/v1/chat-models/bot/rollback", json={"label": "never"}),
        409,
        "nothing_to_roll_back",
        None,
    )


async def test_deploy_is_production(client: httpx.AsyncClient) -> None:
    await three_versions(client)
    release = await publish(client, "bot", version=2, label="deploy")
    assert release["label"] == "production"
    await publish(client, "bot", version=3, label="staging")
    assert await history(client, "bot", label="deploy") == [(1, "production")]
    for spelling in ("deploy", "production"):
        assert await session_version(client, "bot", version=spelling) == 2
    assert await session_version(client, "bot") == 2  # the default is still "deploy"
    rolled = await roll_back(client, "bot", label="deploy", status=409)
    assert rolled["error"] == "nothing_to_roll_back"


# --- the optimistic lock, per label -------------------------------------------------------


async def test_stale_expected_release_on_a_label_is_a_409(client: httpx.AsyncClient) -> None:
    await three_versions(client)
    live = await publish(client, "bot", version=1)
    empty = await client.post(
        "/v1/chat-models/bot/publish",
        json={"version": 2, "label": "staging", "expected_release": live["id"]},
    )
    assert "nothing is published to 'staging' yet" in expect_error(
        empty, 409, "stale_release", "expected_release"
    )

    staged = await publish(client, "bot", version=2, label="staging")
    # Another label's release made since does not make staging's stale ...
    moved = await publish(client, "bot", version=3, expected_release=live["id"])
    again = await publish(client, "bot", version=3, label="staging", expected_release=staged["id"])
    # ... but staging's own does.
    for path, body in (
        ("publish", {"version": 1, "label": "staging", "expected_release": staged["id"]}),
        ("rollback", {"label": "staging", "expected_release": staged["id"]}),
        # Production's current release is not staging's.
        ("publish", {"version": 1, "label": "staging", "expected_release": moved["id"]}),
    ):
        stale = await client.post(f"/v1/chat-models/bot/{path}", json=body)
        detail = expect_error(stale, 409, "stale_release", "expected_release")
        assert f"release {again['release']} ({again['id']})" in detail

    assert await labels_of(client, "bot") == {"production": {"3": 100}, "staging": {"3": 100}}
    back = await roll_back(client, "bot", label="staging", expected_release=again["id"])
    assert back["versions"] == {"2": 100}


# --- naming labels -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "label",
    ["latest", "all", "7", "Staging", "has space", "x" * 41, "-dash", "", "staging!"],
)
async def test_a_label_must_be_a_label_name(client: httpx.AsyncClient, label: str) -> None:
    await three_versions(client)
    published = await client.post(
        "/v1/chat-models/bot/publish", json={"version": 1, "label": label}
    )
    expect_error(published, 422, "validation_error", "label")
    rolled = await client.post("/v1/chat-models/bot/rollback", json={"label": label})
    expect_error(rolled, 422, "validation_error", "label")
    if label not in ("all", ""):
        listed = await client.get("/v1/chat-models/bot/releases", params={"label": label})
        expect_error(listed, 422, "validation_error", "label")
    assert await history(client, "bot", label="all") == []


async def test_sessions_and_configs_name_labels(client: httpx.AsyncClient) -> None:
    await three_versions(client)
    await publish(client, "bot", version=1)

    empty = await client.post("/v1/sessions", json={"chat_model": "bot", "version": "staging"})
    assert "staging" in expect_error(empty, 422, "nothing_published", "version")
    unknown = await client.post("/v1/sessions", json={"chat_model": "bot", "version": "nope"})
    assert "no label 'nope'" in expect_error(unknown, 404, "version_not_found", "version")
    for bad in ("Staging", "all!", "latest "):
        refused = await client.post("/v1/sessions", json={"chat_model": "bot", "version": bad})
        expect_error(refused, 422, "validation_error", "version")

    await publish(client, "bot", version=2, label="staging")
    await publish(client, "bot", version=3, label="canary")
    assert await session_version(client, "bot", version="staging") == 2
    assert await session_version(client, "bot", version="canary") == 3
    assert await session_version(client, "bot", version="latest") == 3
    assert await session_version(client, "bot", version=2) == 2

    staging = await client.get("/v1/chat-models/bot/config", params={"version": "staging"})
    assert staging.status_code == 200, staging.text
    assert staging.json()["version"] == 2
    deploy = await client.get("/v1/chat-models/bot/config", params={"version": "deploy"})
    assert deploy.json()["version"] == 1
    assert staging.headers["etag"] != deploy.headers["etag"]
    expect_error(
        await client.get("/v1/chat-models/bot/config", params={"version": "nope"}),
        404,
        "version_not_found",
        "version",
    )

    # A split on a label is sticky per user, as production's is.
    await publish(client, "bot", weights={"1": 50, "3": 50}, label="staging")
    for user in ("ana", "ben", "cy", "dee"):
        got = await session_version(client, "bot", version="staging", metadata={"user_id": user})
        assert got == pick_version({1: 50, 3: 50}, user)


def test_migration_keeps_existing_history_as_production(empty_database_url: str) -> None:
    url = empty_database_url
    upgrade(url, "0018")
    chat_model_id, version_id = uuid.uuid4(), uuid.uuid4()
    release_ids = [uuid.uuid4(), uuid.uuid4()]
    uuid_column = sa.Uuid()

    def seed(connection: Connection) -> None:
        now = sa.func.now()
        chat_model = sa.table(
            "chat_model",
            *(sa.column(c, uuid_column) for c in ("id", "project_id")),
            *(sa.column(c) for c in ("name", "description", "archived", "created_at")),
            sa.column("updated_at"),
        )
        version = sa.table(
            "chat_model_version",
            *(sa.column(c, uuid_column) for c in ("id", "chat_model_id")),
            *(sa.column(c) for c in ("number", "system_prompt", "model", "memo", "created_at")),
            sa.column("params", sa.JSON()),
        )
        release = sa.table(
            "chat_model_release",
            *(sa.column(c, uuid_column) for c in ("id", "chat_model_id")),
            *(sa.column(c) for c in ("seq", "kind", "note", "created_at")),
        )
        weights = sa.table(
            "release_version",
            *(sa.column(c, uuid_column) for c in ("release_id", "version_id")),
            sa.column("weight"),
        )
        connection.execute(
            sa.insert(chat_model).values(
                id=chat_model_id,
                project_id=DEFAULT_PROJECT_ID,
                name="old",
                description="",
                archived=False,
                created_at=now,
                updated_at=now,
            )
        )
        connection.execute(
            sa.insert(version).values(
                id=version_id,
                chat_model_id=chat_model_id,
                number=1,
                system_prompt="p",
                model="chatmodel-offline/echo",
                memo="",
                created_at=now,
                params={},
            )
        )
        for seq, release_id in enumerate(release_ids, start=1):
            connection.execute(
                sa.insert(release).values(
                    id=release_id,
                    chat_model_id=chat_model_id,
                    seq=seq,
                    kind="publish",
                    note="",
                    created_at=now,
                )
            )
            connection.execute(
                sa.insert(weights).values(release_id=release_id, version_id=version_id, weight=100)
            )
        connection.commit()

    run_async(lambda: run_sync_on(url, seed))
    upgrade(url, "0020")

    def releases(connection: Connection) -> list[tuple[int, str]]:
        rows = connection.execute(
            sa.text("SELECT seq, label FROM chat_model_release ORDER BY seq")
        ).all()
        return [(int(seq), str(label)) for seq, label in rows]

    assert run_async(lambda: run_sync_on(url, releases)) == [(1, "production"), (2, "production")]


# --- the OpenAI-compatible and Responses routes, the client, the command line ---------------


@pytest.fixture
def staged(live_app: LiveApp) -> Iterator[LiveApp]:
    """The live app with the demo's version 2 published to staging (1 stays production)."""
    base = live_app.base_url
    made = httpx.post(
        f"{base}/v1/chat-models/{DEMO}/versions",
        json={"system_prompt": "You are staged.", "model": "chatmodel-offline/echo"},
    )
    assert made.status_code == 201, made.text
    staged = httpx.post(
        f"{base}/v1/chat-models/{DEMO}/publish", json={"version": 2, "label": "staging"}
    )
    assert staged.status_code == 200, staged.text
    yield live_app


@pytest.fixture
def sdk(staged: LiveApp) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{staged.base_url}/v1", api_key="sk-not-checked", max_retries=0
    ) as client:
        yield client


def served_version(response: Any) -> int:
    """The version in the ``chatmodel`` extension object of a completion or response."""
    extra = response.model_extra or {}
    version: int = extra["chatmodel"]["version"]
    return version


def test_chat_completions_name_a_label_after_at(sdk: openai.OpenAI, staged: LiveApp) -> None:
    messages: Any = [{"role": "user", "content": "Hello"}]
    served = {
        model: served_version(sdk.chat.completions.create(model=model, messages=messages))
        for model in (DEMO, f"{DEMO}@staging", f"{DEMO}@production", f"{DEMO}@deploy")
    }
    assert served == {
        DEMO: 1,
        f"{DEMO}@staging": 2,
        f"{DEMO}@production": 1,
        f"{DEMO}@deploy": 1,
    }
    assert served_version(sdk.chat.completions.create(model=f"{DEMO}@1", messages=messages)) == 1
    latest = sdk.chat.completions.create(model=f"{DEMO}@latest", messages=messages)
    assert served_version(latest) == 2

    # A session made through the route is pinned to the label's version.
    session = str(uuid.uuid4())
    completion = sdk.chat.completions.create(
        model=f"{DEMO}@staging", messages=messages, extra_headers={"X-Session-Id": session}
    )
    assert completion.choices[0].message.content == "Hello"
    stored = httpx.get(f"{staged.base_url}/v1/sessions/{session}")
    assert stored.json()["version"] == 2

    new_session = str(uuid.uuid4())
    with pytest.raises(openai.NotFoundError) as unknown:
        sdk.chat.completions.create(model=f"{DEMO}@nope", messages=messages)
    assert (unknown.value.code, unknown.value.param) == ("version_not_found", "model")
    with pytest.raises(openai.NotFoundError) as unknown_in_session:
        sdk.chat.completions.create(
            model=f"{DEMO}@nope", messages=messages, extra_headers={"X-Session-Id": new_session}
        )
    assert unknown_in_session.value.param == "model"
    assert httpx.get(f"{staged.base_url}/v1/sessions/{new_session}").status_code == 404
    with pytest.raises(openai.APIStatusError) as garbled:
        sdk.chat.completions.create(model=f"{DEMO}@Not A Label", messages=messages)
    assert garbled.value.status_code in (400, 422)
    assert garbled.value.param == "model"
    with pytest.raises(openai.NotFoundError) as no_model:
        sdk.chat.completions.create(model="nobody@staging", messages=messages)
    assert no_model.value.param == "model"


def test_responses_name_a_label_after_at(sdk: openai.OpenAI) -> None:
    assert served_version(sdk.responses.create(model=DEMO, input="Hi")) == 1
    staged = sdk.responses.create(model=f"{DEMO}@staging", input="Hi")
    assert served_version(staged) == 2
    assert staged.output_text == "Hi"
    unstored = sdk.responses.create(model=f"{DEMO}@staging", input="Hi", store=False)
    assert served_version(unstored) == 2
    assert served_version(sdk.responses.create(model=f"{DEMO}@1", input="Hi")) == 1

    with pytest.raises(openai.NotFoundError) as unknown:
        sdk.responses.create(model=f"{DEMO}@nope", input="Hi")
    assert (unknown.value.code, unknown.value.param) == ("version_not_found", "model")
    with pytest.raises(openai.APIStatusError) as garbled:
        sdk.responses.create(model=f"{DEMO}@BAD", input="Hi")
    assert garbled.value.status_code in (400, 422)
    assert garbled.value.param == "model"


def test_client_chat_model_on_a_label(staged: LiveApp) -> None:
    staging = ChatModel(DEMO, version="staging", base_url=staged.base_url)
    assert staging.get_config().system_prompt == "You are staged."
    staging.add_messages([{"role": "user", "content": "Hello"}])
    reply = staging.run()
    assert (reply.error, reply.content) == (False, "Hello"), reply
    assert reply.detail is not None and reply.detail.version == 2

    production = ChatModel(DEMO, version="production", base_url=staged.base_url)
    production.add_messages([{"role": "user", "content": "Hello"}])
    production_reply = production.run()
    assert production_reply.detail is not None and production_reply.detail.version == 1


def test_cli_publishes_lists_and_rolls_back_a_label(staged: LiveApp) -> None:
    base = ("--base-url", staged.base_url)
    published = run_cli(*base, "publish", DEMO, "v1", "--label", "staging", "--json").json()
    assert (published["label"], published["versions"]) == ("staging", {"1": 100})
    shown = run_cli(*base, "publish", DEMO, "v2", "--label", "staging")
    assert shown.code == 0, shown.stderr
    assert f"of {DEMO} on staging:" in shown.stdout

    listed = run_cli(*base, "releases", DEMO, "--label", "staging", "--json").json()
    assert [(r["label"], r["versions"]) for r in listed["data"]] == [
        ("staging", {"2": 100}),
        ("staging", {"1": 100}),
        ("staging", {"2": 100}),
    ]
    production = run_cli(*base, "releases", DEMO, "--json").json()
    assert {r["label"] for r in production["data"]} == {"production"}
    table = run_cli(*base, "releases", DEMO, "--label", "all")
    assert table.code == 0, table.stderr
    assert "LABEL" in table.stdout and "staging" in table.stdout

    newest = listed["data"][0]["release"]
    stale = run_cli(
        *base, "rollback", DEMO, "--label", "staging", "--expect-release", str(newest - 1)
    )
    assert stale.code == 1 and "on 'staging'; reload" in stale.stderr
    back = run_cli(
        *base, "rollback", DEMO, "--label", "staging", "--expect-release", str(newest), "--json"
    ).json()
    assert (back["label"], back["versions"]) == ("staging", {"1": 100})

    ran = run_cli(*base, "run", DEMO, "Hello", "--version", "staging", "--json").json()
    assert ran["detail"]["version"] == 1
    unknown = run_cli(*base, "run", DEMO, "Hello", "--version", "nine")
    assert unknown.code == 1 and "no label 'nine'" in unknown.stderr
    refused = run_cli(*base, "publish", DEMO, "v1", "--label", "Not-A-Label")
    assert refused.code == 2 and "not a label name" in refused.stderr

"""Registering webhook endpoints: the secret is shown once, URLs and event types are
checked (naming the field), only admins of the project see its endpoints."""

from __future__ import annotations

import base64
import uuid

import httpx
import pytest

from tests.factories import expect_error
from tests.support.auth import AuthWorld, keyed

HOOK = {"url": "https://hooks.example.com/chatmodel", "event_types": ["run.completed"]}


async def test_the_secret_is_shown_once_and_never_again(client: httpx.AsyncClient) -> None:
    made = await client.post("/v1/webhooks", json=HOOK | {"description": "billing"})
    assert made.status_code == 201, made.text
    created = made.json()
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) >= 24
    assert (created["url"], created["event_types"], created["description"]) == (
        HOOK["url"],
        ["run.completed"],
        "billing",
    )
    shown = await client.get(f"/v1/webhooks/{created['id']}")
    listed = await client.get("/v1/webhooks")
    for answer in (shown, listed):
        assert answer.status_code == 200
        assert secret not in answer.text and "secret" not in answer.text
    assert shown.json() == {k: v for k, v in created.items() if k != "secret"}
    assert [hook["id"] for hook in listed.json()["data"]] == [created["id"]]

    another = (await client.post("/v1/webhooks", json=HOOK)).json()
    assert another["secret"] != secret  # a secret of its own

    deleted = await client.delete(f"/v1/webhooks/{created['id']}")
    assert deleted.status_code == 204
    gone = await client.get(f"/v1/webhooks/{created['id']}")
    expect_error(gone, 404, "webhook_not_found", "webhook_id")
    expect_error(
        await client.delete(f"/v1/webhooks/{created['id']}"), 404, "webhook_not_found", "webhook_id"
    )
    assert [h["id"] for h in (await client.get("/v1/webhooks")).json()["data"]] == [another["id"]]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/in",  # not http(s)
        "hooks.example.com/in",  # no scheme
        "https://user:secret@hooks.example.com/in",  # credentials in the URL
        "https://hooks.example.com/in#part",  # a fragment
        "https:///in",  # no host
        "https://hooks.example.com:99999/in",  # no such port
        "http://localhost:8080/in",  # loopback by name
        "http://10.1.2.3/in",  # private
        "http://169.254.169.254/latest/meta-data",  # link-local (cloud metadata)
        "http://[::1]/in",  # IPv6 loopback
        "http://[::ffff:192.168.0.1]/in",  # private, IPv4-mapped
        "http://0.0.0.0/in",  # unspecified
    ],
)
async def test_urls_that_cannot_be_webhooks_are_refused_naming_url(
    client: httpx.AsyncClient, url: str
) -> None:
    refused = await client.post("/v1/webhooks", json=HOOK | {"url": url})
    assert refused.status_code in (400, 422), refused.text
    assert refused.json()["field"] == "url", refused.text
    assert (await client.get("/v1/webhooks")).json()["data"] == []


async def test_the_allow_list_admits_a_local_address(client: httpx.AsyncClient) -> None:
    """These tests' settings allow 127.0.0.1 (and only that)."""
    made = await client.post("/v1/webhooks", json=HOOK | {"url": "http://127.0.0.1:9/in"})
    assert made.status_code == 201, made.text
    other = await client.post("/v1/webhooks", json=HOOK | {"url": "http://127.0.0.2:9/in"})
    expect_error(other, 422, "invalid_input", "url")


@pytest.mark.parametrize(
    "event_types", [["run.exploded"], [], ["run.completed", "response.done"], "run.completed"]
)
async def test_unknown_event_types_are_refused_naming_the_field(
    client: httpx.AsyncClient, event_types: object
) -> None:
    refused = await client.post("/v1/webhooks", json=HOOK | {"event_types": event_types})
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"].startswith("event_types"), refused.text


async def test_event_types_are_kept_once_each(client: httpx.AsyncClient) -> None:
    wanted = ["response.completed", "run.failed", "run.failed"]
    made = await client.post("/v1/webhooks", json=HOOK | {"event_types": wanted})
    assert made.json()["event_types"] == ["run.failed", "response.completed"]


async def test_webhooks_are_admin_work_of_the_callers_project(world: AuthWorld) -> None:
    admin_a, admin_b = keyed(world.admin_a), keyed(world.admin_b)
    made = await world.client.post("/v1/webhooks", json=HOOK, headers=admin_a)
    assert made.status_code == 201, made.text
    hook = made.json()["id"]

    for path in ("/v1/webhooks", f"/v1/webhooks/{hook}", f"/v1/webhooks/{hook}/deliveries"):
        refused = await world.client.get(path, headers=keyed(world.client_a))
        expect_error(refused, 403, "forbidden", None)
    made_by_client = await world.client.post(
        "/v1/webhooks", json=HOOK, headers=keyed(world.client_a)
    )
    expect_error(made_by_client, 403, "forbidden", None)

    assert (await world.client.get("/v1/webhooks", headers=admin_b)).json()["data"] == []
    for method, path in (
        ("GET", f"/v1/webhooks/{hook}"),
        ("GET", f"/v1/webhooks/{hook}/deliveries"),
        ("DELETE", f"/v1/webhooks/{hook}"),
        ("POST", f"/v1/webhooks/{hook}/deliveries/{uuid.uuid4()}/redeliver"),
    ):
        hidden = await world.client.request(method, path, headers=admin_b)
        expect_error(hidden, 404, "webhook_not_found", "webhook_id")
    still = await world.client.get(f"/v1/webhooks/{hook}", headers=admin_a)
    assert still.status_code == 200

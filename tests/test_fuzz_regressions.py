"""Requests tests/test_fuzz.py found answered with a 500 or an off-shape error, each pinned
down as the answer a caller should get instead."""

from __future__ import annotations

import httpx


async def test_project_with_a_key_name_no_key_may_have_is_a_422(client: httpx.AsyncClient) -> None:
    # Was a 500: the name passed ProjectCreate and failed KeyCreate inside the service.
    response = await client.post("/v1/projects", json={"name": "team", "admin_key_name": "a b"})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "admin_key_name"
    assert (await client.get("/v1/projects")).json()["data"][0]["name"] != "team"

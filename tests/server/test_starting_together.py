"""Servers that start at the same moment on one database (`serve --workers N`, several
machines rolled out together): each starts, and what start-up writes is written once."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import httpx

from chatmodel_service.app import create_app
from chatmodel_service.config import Settings
from chatmodel_service.llm.gateway import LLMGateway


async def test_servers_starting_at_once_seed_the_demo_once(
    database_url: str, gateway: LLMGateway
) -> None:
    settings = Settings(database_url=database_url, seed_demo=True, llm_timeout_seconds=5)
    apps = [create_app(settings, gateway) for _ in range(4)]
    async with AsyncExitStack() as started:
        # Every start-up at once: on PostgreSQL each reads an empty database before any
        # has committed its demo model, so all but one find the name taken.
        await asyncio.gather(
            *(started.enter_async_context(app.router.lifespan_context(app)) for app in apps)
        )
        for app in apps:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                models = (await client.get("/v1/chat-models")).json()["data"]
                assert [m["name"] for m in models] == ["simple_assistant"]
                versions = await client.get("/v1/chat-models/simple_assistant/versions")
                assert [v["number"] for v in versions.json()["data"]] == [1]

"""Client test helpers: a clean configuration per test, and ways to reach a server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

import chatmodel
from tests.support.servers import LiveApp, free_port

ASGI_BASE_URL = "http://chatmodel.test"


@pytest.fixture(autouse=True)
def clean_configuration(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No configure() values and no CHATMODEL_* client variables leak between tests."""
    monkeypatch.delenv("CHATMODEL_BASE_URL", raising=False)
    monkeypatch.delenv("CHATMODEL_API_KEY", raising=False)
    chatmodel.configure()
    yield
    chatmodel.configure()


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
async def live_admin(live_app: LiveApp) -> AsyncIterator[httpx.AsyncClient]:
    """Plain HTTP to the live app, for factories and for checking what was stored."""
    async with httpx.AsyncClient(base_url=live_app.base_url, timeout=30) as http:
        yield http

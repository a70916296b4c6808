"""The official ``openai`` SDK (the dev extra's release) pointed at the live server."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.support.servers import LiveApp


@pytest.fixture
def sdk(live_app: LiveApp) -> Iterator[openai.OpenAI]:
    """A sync client with only ``base_url`` and ``api_key`` set (and no retries, so a
    test sees every answer as it came)."""
    with openai.OpenAI(
        base_url=f"{live_app.base_url}/v1", api_key="sk-not-checked", max_retries=0
    ) as client:
        yield client

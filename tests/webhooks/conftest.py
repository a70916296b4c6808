"""Webhook tests: the app allows webhooks to 127.0.0.1 (where the receivers listen) and
retries quickly; a receiver per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatmodel_service.config import Settings
from tests.webhooks.receiver import Receiver

QUICK_RETRIES = [0.2, 0.2]  # three attempts in about half a second


def webhook_settings(database_url: str, **overrides: object) -> Settings:
    fields: dict[str, object] = {
        "database_url": database_url,
        "seed_demo": False,
        "llm_timeout_seconds": 5,
        "webhook_allowed_hosts": ["127.0.0.1"],
        "webhook_retry_schedule": QUICK_RETRIES,
    }
    return Settings.model_validate(fields | overrides)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return webhook_settings(database_url)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.stop()

"""Where a ChatModel's server URL, API key and timeout come from.

Each setting is resolved once, when a ``ChatModel`` is created, first match wins:

1. the constructor argument (``ChatModel(..., base_url=..., api_key=..., timeout=...)``);
2. the last ``chatmodel.configure(...)`` call;
3. the environment: ``CHATMODEL_BASE_URL``, ``CHATMODEL_API_KEY``;
4. the default: ``http://127.0.0.1:8000``, no key, and :data:`DEFAULT_TIMEOUT`.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import httpx

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
# Connecting should be quick; a model may think for minutes before it answers.
DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=10.0)
BASE_URL_ENV = "CHATMODEL_BASE_URL"
API_KEY_ENV = "CHATMODEL_API_KEY"

TimeoutTypes = float | httpx.Timeout


@dataclass(frozen=True)
class ClientSettings:
    """The resolved settings of one ChatModel."""

    base_url: str
    api_key: str | None
    timeout: httpx.Timeout

    def url(self, path: str) -> str:
        return self.base_url + path

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers


@dataclass(frozen=True)
class _Configured:
    base_url: str | None = None
    api_key: str | None = None
    timeout: TimeoutTypes | None = None


class _ProcessConfiguration:
    """The values given to :func:`configure`; the one piece of process-wide state."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = _Configured()

    def replace(self, values: _Configured) -> None:
        with self._lock:
            self._values = values

    def current(self) -> _Configured:
        with self._lock:
            return self._values


_configuration = _ProcessConfiguration()


def configure(
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout: TimeoutTypes | None = None,
) -> None:
    """Set process-wide defaults for ChatModels created afterwards.

    Each call replaces the previous one: a setting left out (``None``) falls back to the
    environment, then to the default. ``configure()`` with no arguments clears everything.
    """
    if base_url is not None:
        _check_base_url(base_url)
    _configuration.replace(_Configured(base_url=base_url, api_key=api_key, timeout=timeout))


def _check_base_url(base_url: str) -> str:
    url = httpx.URL(base_url)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL!r}")
    return base_url.rstrip("/")


def _from_env(name: str) -> str | None:
    return os.environ.get(name) or None


def _as_timeout(value: TimeoutTypes) -> httpx.Timeout:
    return value if isinstance(value, httpx.Timeout) else httpx.Timeout(value)


def resolve_settings(
    base_url: str | None, api_key: str | None, timeout: TimeoutTypes | None
) -> ClientSettings:
    """Apply the order in the module docstring to the constructor's arguments."""
    configured = _configuration.current()
    chosen_url = base_url or configured.base_url or _from_env(BASE_URL_ENV) or DEFAULT_BASE_URL
    chosen_timeout = timeout if timeout is not None else configured.timeout
    return ClientSettings(
        base_url=_check_base_url(chosen_url),
        api_key=api_key or configured.api_key or _from_env(API_KEY_ENV),
        timeout=DEFAULT_TIMEOUT if chosen_timeout is None else _as_timeout(chosen_timeout),
    )

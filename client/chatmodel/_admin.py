"""A small typed wrapper over the admin REST API, for the ``chatmodel`` command line.

Every call returns the server's JSON document as it came (a ``dict``), so ``--json`` can
print it unchanged. Errors are the client's exceptions: :class:`APIConnectionError` when
nothing came back, an :class:`APIError` subclass named after the server's ``error`` code
(``detail`` and ``field`` as the server sent them) otherwise. Nothing is retried: publish
and rollback are not idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from chatmodel import _protocol as protocol
from chatmodel._config import ClientSettings
from chatmodel._errors import api_error, connection_error, invalid_response

JsonObject = dict[str, Any]


def _segment(value: str | int) -> str:
    return quote(str(value), safe="")


class AdminClient:
    """One connection to a chatmodel server; use as a context manager."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self._http = httpx.Client()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._http.close()

    def _send(self, request: protocol.Request) -> JsonObject:
        args = request.send_args(self.settings)
        try:
            response = self._http.request(**args)
        except httpx.RequestError as exc:
            raise connection_error(exc, args["url"]) from exc
        if response.is_error:
            raise api_error(response)
        try:
            body = response.json()
        except ValueError:
            raise invalid_response(response, "not JSON") from None
        if not isinstance(body, dict):
            raise invalid_response(response, "not a JSON object")
        return body

    def _get(self, path: str, params: Mapping[str, str | int] | None = None) -> JsonObject:
        query = {key: str(value) for key, value in (params or {}).items()}
        return self._send(protocol.Request("GET", path, params=query))

    def _post(self, path: str, payload: Mapping[str, Any]) -> JsonObject:
        return self._send(protocol.json_request("POST", path, dict(payload)))

    def _patch(self, path: str, payload: Mapping[str, Any]) -> JsonObject:
        return self._send(protocol.json_request("PATCH", path, dict(payload)))

    @staticmethod
    def _model_path(name: str, *rest: str | int) -> str:
        return "/".join(["/v1/chat-models", _segment(name), *(_segment(part) for part in rest)])

    # -- chat models and versions -------------------------------------------------------

    def list_chat_models(self) -> JsonObject:
        """``{data: [chat model]}``."""
        return self._get("/v1/chat-models")

    def get_chat_model(self, name: str) -> JsonObject:
        return self._get(self._model_path(name))

    def create_chat_model(self, name: str, description: str) -> JsonObject:
        return self._post("/v1/chat-models", {"name": name, "description": description})

    def update_chat_model(self, name: str, changes: Mapping[str, Any]) -> JsonObject:
        """``changes``: ``description`` and/or ``retention_days`` (``None``: keep forever);
        a field left out keeps its value. Returns the chat model."""
        return self._patch(self._model_path(name), changes)

    def create_version(self, name: str, version: Mapping[str, Any]) -> JsonObject:
        """``version`` is the VersionCreate body: system_prompt, model, params, ..."""
        return self._post(self._model_path(name, "versions"), version)

    def list_versions(self, name: str) -> JsonObject:
        """``{data: [version]}``, oldest first."""
        return self._get(self._model_path(name, "versions"))

    def get_version(self, name: str, number: int) -> JsonObject:
        return self._get(self._model_path(name, "versions", number))

    def version_stats(self, name: str, number: int) -> JsonObject:
        return self._get(self._model_path(name, "versions", number, "stats"))

    def trial_version(self, name: str, number: int, trial: Mapping[str, Any]) -> JsonObject:
        """One model call on the version, storing nothing: ``trial`` is the
        VersionTrialRequest body (``message`` or ``messages``, ``variables``). Returns an
        LLMResponse document, ``error: true`` when the model call failed."""
        return self._post(self._model_path(name, "versions", number, "test"), trial)

    def diff(self, name: str, from_number: int, to_number: int) -> JsonObject:
        """``{from, to, system_prompt_diff: [lines], changes: [{field, from, to}]}``."""
        return self._get(self._model_path(name, "diff"), {"from": from_number, "to": to_number})

    # -- releases -----------------------------------------------------------------------

    def publish(self, name: str, change: Mapping[str, Any]) -> JsonObject:
        """``change``: ``version`` or ``weights``, and optionally ``expected_release``,
        ``note``, ``by``. Returns the new release."""
        return self._post(self._model_path(name, "publish"), change)

    def roll_back(self, name: str, change: Mapping[str, Any]) -> JsonObject:
        return self._post(self._model_path(name, "rollback"), change)

    def list_releases(self, name: str, label: str | None = None) -> JsonObject:
        """``{data: [release]}``, newest first: the ``label``'s (default production; "all":
        every label's)."""
        params = {"label": label} if label is not None else None
        return self._get(self._model_path(name, "releases"), params)

    # -- sessions -----------------------------------------------------------------------

    def list_sessions(self, filters: Mapping[str, str | int]) -> JsonObject:
        """``{data: [session summary], next_cursor}``, newest first; ``filters`` are the
        query parameters (``chat_model``, ``version``, ``user_id``, ``created_after``, ...)."""
        return self._get("/v1/sessions", filters)

    def create_session(self, session: Mapping[str, Any]) -> JsonObject:
        """``session`` is the SessionCreate body (``chat_model``, ``version``, ...); a client
        key may make one too. Returns the session, with the version it was pinned to."""
        return self._post("/v1/sessions", session)

    def get_session(self, session_uuid: str) -> JsonObject:
        return self._get(f"/v1/sessions/{_segment(session_uuid)}")

    def list_messages(self, session_uuid: str, limit: int) -> JsonObject:
        """``{data: [message], has_more, next_after}``, oldest first."""
        return self._get(f"/v1/sessions/{_segment(session_uuid)}/messages", {"limit": limit})

    # -- usage --------------------------------------------------------------------------

    def usage(self, filters: Mapping[str, str | int]) -> JsonObject:
        """``{chat_model, from, to, group_by, data: [group], total}``; ``filters`` are the
        query parameters (``chat_model``, ``from``, ``to``, ``group_by``)."""
        return self._get("/v1/usage", filters)

"""Test runs: one model call on a saved version, or on an unsaved draft, with the caller's
messages.

Nothing is stored: no version, no session, no messages, no run record. Both kinds go
through ``_call_once``, which builds the call with the same ``version_call`` as a
session's run (system prompt rendered with the given variables, the version's parameters
and default functions/tools under the request's) after checking the variables as strictly
as at session creation. A draft is first checked as creating it would be
(``checked_version``), its errors named under ``version.``.
"""

from __future__ import annotations

import uuid

from chatmodel_service.chat_models.repository import ChatModelRepository
from chatmodel_service.chat_models.service import (
    checked_version,
    require_chat_model,
    resolve_version,
)
from chatmodel_service.chat_models.templates import check_values
from chatmodel_service.config import Settings
from chatmodel_service.db import Database
from chatmodel_service.errors import InvalidInput
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.llm.types import LLMOutcome
from chatmodel_service.runs.call import CallSettings, version_call
from chatmodel_service.runs.outcomes import outcome_response, response_detail
from chatmodel_service.runs.schemas import DraftTrialRequest, LLMResponse, VersionTrialRequest
from chatmodel_service.sessions.messages import PendingCalls, link_results, message_in_to_openai
from chatmodel_service.sessions.schemas import MessageIn

DRAFT = "the draft"  # what the error messages call an unsaved version


def trial_conversation(body: VersionTrialRequest) -> list[MessageIn]:
    """``messages``, or ``message`` as one user message; a function or tool result without
    ``name`` / ``tool_call_id`` is linked to the call before it, as when posted to a session
    (422 naming the message when nothing is waiting)."""
    if body.messages is None:
        return [MessageIn(role="user", content=body.message)]
    linked = link_results(list(enumerate(body.messages)), PendingCalls())
    return [message for _, message in linked]


async def trial_run(
    database: Database,
    gateway: LLMGateway,
    settings: Settings,
    project_id: uuid.UUID,
    name: str,
    number: int,
    body: VersionTrialRequest,
) -> LLMResponse:
    """Call the model once on version ``number`` of ``name``; store nothing. Upstream
    failures come back as data (``error: true``), as for a session's run."""
    async with database.transaction() as db:
        repo = ChatModelRepository(db)
        chat_model = await require_chat_model(repo, project_id, name)
        version = await resolve_version(repo, chat_model, number)
    outcome = await _call_once(gateway, settings, version, body, version.number)
    return outcome_response(outcome, response_detail(chat_model, version, outcome.model))


async def draft_trial_run(
    database: Database,
    gateway: LLMGateway,
    settings: Settings,
    project_id: uuid.UUID,
    name: str,
    body: DraftTrialRequest,
) -> LLMResponse:
    """Call the model once on the unsaved version ``body.version`` of ``name`` (which must
    exist: the draft is of its project); store nothing. ``detail`` is null: no version
    answered."""
    async with database.transaction(write=False) as db:
        await require_chat_model(ChatModelRepository(db), project_id, name)
    if body.version.publish:
        raise InvalidInput(
            "A draft is not stored, so it cannot be published; create the version to publish it.",
            field="version.publish",
        )
    try:
        draft = checked_version(body.version, gateway.check_model)
    except InvalidInput as error:
        field = f"version.{error.field}" if error.field else "version"
        raise InvalidInput(error.detail, field=field) from None
    outcome = await _call_once(gateway, settings, draft, body, DRAFT)
    return outcome_response(outcome, None)


async def _call_once(
    gateway: LLMGateway,
    settings: Settings,
    version: CallSettings,
    body: VersionTrialRequest,
    label: int | str,
) -> LLMOutcome:
    """The one model call of a test run: variables checked, system prompt first."""
    variables = check_values(version.variables, body.variables, version=label)
    conversation = [message_in_to_openai(m) for m in trial_conversation(body)]
    return await gateway.complete(version_call(version, variables, conversation, body, settings))

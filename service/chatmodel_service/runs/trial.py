"""Version test runs: one model call on a chosen version with the caller's messages.

Nothing is stored: no session, no messages, no run record. The call is built by the same
``version_call`` as a session's run (system prompt rendered with the given variables,
the version's parameters and default functions/tools under the request's), and the
variables are checked as strictly as at session creation.
"""

from __future__ import annotations

import uuid

from chatmodel_service.chat_models.repository import ChatModelRepository
from chatmodel_service.chat_models.service import require_chat_model, resolve_version
from chatmodel_service.chat_models.templates import check_values
from chatmodel_service.config import Settings
from chatmodel_service.db import Database
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.runs.call import version_call
from chatmodel_service.runs.outcomes import outcome_response, response_detail
from chatmodel_service.runs.schemas import LLMResponse, VersionTrialRequest
from chatmodel_service.sessions.messages import PendingCalls, link_results, message_in_to_openai
from chatmodel_service.sessions.schemas import MessageIn


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
    variables = check_values(version.variables, body.variables, version=version.number)
    conversation = [message_in_to_openai(m) for m in trial_conversation(body)]
    outcome = await gateway.complete(version_call(version, variables, conversation, body, settings))
    return outcome_response(outcome, response_detail(chat_model, version, outcome.model))

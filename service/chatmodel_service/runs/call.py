"""Building a run's model call from a chat model version and the request's options. No I/O.

The version's system prompt (rendered with the variables) comes first, then the
conversation; the version's parameters apply under the request's, and the request's
functions/tools, when it names any, replace the version's. A session's messages are added
afterwards, as many as fit the model (``prompt_fit.py``).
"""

from __future__ import annotations

from typing import Any, Protocol

from chatmodel_service.chat_models.templates import render_system_prompt
from chatmodel_service.config import Settings
from chatmodel_service.llm.types import LLMCall
from chatmodel_service.runs.schemas import RunOptions
from chatmodel_service.sessions.repository import LoadedSession


class CallSettings(Protocol):
    """What a call needs of a version: a stored ``ChatModelVersion``, or an unsaved
    draft's ``CheckedVersion``."""

    @property
    def system_prompt(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def api_base(self) -> str | None: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def functions(self) -> list[dict[str, Any]] | None: ...
    @property
    def tools(self) -> list[dict[str, Any]] | None: ...
    @property
    def variables(self) -> list[str] | None: ...


def build_call(loaded: LoadedSession, body: RunOptions, settings: Settings) -> LLMCall:
    """The version's system prompt (rendered with the session's variables) and the
    options; the session's messages are added as they fit (``prompt_fit.py``)."""
    return version_call(loaded.version, loaded.session.variables, [], body, settings)


def version_call(
    version: CallSettings,
    variables: dict[str, str] | None,
    conversation: list[dict[str, Any]],
    body: RunOptions,
    settings: Settings,
) -> LLMCall:
    """One call of ``version`` on ``conversation`` (OpenAI-format messages): its system
    prompt rendered with ``variables`` first, its parameters under the request's."""
    system_prompt = render_system_prompt(version.system_prompt, version.variables, variables)
    messages = list(conversation)
    if system_prompt:
        messages.insert(0, {"role": "system", "content": system_prompt})
    params: dict[str, Any] = dict(version.params)
    if body.params is not None:
        params |= body.params.model_dump(exclude_none=True)
    timeout = min(
        float(params.pop("timeout", settings.llm_timeout_seconds)), settings.llm_timeout_seconds
    )
    num_retries = int(params.pop("num_retries", 0))
    fallbacks = tuple(params.pop("fallbacks", None) or ())
    if body.functions or body.tools:
        functions = [f.model_dump(exclude_none=True) for f in body.functions or []] or None
        tools = [t.model_dump(exclude_none=True) for t in body.tools or []] or None
    else:
        functions, tools = version.functions, version.tools
    return LLMCall(
        model=version.model,
        messages=messages,
        params=params,
        api_base=version.api_base,
        functions=functions,
        function_call=body.function_call if functions else None,
        tools=tools,
        tool_choice=body.tool_choice if tools else None,
        timeout=timeout,
        num_retries=num_retries,
        fallbacks=fallbacks,
        retry_backoff=settings.retry_backoff_seconds,
    )

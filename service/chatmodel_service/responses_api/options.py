"""A response request's tools, tool choice and sampling fields as a run's options, and
what its Response object echoes. No I/O here.

Function tools (``{type: "function", name, description, parameters, strict}``) are the
chat API's tools; the caller's replace the version's for the call, as on a native run.
Hosted tools (``file_search``, ``web_search``, ``code_interpreter``, ``computer_use``,
``mcp``, ...) run on OpenAI's servers and are not served here: a 400 naming the tool.
``max_output_tokens`` is the call's ``max_tokens``; ``text.format`` its
``response_format``; ``parallel_tool_calls`` is echoed, not sent (models that can call
several tools at once do by default).
"""

from __future__ import annotations

from typing import Any

from chatmodel_service.chat_models.schemas import ModelParams
from chatmodel_service.errors import InvalidInput
from chatmodel_service.openai_compat.options import validated
from chatmodel_service.responses_api.schemas import ResponseCreate, ResponseEcho, TextFormat
from chatmodel_service.runs import RunOptions


def _tool(index: int, tool: dict[str, Any]) -> dict[str, Any]:
    kind = tool.get("type")
    if kind != "function":
        raise InvalidInput(
            f"Tools of type '{kind}' run on OpenAI's servers and are not served here; give "
            "function tools and run them yourself.",
            field=f"tools.{index}.type",
        )
    if not isinstance(tool.get("name"), str):
        raise InvalidInput("A function tool needs a string 'name'.", field=f"tools.{index}.name")
    function = {
        key: tool[key] for key in ("name", "description", "parameters", "strict") if key in tool
    }
    return {"type": "function", "function": function}


def _tool_choice(choice: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
    if choice is None or isinstance(choice, str):
        if choice not in (None, "auto", "none", "required"):
            raise InvalidInput(
                "tool_choice is auto, none, required or a function.", field="tool_choice"
            )
        return choice
    if choice.get("type") != "function" or not isinstance(choice.get("name"), str):
        raise InvalidInput(
            'tool_choice names a function tool: {"type": "function", "name": ...}.',
            field="tool_choice",
        )
    return {"type": "function", "function": {"name": choice["name"]}}


def _response_format(text_format: TextFormat | None) -> dict[str, Any] | None:
    if text_format is None or text_format.type == "text":
        return None
    if text_format.type == "json_object":
        return {"type": "json_object"}
    if text_format.schema_ is None:
        raise InvalidInput("A json_schema format needs its 'schema'.", field="text.format.schema")
    schema: dict[str, Any] = {"name": text_format.name or "response", "schema": text_format.schema_}
    if text_format.strict is not None:
        schema["strict"] = text_format.strict
    return {"type": "json_schema", "json_schema": schema}


def run_options(body: ResponseCreate) -> RunOptions:
    """The request's tools and sampling fields, checked as a native run's are."""
    tools = [_tool(i, t) for i, t in enumerate(body.tools or [])]
    given = {
        "temperature": body.temperature,
        "top_p": body.top_p,
        "max_tokens": body.max_output_tokens,
        "response_format": _response_format(body.text.format if body.text else None),
    }
    params = {k: v for k, v in given.items() if v is not None}
    return validated(
        RunOptions,
        {
            "tools": tools or None,
            "tool_choice": _tool_choice(body.tool_choice) if tools else None,
            "params": validated(ModelParams, params) if params else None,
        },
    )


def echo_of(body: ResponseCreate, chat_model: str, *, conversation: str | None) -> ResponseEcho:
    """What the Response object echoes of its request."""
    return ResponseEcho(
        model=chat_model,
        instructions=body.instructions,
        tools=list(body.tools or []),
        tool_choice=body.tool_choice or "auto",
        parallel_tool_calls=body.parallel_tool_calls is not False,
        temperature=body.temperature,
        top_p=body.top_p,
        max_output_tokens=body.max_output_tokens,
        truncation=body.truncation or "disabled",
        metadata=dict(body.metadata or {}),
        previous_response_id=body.previous_response_id,
        conversation=conversation,
        prompt=body.prompt.model_dump(exclude_none=True) if body.prompt else None,
        text=body.text.model_dump(exclude_none=True, by_alias=True)
        if body.text and body.text.format
        else {"format": {"type": "text"}},
        user=body.user,
        safety_identifier=body.safety_identifier,
        store=body.store,
        background=body.background,
    )

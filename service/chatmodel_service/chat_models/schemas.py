"""Wire formats for chat models, versions and ChatModelConfig."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from chatmodel_service.chat_models.templates import (
    MAX_VALUE_LENGTH,
    MAX_VARIABLES,
    VARIABLE_NAME_PATTERN,
)
from chatmodel_service.free_json import FreeJSON, check_free_json
from chatmodel_service.releases.labels import ALL_LABELS, LABEL_PATTERN, canonical_label

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$"
FUNCTION_NAME_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"
# Version numbers and message seqs are INTEGER columns: larger values cannot be stored
# (SQLite raised OverflowError, a 500), so the API refuses them up front.
MAX_NUMBER = 2**31 - 1
MAX_RETRIES = 5
MAX_FALLBACKS = 3
# ModelParams fields the gateway handles itself, never sent to LiteLLM as parameters.
OWN_PARAMS = frozenset({"timeout", "num_retries", "fallbacks"})

# "latest", a version number, or a label's current release ("production", "staging", an
# admin-defined label; "deploy" is "production"): see releases.labels.
VersionSelector = (
    Literal["latest"]
    | Annotated[int, Field(ge=1, le=MAX_NUMBER)]
    | Annotated[str, Field(pattern=LABEL_PATTERN)]
)
_SELECTOR: TypeAdapter[VersionSelector] = TypeAdapter(VersionSelector)


def parse_selector(text: str) -> VersionSelector | None:
    """A selector written as text (after ``name@``): the number, ``latest`` or the label
    (``deploy`` read as ``production``); None when it is none of those."""
    if text == ALL_LABELS:
        return None
    try:
        number = text.isascii() and text.isdecimal()
        selector = _SELECTOR.validate_python(int(text) if number else text)
    except (ValidationError, ValueError):
        return None
    return canonical_label(selector) if isinstance(selector, str) else selector


# How a history longer than the model's input limit is cut (see runs/window.py).
ContextStrategy = Literal["truncate", "last_n", "fail", "summarize"]
MAX_CONTEXT_LAST_N = 100_000
MAX_CONTEXT_WINDOW = 10_000_000


class StrictModel(BaseModel):
    """A request body: unknown fields, NaN and infinities are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ModelParams(StrictModel):
    """Typed model parameters; ``None`` means "provider default"."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = None
    response_format: FreeJSON | None = None
    timeout: float | None = Field(default=None, gt=0, description="Seconds for one model call.")
    num_retries: int | None = Field(
        default=None,
        ge=0,
        le=MAX_RETRIES,
        description="Retries of a rate-limited (429), failed (5xx), timed-out or unreachable "
        "call, per model, with exponential backoff.",
    )
    fallbacks: (
        Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=MAX_FALLBACKS)]
        | None
    ) = Field(
        default=None,
        description="LiteLLM model strings tried in order when the model keeps failing; each "
        "gets the same num_retries, api_base and parameters.",
    )

    @field_validator("fallbacks")
    @classmethod
    def _fallbacks_are_models(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        blank = [str(i) for i, model in enumerate(value) if not model.strip()]
        if blank:
            raise ValueError(f"entry {', '.join(blank)} names no model; give a model string")
        repeated = sorted({model for model in value if value.count(model) > 1})
        if repeated:
            raise ValueError(f"listed more than once: {', '.join(repeated)}")
        return value

    def as_call_params(self) -> dict[str, Any]:
        """Only the LiteLLM parameters that were set: not the timeout, retries or fallbacks,
        which the gateway handles itself."""
        return self.model_dump(exclude_none=True, exclude=set(OWN_PARAMS))


class FunctionDefinition(StrictModel):
    name: str = Field(pattern=FUNCTION_NAME_PATTERN)
    description: str | None = None
    parameters: FreeJSON | None = None
    strict: bool | None = None

    @field_validator("parameters")
    @classmethod
    def _parameters_are_json_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        if value.get("type", "object") != "object":
            raise ValueError("the parameters schema must have type 'object'")
        return value


class ToolDefinition(StrictModel):
    type: Literal["function"] = "function"
    function: FunctionDefinition


ToolChoice = Annotated[
    Literal["none", "auto", "required"] | dict[str, Any], AfterValidator(check_free_json)
]
# The legacy ``function_call`` choice: "none", "auto" or {"name": ...}.
FunctionCallChoice = Annotated[str | dict[str, Any], AfterValidator(check_free_json)]


MAX_RETENTION_DAYS = 36_500
RETENTION_DAYS_DESCRIPTION = (
    "`chatmodel gc` deletes sessions idle for longer than this many days, with their "
    "messages and runs; null: kept forever."
)


class ChatModelCreate(StrictModel):
    name: str = Field(pattern=NAME_PATTERN, description="Unique in the project; used in URLs.")
    description: str = Field(default="", max_length=10_000)
    retention_days: int | None = Field(
        default=None, ge=1, le=MAX_RETENTION_DAYS, description=RETENTION_DAYS_DESCRIPTION
    )


class ChatModelUpdate(StrictModel):
    """The fields to change; those left out keep their value (prompts change by adding
    versions, never here)."""

    description: str = Field(default="", max_length=10_000)
    retention_days: int | None = Field(
        default=None, ge=1, le=MAX_RETENTION_DAYS, description=RETENTION_DAYS_DESCRIPTION
    )


class ChatModelOut(BaseModel):
    name: str
    description: str
    archived: bool
    created_at: datetime
    updated_at: datetime
    retention_days: int | None = Field(default=None, description=RETENTION_DAYS_DESCRIPTION)
    latest_version: int | None
    published_versions: dict[int, int] = Field(
        description="The production label's version number -> traffic weight (empty when "
        'nothing is published); what "deploy" gives new sessions.'
    )
    labels: dict[str, dict[int, int]] = Field(
        default_factory=dict,
        description='Every label (always "production" and "staging", then the admin-defined '
        "ones) -> its current release's version number -> traffic weight ({} if empty).",
    )


class ChatModelList(BaseModel):
    data: list[ChatModelOut]


class VersionCreate(StrictModel):
    system_prompt: str = Field(max_length=200_000)
    model: str = Field(min_length=1, max_length=200, description="Any LiteLLM model string.")
    api_base: str | None = Field(
        default=None,
        pattern=r"^https?://",
        max_length=500,
        description="OpenAI-compatible server to call (Ollama, vLLM, llama.cpp, ...).",
    )
    params: ModelParams = Field(default_factory=ModelParams)
    functions: list[FunctionDefinition] | None = Field(default=None, max_length=128)
    tools: list[ToolDefinition] | None = Field(default=None, max_length=128)
    memo: str = Field(default="", max_length=10_000)
    publish: bool = Field(default=False, description="Publish this version right away.")
    variables: list[Annotated[str, Field(pattern=VARIABLE_NAME_PATTERN)]] | None = Field(
        default=None,
        max_length=MAX_VARIABLES,
        description="Template variables the system prompt uses as {{name}}; each session "
        "gives a value for every one.",
    )

    context_strategy: ContextStrategy = Field(
        default="truncate",
        description="When the history does not fit the model's input limit: `truncate` "
        "sends the newest messages that fit, `last_n` at most `context_last_n` of them, "
        "`fail` sends nothing and the run fails with `context_window_exceeded`, "
        "`summarize` sends the newest messages that fit after a stored summary of the "
        "older ones (needs `context_window`).",
    )
    context_last_n: int | None = Field(
        default=None,
        ge=1,
        le=MAX_CONTEXT_LAST_N,
        validate_default=True,
        description="With context_strategy `last_n` (and only then): the most messages "
        "a run sends.",
    )
    context_window: int | None = Field(
        default=None,
        ge=1,
        le=MAX_CONTEXT_WINDOW,
        validate_default=True,
        description="The model's input limit in tokens; overrides LiteLLM's figure (set "
        "it for models LiteLLM does not know, which otherwise get the server's default).",
    )
    summary_model: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        validate_default=True,
        description="With context_strategy `summarize` (and only then): the LiteLLM model "
        "that writes the summary (called with the version's api_base); the version's own "
        "model when left out.",
    )
    summary_prompt: str | None = Field(
        default=None,
        min_length=1,
        max_length=10_000,
        validate_default=True,
        description="With context_strategy `summarize` (and only then): the instructions "
        "the summary model gets; a built-in prompt when left out.",
    )

    @field_validator("variables")
    @classmethod
    def _variables_are_unique(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            repeated = sorted({name for name in value if value.count(name) > 1})
            if repeated:
                raise ValueError(f"declared more than once: {', '.join(repeated)}")
        return value

    @field_validator("context_last_n")
    @classmethod
    def _last_n_with_its_strategy(cls, value: int | None, info: ValidationInfo) -> int | None:
        strategy = info.data.get("context_strategy")
        if strategy is None:  # the strategy itself was invalid: reported there
            return value
        if strategy == "last_n" and value is None:
            raise ValueError("context_strategy last_n needs context_last_n: how many to keep")
        if strategy != "last_n" and value is not None:
            raise ValueError("only used with context_strategy last_n; leave it out")
        return value

    @field_validator("context_window")
    @classmethod
    def _window_for_summaries(cls, value: int | None, info: ValidationInfo) -> int | None:
        if info.data.get("context_strategy") == "summarize" and value is None:
            raise ValueError(
                "context_strategy summarize needs context_window: the input limit the "
                "summary makes room in"
            )
        return value

    @field_validator("summary_model", "summary_prompt")
    @classmethod
    def _summary_with_its_strategy(cls, value: str | None, info: ValidationInfo) -> str | None:
        strategy = info.data.get("context_strategy")
        if strategy is not None and strategy != "summarize" and value is not None:
            raise ValueError("only used with context_strategy summarize; leave it out")
        return value


# Values for a version's template variables (strings; which names are allowed depends on
# the version, checked by templates.check_values).
VariableValues = dict[
    Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=MAX_VALUE_LENGTH)]
]


class VersionOut(BaseModel):
    uuid: UUID
    chat_model: str
    number: int
    system_prompt: str
    model: str
    api_base: str | None
    params: dict[str, Any]
    functions: list[dict[str, Any]] | None
    tools: list[dict[str, Any]] | None
    memo: str
    created_at: datetime
    variables: list[str] | None = None
    context_strategy: ContextStrategy = "truncate"
    context_last_n: int | None = None
    context_window: int | None = None
    summary_model: str | None = None
    summary_prompt: str | None = None


class VersionList(BaseModel):
    data: list[VersionOut]


class ChatModelConfig(BaseModel):
    """What seed 004's ``get_config()`` returns."""

    name: str
    system_prompt: str
    model: str
    version: int
    version_uuid: UUID
    version_detail: dict[str, Any]
    message_logs: list[dict[str, Any]]
    session_uuid: UUID | None = None

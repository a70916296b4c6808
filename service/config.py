"""The one Settings class. Nothing else in the service reads ``os.environ``."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./chatmodel.db"

# How LiteLLM reaches OpenAI-compatible servers (see Settings.litellm_openai_transport).
OpenAITransport = Literal["litellm", "openai-sdk"]


class Settings(BaseSettings):
    """Service settings, read from ``CHATMODEL_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="CHATMODEL_", extra="ignore")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://...",
    )
    host: str = Field(default="127.0.0.1", description="Address `chatmodel serve` binds.")
    port: int = Field(default=8000, description="Port `chatmodel serve` binds.")
    seed_demo: bool = Field(
        default=True,
        description="On an empty database, create the demo chat model on the offline model.",
    )
    llm_timeout_seconds: float = Field(
        default=120.0, gt=0, description="Upper bound for one model call (a version may lower it)."
    )
    retry_backoff_seconds: float = Field(
        default=0.5,
        ge=0,
        le=30,
        description="First pause before retrying a failed model call (a version's "
        "`num_retries`); doubled per retry, with jitter; a provider's Retry-After wins "
        "when it asks for longer, up to 30 s.",
    )
    run_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How long a run's hold on its session lasts without renewal. A live "
        "run renews it every third of this; a run whose server died frees the session "
        "once it lapses.",
    )
    max_run_wait_seconds: float = Field(
        default=300.0,
        ge=0,
        le=3600,
        description="Longest `wait_seconds` a run request may ask for (policy `wait`).",
    )
    keep_alive_seconds: int = Field(
        default=75,
        gt=0,
        le=3600,
        description="How long `chatmodel serve` keeps an idle HTTP connection open. "
        "Longer than clients keep theirs (httpx: 5 s) and than load balancers' idle "
        "timeouts, so a client never reuses a connection the server is closing that "
        "very moment (uvicorn's own default, 5 s, races httpx's).",
    )
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024, gt=0, description="Largest accepted request body, in bytes."
    )
    db_pool_size: int = Field(
        default=10,
        gt=0,
        description="Connections the pool keeps open to PostgreSQL, per process.",
    )
    db_max_overflow: int = Field(
        default=10,
        ge=0,
        description="Extra PostgreSQL connections a process may open beyond `db_pool_size` "
        "when busy (closed again once returned); a process never holds more than "
        "`db_pool_size + db_max_overflow`.",
    )
    db_pool_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a request waits for a free PostgreSQL connection when the "
        "pool is exhausted before it fails.",
    )
    db_echo: bool = Field(default=False, description="Log every SQL statement.")
    log_level: str = Field(default="info", description="uvicorn / service log level.")
    log_format: Literal["json", "text"] = Field(
        default="json",
        description="`chatmodel serve`'s log lines on stderr: one JSON object per line "
        "(`json`), or `LEVEL logger [request id]: message` (`text`).",
    )
    metrics_public: bool = Field(
        default=False,
        description="Serve `/metrics` without an API key even when keys are required (for "
        "a scraper on a private network); otherwise it needs an admin key.",
    )
    auth: Literal["auto", "required", "disabled"] = Field(
        default="auto",
        description="API keys: `required`, `disabled` (every request acts as the default "
        "project's admin; only allowed on a loopback address), or `auto`: disabled when "
        "`host` is a loopback address, required otherwise.",
    )
    rate_limit_per_minute: int = Field(
        default=600,
        ge=0,
        description="Requests per minute per API key (token bucket per process, bursts up "
        "to this many); 0 turns the limit off.",
    )
    max_messages_per_add: int = Field(
        default=1000, ge=1, le=1000, description="Messages one add (or run request) may carry."
    )
    max_content_chars: int = Field(
        default=100_000, ge=1, le=1_000_000, description="Longest message content, in characters."
    )
    max_functions_per_run: int = Field(
        default=128, ge=0, le=128, description="Functions or tools one run may pass."
    )
    default_context_window: int = Field(
        default=8192,
        ge=1,
        le=10_000_000,
        description="Input limit in tokens for a model LiteLLM's model map does not list "
        "(the offline model, `openai/<name>` on an api_base) when its version sets no "
        "`context_window`.",
    )
    default_reply_reserve: int = Field(
        default=1024,
        ge=1,
        le=1_000_000,
        description="Tokens kept free for the reply when a call sets no `max_tokens` "
        "(or the model's output limit, when LiteLLM lists a smaller one).",
    )
    litellm_openai_transport: OpenAITransport = Field(
        default="litellm",
        description="How LiteLLM sends calls to OpenAI and OpenAI-compatible servers: "
        "`litellm`, its own HTTP client (LiteLLM's `EXPERIMENTAL_OPENAI_BASE_LLM_HTTP_HANDLER`, "
        "the same request on the wire at about half the CPU per call), or `openai-sdk`, "
        "through the OpenAI Python SDK (LiteLLM's default), whose request-building walks "
        "every message and costs a few ms per call.",
    )
    openai_passthrough: bool = Field(
        default=False,
        description="Let the OpenAI-compatible API call a raw LiteLLM model string when "
        "`model` names no chat model (such calls are not recorded).",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, read once per process (tests pass their own)."""
    return Settings()

"""The one Settings class, the secrets the server holds, and the environment LiteLLM
starts with.

This is the only module of the service that touches ``os.environ``. It reads it twice
(``Settings``, from ``CHATMODEL_*`` variables; ``server_secrets``, for the values to
redact) and writes it once: ``export_litellm_environment``, called by the gateway's
bootstrap (``llm.bootstrap``) just before it imports LiteLLM, sets the two variables
LiteLLM takes only from the environment.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Collection
from functools import lru_cache
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./chatmodel.db"
# A DNS host name (``webhook_allowed_hosts``): dot-separated labels of letters, digits, '-'.
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")

# An environment variable whose name ends like this holds a secret (OPENAI_API_KEY,
# AWS_SECRET_ACCESS_KEY, HF_TOKEN, WATSONX_APIKEY, AZURE_CLIENT_SECRET, a self-hosted
# server's MY_LLM_TOKEN, SMTP_PASSWORD, VERTEXAI_CREDENTIALS, ...).
SECRET_VARIABLE_ENDINGS = (
    "_KEY",
    "_APIKEY",
    "_TOKEN",
    "_SECRET",
    "_PASSWORD",
    "_PASSWD",
    "_CREDENTIAL",
    "_CREDENTIALS",
)

# How LiteLLM reaches OpenAI-compatible servers (see Settings.litellm_openai_transport).
OpenAITransport = Literal["litellm", "openai-sdk"]

# LiteLLM reads this on every call to an OpenAI-compatible provider: "true" sends it
# through LiteLLM's own HTTP handler instead of the OpenAI SDK (whose request transform
# walks every message's TypedDict annotations: most of a call's CPU on a long prompt).
OPENAI_TRANSPORT_ENV = "EXPERIMENTAL_OPENAI_BASE_LLM_HTTP_HANDLER"
# LiteLLM reads this when it is imported: "True" loads its model and price map from the
# installed package instead of fetching it from the internet.
LOCAL_COST_MAP_ENV = "LITELLM_LOCAL_MODEL_COST_MAP"


class Settings(BaseSettings):
    """Service settings, read from ``CHATMODEL_*`` environment variables (and the
    terminal's ``NO_COLOR`` and ``TERM``)."""

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
    run_events_retention_seconds: float = Field(
        default=3600.0,
        ge=0,
        le=30 * 86400,
        description="How long a streamed or background run's events are kept after it "
        "ends, for `GET /v1/runs/{uuid}/events` (and a Responses stream's "
        "`starting_after`) to replay; after that only its stored result is replayed.",
    )
    max_run_wait_seconds: float = Field(
        default=300.0,
        ge=0,
        le=3600,
        description="Longest `wait_seconds` a run request may ask for (policy `wait`).",
    )
    # Webhooks (``webhooks``): where a delivery may go, and how it is retried.
    webhook_allowed_hosts: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="Hosts webhooks may be delivered to although they are not public "
        "addresses: host names, IP addresses or CIDR networks, as a JSON list "
        '(`["127.0.0.1", "hooks.internal", "10.1.0.0/16"]`). Every other '
        "loopback, private, link-local or otherwise non-global address is refused, at "
        "registration and at each delivery (checked against the resolved addresses).",
    )
    webhook_retry_schedule: list[Annotated[float, Field(ge=0, le=7 * 86400)]] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0],
        max_length=50,
        description="Seconds to wait before each retry of a webhook delivery whose "
        "attempt failed, as a JSON list; the first attempt is made at once. The default "
        "(Standard Webhooks'): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h, 8 attempts "
        "over about 27.6 hours; after the last the delivery is `failed`.",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="How long one webhook delivery waits for the receiver's answer.",
    )
    webhook_max_concurrent_deliveries: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="Webhook deliveries one server process sends at a time.",
    )

    @field_validator("webhook_allowed_hosts")
    @classmethod
    def _host_names_or_networks(cls, entries: list[str]) -> list[str]:
        """Each entry an IP address, a CIDR network or a host name (lower-cased)."""
        cleaned = [entry.strip().lower().rstrip(".") for entry in entries]
        for entry in cleaned:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                if not _HOST_NAME.fullmatch(entry):
                    raise ValueError(f"{entry!r} is no host name, IP address or network") from None
        return cleaned

    shutdown_grace_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="How long a stopping `chatmodel serve` (SIGTERM, Ctrl-C) lets streams "
        "and calls in flight finish before it ends every run of the process as "
        "`interrupted`, each open stream with that end as its last event.",
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
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto",
        description="`chatmodel serve`'s log lines on stderr: one JSON object per line "
        "(`json`), or one readable line per record, `TIME LEVEL logger [request id]: "
        "message key=value ...` (`text`); `auto`: `text` when stderr is a terminal, else "
        "`json`.",
    )
    # Two conventions of the terminal, not CHATMODEL_ settings: text log lines are coloured
    # only on a terminal that is not TERM=dumb, and never when NO_COLOR is set.
    no_color: str = Field(
        default="",
        validation_alias="NO_COLOR",
        description="`NO_COLOR` (no-color.org): any value turns the colours of text log lines off.",
    )
    terminal: str = Field(
        default="",
        validation_alias="TERM",
        description="`TERM`: `dumb` turns the colours of text log lines off.",
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


class SettingsError(ValueError):
    """The environment gives settings values they cannot take: ``problems`` holds one
    line per variable, ``CHATMODEL_X=value is invalid: must be ...``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def server_secrets(settings: Settings, key_variables: Collection[str] = ()) -> frozenset[str]:
    """Every secret value the server holds, for ``redaction.SecretRedactor``: the value of
    each environment variable named in ``key_variables`` (where LiteLLM reads provider
    keys, from ``LLMGateway.key_variables``) or whose name ends like a secret's
    (:data:`SECRET_VARIABLE_ENDINGS`), and the database URL's password (no setting holds
    another secret). The app calls it once, when it starts; empty values are left out,
    and the redactor skips very short ones."""
    names = set(key_variables)
    values = {
        value
        for name, value in os.environ.items()
        if name in names or name.upper().endswith(SECRET_VARIABLE_ENDINGS)
    }
    values.add(make_url(settings.database_url).password or "")
    return frozenset(value for value in values if value)


def export_litellm_environment(openai_transport: OpenAITransport) -> None:
    """Write the variables LiteLLM reads from the environment, not from arguments: the
    local cost map (unless the environment already says otherwise) and how it reaches
    OpenAI-compatible servers (``Settings.litellm_openai_transport``). Called by
    ``llm.bootstrap`` just before it imports LiteLLM; both then hold for the process."""
    os.environ.setdefault(LOCAL_COST_MAP_ENV, "True")
    os.environ[OPENAI_TRANSPORT_ENV] = "true" if openai_transport == "litellm" else "false"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, read once per process (tests pass their own).
    Raises SettingsError (never pydantic's ValidationError) for values they cannot take."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(_problems(exc)) from None


def _problems(exc: ValidationError) -> list[str]:
    """One line per setting the environment got wrong, in the order of the fields."""
    problems: dict[str, str] = {}
    for error in exc.errors():
        name = str(error["loc"][0])
        variable = f"{Settings.model_config['env_prefix']}{name.upper()}"
        value = str(error["input"])
        shown = value if value.isprintable() else repr(value)  # one line, always
        problems.setdefault(name, f"{variable}={shown} is invalid: must be {_allowed(name)}")
    return list(problems.values())


def _allowed(name: str) -> str:
    """What a setting takes, from its type and bounds: ``a whole number between 1 and
    1000``, ``a number greater than 0``, ``true or false``, ``one of: json, text``."""
    field = Settings.model_fields[name]
    if get_origin(field.annotation) is Literal:
        return "one of: " + ", ".join(str(choice) for choice in get_args(field.annotation))
    if get_origin(field.annotation) is list:
        default = field.get_default(call_default_factory=True)
        return f"a JSON list, as in {json.dumps(default)}" if default else "a JSON list"
    if field.annotation is bool:
        return "true or false"
    kind = "a whole number" if field.annotation is int else "a number"  # str never fails
    ge, gt, le = (_bound(field.metadata, key) for key in ("ge", "gt", "le"))
    if ge is not None and le is not None:
        return f"{kind} between {ge} and {le}"
    lower = f"at least {ge}" if ge is not None else None
    lower = f"greater than {gt}" if gt is not None else lower
    upper = f"at most {le}" if le is not None else None
    limits = " and ".join(limit for limit in (lower, upper) if limit is not None)
    return f"{kind} {limits}" if limits else kind


def _bound(metadata: list[Any], key: str) -> Any:
    """A field's ``ge``/``gt``/``le`` bound (annotated_types' Ge, Gt, Le), or None."""
    return next((getattr(item, key) for item in metadata if hasattr(item, key)), None)

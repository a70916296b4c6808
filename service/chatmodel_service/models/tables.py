"""ORM tables. Wire formats live in each domain's schemas.py, never here."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from chatmodel_service.models.base import Base, CreatedAt, UUIDPrimaryKey, utcnow

MESSAGE_ROLES = ("system", "user", "assistant", "function", "tool")
RUN_STATUSES = ("running", "succeeded", "failed")
KEY_SCOPES = ("admin", "client")


class Project(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "project"

    name: Mapped[str] = mapped_column(String(100), unique=True)


class ChatModel(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "chat_model"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    project_id: Mapped[UUID] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Sessions idle for longer are deleted by `chatmodel gc` (None: kept forever).
    retention_days: Mapped[int | None] = mapped_column(Integer)


class ChatModelVersion(UUIDPrimaryKey, CreatedAt, Base):
    """Immutable once inserted: editing a prompt means inserting the next number."""

    __tablename__ = "chat_model_version"
    __table_args__ = (
        UniqueConstraint("chat_model_id", "number"),
        CheckConstraint(
            "context_strategy IN ('truncate', 'last_n', 'fail', 'summarize')",
            name="context_strategy",
        ),
    )

    chat_model_id: Mapped[UUID] = mapped_column(ForeignKey("chat_model.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    system_prompt: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(200))
    api_base: Mapped[str | None] = mapped_column(String(500))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    functions: Mapped[list[dict[str, Any]] | None] = mapped_column()
    tools: Mapped[list[dict[str, Any]] | None] = mapped_column()
    memo: Mapped[str] = mapped_column(Text, default="")
    # Template variables the system prompt may use as {{name}}; filled per session.
    variables: Mapped[list[str] | None] = mapped_column(JSON)
    # How a history longer than the model's input limit is cut: truncate | last_n | fail.
    context_strategy: Mapped[str] = mapped_column(
        String(16), default="truncate", server_default="truncate"
    )
    context_last_n: Mapped[int | None] = mapped_column(Integer)
    # The model's input limit in tokens, for models LiteLLM does not know.
    context_window: Mapped[int | None] = mapped_column(Integer)
    # context_strategy summarize: the model that writes the summary (None: the version's
    # own) and its instructions (None: the built-in ones).
    summary_model: Mapped[str | None] = mapped_column(String(200))
    summary_prompt: Mapped[str | None] = mapped_column(Text)


class ChatModelRelease(UUIDPrimaryKey, CreatedAt, Base):
    """Append-only publish history of each label; a label's highest ``seq`` is its current
    release ("deploy" means the ``production`` label's). ``seq`` counts per chat model,
    across labels."""

    __tablename__ = "chat_model_release"
    __table_args__ = (
        UniqueConstraint("chat_model_id", "seq"),
        # A label's current release and its history, newest first.
        Index("ix_chat_model_release_chat_model_id_label_seq", "chat_model_id", "label", "seq"),
    )

    chat_model_id: Mapped[UUID] = mapped_column(ForeignKey("chat_model.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    # production | staging | an admin-defined name (releases.labels.LABEL_PATTERN)
    label: Mapped[str] = mapped_column(
        String(40), default="production", server_default="production"
    )
    # publish | split | rollback
    kind: Mapped[str] = mapped_column(String(16), default="publish", server_default="publish")
    published_by: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text, default="")
    # The name of the API key that made the release (None: auth disabled).
    key_name: Mapped[str | None] = mapped_column(String(100))


class ReleaseVersion(Base):
    """One version of a release with its traffic weight (one row, weight 100, for now)."""

    __tablename__ = "release_version"
    __table_args__ = (CheckConstraint("weight >= 0 AND weight <= 100", name="weight_range"),)

    release_id: Mapped[UUID] = mapped_column(
        ForeignKey("chat_model_release.id", ondelete="CASCADE"), primary_key=True
    )
    version_id: Mapped[UUID] = mapped_column(
        ForeignKey("chat_model_version.id", ondelete="CASCADE"), primary_key=True
    )
    weight: Mapped[int] = mapped_column(Integer)


class ChatSession(CreatedAt, Base):
    __tablename__ = "chat_session"
    __table_args__ = (
        # Newest-first listings (per project, per chat model) and per-version figures.
        Index("ix_chat_session_project_id_created_at", "project_id", "created_at"),
        Index("ix_chat_session_chat_model_id_created_at", "chat_model_id", "created_at"),
        Index("ix_chat_session_version_id_created_at", "version_id", "created_at"),
        # The admin listing's user filter: one user's sessions, newest first.
        Index("ix_chat_session_user_id", "project_id", "user_id", "created_at"),
        # Held sessions only: each server looks for lapsed leases (runs whose server died).
        Index(
            "ix_chat_session_held",
            "lease_expires_at",
            postgresql_where=text("lease_run_id IS NOT NULL"),
            sqlite_where=text("lease_run_id IS NOT NULL"),
        ),
        # The uuid clients know a session by is unique per project: another project's
        # sessions are as if they did not exist, their uuids included.
        UniqueConstraint("project_id", "uuid"),
    )

    # ``id`` is the row's own key, which messages and runs reference; ``uuid`` is the one
    # the API shows and takes. They differ for every session created since revision 0012.
    id: Mapped[UUID] = mapped_column(primary_key=True)
    uuid: Mapped[UUID] = mapped_column()
    project_id: Mapped[UUID] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    chat_model_id: Mapped[UUID] = mapped_column(ForeignKey("chat_model.id", ondelete="CASCADE"))
    version_id: Mapped[UUID] = mapped_column(ForeignKey("chat_model_version.id"))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    # ``metadata.user_id`` as the listing filters on it, kept with every write of the
    # metadata (``sessions.metadata.metadata_user_id``): a string, or an integer's digits;
    # null for anything else and for more than 200 characters.
    user_id: Mapped[str | None] = mapped_column(String(200))
    # Values for the pinned version's template variables.
    variables: Mapped[dict[str, str] | None] = mapped_column(JSON)
    # The run holding the session (one at a time) and until when; renewed while it runs.
    lease_run_id: Mapped[UUID | None] = mapped_column()
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    # A forked session: the ``uuid`` of the session (of the same project) and the last seq
    # it was copied from.
    parent_session_id: Mapped[UUID | None] = mapped_column()
    parent_seq: Mapped[int | None] = mapped_column(Integer)


class ChatRun(UUIDPrimaryKey, CreatedAt, Base):
    """One call of the model, kept whether it succeeded or failed: a session's run, or a
    stateless call of a version (``session_id`` null) made through the OpenAI-compatible
    API. ``version_id`` ties both to their chat model."""

    __tablename__ = "chat_run"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="status"
        ),
        UniqueConstraint("session_id", "idempotency_key"),
        # A session's runs oldest first, a page at a time (and its runs counted).
        Index("ix_chat_run_session_id_created_at", "session_id", "created_at"),
        Index(None, "version_id"),
        # Sessions with (or without) a failed run, and how many: failures only, which
        # are few ('failed' is written out in those queries, so the index applies).
        Index(
            "ix_chat_run_failed",
            "session_id",
            postgresql_where=text("status = 'failed'"),
            sqlite_where=text("status = 'failed'"),
        ),
        # A session's queued runs, in arrival order (if_busy=enqueue).
        Index(
            "ix_chat_run_queued",
            "session_id",
            "created_at",
            postgresql_where=text("status = 'queued'"),
            sqlite_where=text("status = 'queued'"),
        ),
    )

    session_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("chat_session.id", ondelete="CASCADE")
    )
    version_id: Mapped[UUID] = mapped_column(ForeignKey("chat_model_version.id"))
    status: Mapped[str] = mapped_column(String(16))
    stream: Mapped[bool] = mapped_column(Boolean, default=False)
    model: Mapped[str] = mapped_column(String(200))
    error_type: Mapped[str | None] = mapped_column(String(64))
    error_log: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[int] = mapped_column(Integer)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    cost: Mapped[float | None] = mapped_column(Float)
    finished_at: Mapped[datetime | None] = mapped_column()  # null while running
    # The name of the API key that asked for the run (None: auth disabled).
    key_name: Mapped[str | None] = mapped_column(String(100))
    # A retried request with the same key (and body hash) gets ``result`` back.
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[dict[str, Any] | None] = mapped_column()
    # Each try of the model call: [{model, outcome, latency_ms, provider_status}].
    attempts: Mapped[list[dict[str, Any]] | None] = mapped_column()
    # The prompt as fitted to the model's input limit: messages sent and left out, and
    # its estimated tokens (null for runs recorded before revision 0010).
    messages_sent: Mapped[int | None] = mapped_column(Integer)
    messages_dropped: Mapped[int | None] = mapped_column(Integer)
    prompt_tokens_estimate: Mapped[int | None] = mapped_column(Integer)
    # context_strategy summarize (revision 0021): how many older messages the summary sent
    # stood in for, the summary (``session_summary.id``; no foreign key: a record outlives
    # nothing it names) and its tokens; or why no summary was sent (the run truncated).
    messages_summarised: Mapped[int | None] = mapped_column(Integer)
    summary_id: Mapped[UUID | None] = mapped_column()
    summary_tokens: Mapped[int | None] = mapped_column(Integer)
    summary_error: Mapped[str | None] = mapped_column(Text)
    # A run made through the Responses API: what its request asked for (instructions,
    # tools, truncation, metadata, the input it stored, ...), which its Response object
    # echoes; null for the runs of other APIs.
    responses_request: Mapped[dict[str, Any] | None] = mapped_column()
    # A Responses API delete: the response is gone from that API (its record stays, for
    # the figures, and its messages stay in their session).
    deleted_at: Mapped[datetime | None] = mapped_column()
    # A streamed or background run keeps its events (``run_event_batch``) for resuming:
    # how they are framed, ``native``, ``chat``, ``text`` or ``responses``; null when the
    # run keeps none (only its record and result then).
    stream_format: Mapped[str | None] = mapped_column(String(16))
    # A queued run (if_busy=enqueue): until when its waiting process vouches for it
    # (renewed every third of a lease); a queued run past it is given up as interrupted.
    queued_until: Mapped[datetime | None] = mapped_column()


class RunEventBatch(CreatedAt, Base):
    """Some of a run's server-sent events, in order, written together (the run's process
    writes what its streams produced every ~100 ms, all runs in one transaction), so a
    stream can be resumed from any process. Deleted some time after the run ended
    (``run_events_retention_seconds``)."""

    __tablename__ = "run_event_batch"
    __table_args__ = (Index(None, "created_at"),)

    run_id: Mapped[UUID] = mapped_column(
        ForeignKey("chat_run.id", ondelete="CASCADE"), primary_key=True
    )
    first_seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer)
    # The events as sent, each its SSE frame with its id line.
    frames: Mapped[list[str]] = mapped_column(JSON)
    # The run's last events: nothing follows.
    final: Mapped[bool] = mapped_column(Boolean, default=False)


class SessionMessage(CreatedAt, Base):
    """Append-only; ``seq`` orders a session's messages without gaps from 1."""

    __tablename__ = "session_message"
    __table_args__ = (
        UniqueConstraint("session_id", "seq"),
        # A message's uuid, like a session's, is unique per project.
        UniqueConstraint("project_id", "uuid"),
        CheckConstraint("role IN ('system', 'user', 'assistant', 'function', 'tool')", name="role"),
        # Deleting a run checks that no message still references it: without this index
        # that check scans every message of every session, once per deleted run.
        Index(None, "run_id"),
        # A run counts the superseded replies older than what it read (to report how many
        # messages it dropped), and may look for an older user message, without walking
        # the history: partial indexes holding only those messages.
        Index(
            "ix_session_message_superseded",
            "session_id",
            "seq",
            postgresql_where=text("superseded_at IS NOT NULL"),
            sqlite_where=text("superseded_at IS NOT NULL"),
        ),
        Index(
            "ix_session_message_user",
            "session_id",
            "seq",
            postgresql_where=text("role = 'user'"),
            sqlite_where=text("role = 'user'"),
        ),
    )

    # As for sessions: ``id`` is the row's key, ``uuid`` the one the API shows and takes.
    id: Mapped[UUID] = mapped_column(primary_key=True)
    uuid: Mapped[UUID] = mapped_column()
    # The session's project (copied from it): what message uuids are unique in.
    project_id: Mapped[UUID] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    session_id: Mapped[UUID] = mapped_column(ForeignKey("chat_session.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(String(200))
    function_call: Mapped[dict[str, Any] | None] = mapped_column()
    tool_calls: Mapped[list[dict[str, Any]] | None] = mapped_column()
    tool_call_id: Mapped[str | None] = mapped_column(String(200))
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata")
    # Filled for assistant replies produced by a run.
    run_id: Mapped[UUID | None] = mapped_column(ForeignKey("chat_run.id"))
    model: Mapped[str | None] = mapped_column(String(200))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    cost: Mapped[float | None] = mapped_column(Float)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    finish_reason: Mapped[str | None] = mapped_column(String(32))
    # Tokens of the message as sent to the model, counted once when stored.
    token_count: Mapped[int | None] = mapped_column(Integer)
    # Set on a reply that was regenerated: kept in the history, never sent to the model.
    superseded_at: Mapped[datetime | None] = mapped_column()
    # Set on a message deleted as a conversation item (it is superseded too): left out of
    # the conversation's reads and never sent to the model again; its seq stays taken.
    deleted_at: Mapped[datetime | None] = mapped_column()


class ApiKey(UUIDPrimaryKey, CreatedAt, Base):
    """An API key of a project: only its sha256 is stored, with a short visible prefix."""

    __tablename__ = "api_key"
    __table_args__ = (
        CheckConstraint("scope IN ('admin', 'client')", name="scope"),
        UniqueConstraint("prefix"),
        Index(None, "project_id"),
    )

    project_id: Mapped[UUID] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16))
    hash: Mapped[str] = mapped_column(String(64))
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class WebhookEndpoint(UUIDPrimaryKey, CreatedAt, Base):
    """A URL of a project that is told when its runs finish (``webhooks``), and which
    events it wants. ``secret`` is the endpoint's signing secret, ``whsec_<base64>``:
    stored as it is, since the server needs it to sign every delivery (HMAC), as every
    Standard Webhooks sender keeps its receivers' shared secrets; it is shown once, when
    the endpoint is made, and never again."""

    __tablename__ = "webhook_endpoint"
    # The run's finishing transaction looks up its project's endpoints (most have none).
    __table_args__ = (Index(None, "project_id"),)

    project_id: Mapped[UUID] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(500), default="")
    event_types: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(100))


class WebhookDelivery(UUIDPrimaryKey, CreatedAt, Base):
    """One event for one endpoint (the outbox): inserted in the transaction that finished
    the run, sent and retried by a server's delivery worker (``webhooks.delivery``), which
    claims it for ``claimed_until`` (``claim_token`` names the claim) while it sends."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        # The workers' poll for due deliveries, and an endpoint's log, newest first.
        Index(None, "status", "next_attempt_at"),
        Index(None, "endpoint_id", "created_at"),
    )

    endpoint_id: Mapped[UUID] = mapped_column(ForeignKey("webhook_endpoint.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(32))
    # The run it tells of (no foreign key: the log outlives a deleted session's runs).
    run_id: Mapped[UUID] = mapped_column()
    # The event as sent, every attempt the same: {"type", "timestamp", "data"}.
    payload: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column()  # null once delivered/failed
    claimed_until: Mapped[datetime | None] = mapped_column()
    claim_token: Mapped[UUID | None] = mapped_column()
    delivered_at: Mapped[datetime | None] = mapped_column()


class SessionSummary(UUIDPrimaryKey, CreatedAt, Base):
    """A summary of a session's older messages (context_strategy summarize): it stands in
    for every message up to ``covers_through_seq`` in a run's prompt. Append-only; the
    newest of a session's is the one used, and the next one extends it."""

    __tablename__ = "session_summary"
    __table_args__ = (Index(None, "session_id", "created_at"),)

    session_id: Mapped[UUID] = mapped_column(ForeignKey("chat_session.id", ondelete="CASCADE"))
    covers_through_seq: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(200))
    # The summary as a system message, counted as the run's model counts it.
    token_count: Mapped[int] = mapped_column(Integer)
    # The summary model's usage for writing it (None when the provider reported none).
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)


class Feedback(UUIDPrimaryKey, CreatedAt, Base):
    """A named score given to a session (``message_id`` null) or to one of its messages:
    ``thumbs`` true, ``rating`` 4, ``resolved`` "yes". The value keeps its kind:
    ``boolean`` and ``number`` in ``value_number`` (a boolean as 1 or 0, so the figures
    can average both), ``category`` in ``value_text``. Deleted with its session or message."""

    __tablename__ = "feedback"
    __table_args__ = (
        CheckConstraint("value_kind IN ('boolean', 'number', 'category')", name="value_kind"),
        CheckConstraint(
            "(value_kind = 'category' AND value_text IS NOT NULL AND value_number IS NULL)"
            " OR (value_kind <> 'category' AND value_number IS NOT NULL AND value_text IS NULL)",
            name="value",
        ),
        # The id a client gives feedback (and gives again to update it), unique per project.
        UniqueConstraint("project_id", "uuid"),
        # A session's feedback oldest first; a deleted message's feedback; a version's
        # figures per score name.
        Index("ix_feedback_session_id_created_at", "session_id", "created_at"),
        Index(None, "message_id"),
        Index("ix_feedback_version_id_name", "version_id", "name"),
    )

    # ``id`` is the row's own key; ``uuid`` is the id the API shows and takes (as ``id``).
    uuid: Mapped[UUID] = mapped_column()
    project_id: Mapped[UUID] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    session_id: Mapped[UUID] = mapped_column(ForeignKey("chat_session.id", ondelete="CASCADE"))
    message_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("session_message.id", ondelete="CASCADE")
    )
    # The version the session was pinned to when the feedback was given: whose figures
    # it counts in.
    version_id: Mapped[UUID] = mapped_column(ForeignKey("chat_model_version.id"))
    name: Mapped[str] = mapped_column(String(100))
    value_kind: Mapped[str] = mapped_column(String(16))
    value_number: Mapped[float | None] = mapped_column(Float)
    value_text: Mapped[str | None] = mapped_column(String(200))
    comment: Mapped[str | None] = mapped_column(Text)
    # Who gave it: the API key's name (None: auth disabled) and the caller's own ``by``.
    key_name: Mapped[str | None] = mapped_column(String(100))
    given_by: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

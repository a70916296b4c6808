"""Log lines: one JSON object per line (``CHATMODEL_LOG_FORMAT=json``, the default of
``chatmodel serve``) or ``LEVEL logger [request id]: message`` (``text``).

Every record logged while a request is handled carries its ``request_id``. The request
line itself (``chatmodel_service.access``) also carries ``method``, ``route``, ``path``,
``status``, ``duration_ms`` and ``key_name``. Nothing here is set up at import: the
``serve`` command calls :func:`configure_logging`, and tests keep pytest's own handlers.

While an app runs, every handler of the root logger (``configure_logging``'s, pytest's)
redacts the app's secrets from each record it gets (:func:`redact_log_records`): the
message, the string extra fields and the traceback, by value and by key shape.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from chatmodel_service.observability.request_context import current_request
from chatmodel_service.redaction import SecretRedactor

ACCESS_LOGGER = "chatmodel_service.access"
TEXT_FORMAT = "%(levelname)s %(name)s [%(request_id)s]: %(message)s"

# Attributes every LogRecord has; anything else on a record came from ``extra=``, except
# the mark LiteLLM's secret-redacting filter (on uvicorn's loggers, among others) sets.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "litellm_redacted",
}


class RequestIdFilter(logging.Filter):
    """Adds the current request's id to records logged while a request is handled (and
    ``outside`` to the others, when it is not None: the text format always shows one)."""

    def __init__(self, outside: str | None = None) -> None:
        super().__init__()
        self.outside = outside

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            context = current_request()
            if context is not None:
                record.request_id = context.request_id
            elif self.outside is not None:
                record.request_id = self.outside
        return True


class RedactSecrets(logging.Filter):
    """Redacts ``redactor``'s secrets from a record in place: its message (arguments
    merged in), its string extra fields, its traceback and stack. Every handler after
    this one sees the redacted record too."""

    _formatter = logging.Formatter()

    def __init__(self, redactor: SecretRedactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        redact = self.redactor.redact
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit: the text as given
            message = str(record.msg)
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
            if "color_message" in vars(record):  # uvicorn's, formatted with the arguments
                record.color_message = redacted
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _RECORD_ATTRIBUTES and isinstance(value, str):
                setattr(record, name, redact(value))
        return True


def redact_log_records(redactor: SecretRedactor) -> Callable[[], None]:
    """Make every handler the root logger has now redact ``redactor``'s secrets (the root
    logger's handlers are where every logger's records end up); returns the undo."""
    log_filter = RedactSecrets(redactor)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(log_filter)

    def undo() -> None:
        for handler in handlers:
            handler.removeFilter(log_filter)

    return undo


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the
    record's extra fields, and the traceback if there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES and not name.startswith("_"):
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:  # as a filter may have redacted it
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(log_format: Literal["json", "text"], level: str) -> None:
    """Send every logger's records (uvicorn's too, when it is started with
    ``log_config=None``) to stderr in ``log_format``."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
        handler.addFilter(RequestIdFilter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
        handler.addFilter(RequestIdFilter(outside="-"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)

"""Log lines: one JSON object per line (``CHATMODEL_LOG_FORMAT=json``, the default of
``chatmodel serve``) or ``LEVEL logger [request id]: message`` (``text``).

Every record logged while a request is handled carries its ``request_id``. The request
line itself (``chatmodel_service.access``) also carries ``method``, ``route``, ``path``,
``status``, ``duration_ms`` and ``key_name``. Nothing here is set up at import: the
``serve`` command calls :func:`configure_logging`, and tests keep pytest's own handlers.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal

from chatmodel_service.observability.context import current_request

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
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
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

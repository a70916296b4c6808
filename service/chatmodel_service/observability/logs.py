"""Log lines: one JSON object per line (``CHATMODEL_LOG_FORMAT=json``) or one readable
line per record, ``TIME LEVEL logger [request id]: message key=value ...`` (``text``);
``auto``, the default, picks ``text`` when stderr is a terminal and ``json`` otherwise.
Text lines are coloured only on a terminal (not ``TERM=dumb``, not with ``NO_COLOR``).
Neither format carries uvicorn's ``color_message`` or any ANSI escape code a message
brought: JSON lines are for machines, and our colours are the only ones on a terminal.

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
import re
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from chatmodel_service.config import Settings
from chatmodel_service.observability.request_context import current_request
from chatmodel_service.redaction import SecretRedactor

ACCESS_LOGGER = "chatmodel_service.access"
# A text line after its time, before its fields (TextFormatter).
TEXT_FORMAT = "%(levelname)s %(name)s [%(request_id)s]: %(message)s"

# Attributes every LogRecord has; anything else on a record came from ``extra=``, except
# the mark LiteLLM's secret-redacting filter (on uvicorn's loggers, among others) sets and
# uvicorn's ``color_message`` (its message again, with ANSI colour codes in it).
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "litellm_redacted",
    "color_message",
}
# An ANSI escape sequence (CSI: colours, cursor moves), or a lone escape character.
_ANSI_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~])?")
# The colour of each level's name in text lines on a terminal (SGR codes).
_LEVEL_COLORS = {"DEBUG": "2", "INFO": "32", "WARNING": "33", "ERROR": "31", "CRITICAL": "1;31"}


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


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape codes."""
    return _ANSI_ESCAPE.sub("", text) if "\x1b" in text else text


def _plain(value: object) -> object:
    return strip_ansi(value) if isinstance(value, str) else value


def _extra_fields(record: logging.LogRecord) -> Iterator[tuple[str, object]]:
    """The fields a record got from ``extra=`` (and the request id), ANSI codes removed."""
    for name, value in vars(record).items():
        if name not in _RECORD_ATTRIBUTES and not name.startswith("_"):
            yield name, _plain(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the
    record's extra fields, and the traceback if there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": strip_ansi(record.getMessage()),
        }
        entry.update(_extra_fields(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:  # as a filter may have redacted it
            entry["exception"] = strip_ansi(record.exc_text)
        if record.stack_info:
            entry["stack"] = strip_ansi(self.formatStack(record.stack_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """One line per record for a person: local time, level, logger, request id (``-``
    outside a request), message, then the extra fields as ``key=value`` (strings with a
    space or a quote in JSON quotes; fields without a value left out); a traceback
    follows on its own lines. ``color`` colours the level and dims the rest around the
    message."""

    def __init__(self, *, color: bool = False) -> None:
        super().__init__()
        self.color = color

    def _paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created).astimezone()
        time = moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
        core = TEXT_FORMAT % {
            "levelname": self._paint(
                f"{record.levelname:<7}", _LEVEL_COLORS.get(record.levelname, "0")
            ),
            "name": self._paint(record.name, "2"),
            "request_id": getattr(record, "request_id", None) or "-",
            "message": strip_ansi(record.getMessage()),
        }
        line = f"{self._paint(time, '2')} {core}"
        fields = [
            f"{name}={_text_value(value)}"
            for name, value in _extra_fields(record)
            if name != "request_id" and value is not None
        ]
        if fields:
            line += " " + self._paint(" ".join(fields), "2")
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:  # as a filter may have redacted it
            line += "\n" + strip_ansi(record.exc_text)
        if record.stack_info:
            line += "\n" + strip_ansi(self.formatStack(record.stack_info))
        return line


def _text_value(value: object) -> str:
    """A field's value in a text line: bare when that reads unambiguously, else JSON."""
    if isinstance(value, str):
        bare = value and not any(c.isspace() or c in '"=' for c in value)
        return value if bare else json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(value, default=str, ensure_ascii=False)


def resolve_log_format(setting: Literal["auto", "json", "text"], stream: TextIO) -> str:
    """``json`` or ``text``: ``auto`` is ``text`` on a terminal, ``json`` otherwise."""
    if setting != "auto":
        return setting
    return "text" if _is_terminal(stream) else "json"


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Send every logger's records (uvicorn's too, when it is started with
    ``log_config=None``) to ``stream`` (stderr) in ``settings.log_format``, at
    ``settings.log_level``."""
    output = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(output)
    if resolve_log_format(settings.log_format, output) == "json":
        handler.setFormatter(JsonFormatter())
        handler.addFilter(RequestIdFilter())
    else:
        color = _is_terminal(output) and not settings.no_color and settings.terminal != "dumb"
        handler.setFormatter(TextFormatter(color=color))
        handler.addFilter(RequestIdFilter(outside="-"))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler], force=True)

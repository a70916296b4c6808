"""Which log lines ``chatmodel serve`` writes (``CHATMODEL_LOG_FORMAT``): JSON lines with no
ANSI codes and no ``color_message`` off a terminal, readable text lines (coloured only on a
terminal, never with ``NO_COLOR``), and the same secrets redacted in both."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chatmodel_service.config import Settings
from chatmodel_service.observability.logs import (
    JsonFormatter,
    RequestIdFilter,
    TextFormatter,
    configure_logging,
    redact_log_records,
)
from chatmodel_service.redaction import REDACTED, SecretRedactor
from tests.support.databases import sqlite_url
from tests.support.servers import serve_logged

# A secret of the server's environment (its name ends like a token's), and a path holding it.
TOKEN_VARIABLE = "LOGCHECK_SERVICE_TOKEN"
TOKEN = "tok4f9a8b7c6d5e4f3a2b1c0d"
TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"


def logged_lines(log: Path, wanted: str) -> list[str]:
    """The log's lines, once one holds ``wanted`` (the request line follows the response)."""
    for _ in range(100):
        lines = log.read_text().splitlines()
        if any(wanted in line for line in lines):
            return lines
        time.sleep(0.1)
    raise AssertionError(f"no line with {wanted!r} in:\n{log.read_text()}")


def test_json_lines_carry_no_color_message_and_no_escape_codes(tmp_path: Path) -> None:
    """Off a terminal the default (``auto``) is JSON; uvicorn's start lines have a
    ``color_message`` extra full of ANSI codes, which must not leak in."""
    for base_url, log in serve_logged(tmp_path, sqlite_url(tmp_path / "chat.db")):
        httpx.get(f"{base_url}/v1/chat-models", headers={"X-Request-ID": "json-1"}, timeout=30)
        lines = logged_lines(log, '"json-1"')
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    started = [e for e in entries if e["message"].startswith("Uvicorn running on ")]
    assert len(started) == 1, entries
    assert started[0]["message"].endswith("(Press CTRL+C to quit)")
    assert not [e for e in entries if "color_message" in e], entries
    text = log.read_text()
    assert "\x1b" not in text and "\\u001b" not in text


def test_text_format_is_one_readable_line_per_record_with_secrets_redacted(
    tmp_path: Path,
) -> None:
    settings = {"CHATMODEL_LOG_FORMAT": "text", TOKEN_VARIABLE: TOKEN}
    for base_url, log in serve_logged(tmp_path, sqlite_url(tmp_path / "chat.db"), settings):
        with httpx.Client(base_url=base_url, timeout=30) as http:
            http.get("/v1/chat-models", headers={"X-Request-ID": "text-1"})
            http.get(f"/v1/chat-models/{TOKEN}", headers={"X-Request-ID": "text-2"})
        lines = logged_lines(log, "[text-2]")

    (request,) = [line for line in lines if "[text-1]" in line]
    assert re.fullmatch(
        rf"{TIME} INFO    chatmodel_service\.access \[text-1\]: GET /v1/chat-models 200 "
        r"[\d.]+ ms method=GET route=/v1/chat-models path=/v1/chat-models status=200 "
        r"duration_ms=[\d.]+",
        request,
    ), request
    assert any(
        re.fullmatch(
            rf"{TIME} INFO    uvicorn\.error \[-\]: Uvicorn running on "
            r"http://127\.0\.0\.1:\d+ \(Press CTRL\+C to quit\)",
            line,
        )
        for line in lines
    ), lines
    (secret,) = [line for line in lines if "[text-2]" in line]
    assert f"path=/v1/chat-models/{REDACTED}" in secret and "status=404" in secret
    text = log.read_text()
    assert TOKEN not in text
    assert not [line for line in lines if line.startswith("{")]
    assert "\x1b" not in text  # text, but not on a terminal: no colours
    assert "color_message" not in text


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, its handlers and level put back after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def configured(stream: io.StringIO) -> str:
    """What one warning (with a field) writes to ``stream`` once logging is configured
    from the environment."""
    configure_logging(Settings(), stream)
    logging.getLogger("chatmodel_service.check").warning("careful", extra={"seen": 3})
    return stream.getvalue()


def test_auto_is_coloured_text_on_a_terminal_and_json_elsewhere(
    root_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("CHATMODEL_LOG_FORMAT", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")

    on_terminal = configured(Terminal())
    assert "\x1b[33mWARNING\x1b[0m" in on_terminal
    assert re.sub(r"\x1b\[[\d;]*m", "", on_terminal).endswith(
        "WARNING chatmodel_service.check [-]: careful seen=3\n"
    )
    elsewhere = json.loads(configured(io.StringIO()))
    assert (elsewhere["message"], elsewhere["seen"]) == ("careful", 3)
    monkeypatch.setenv("CHATMODEL_LOG_FORMAT", "json")
    forced = configured(Terminal())
    assert json.loads(forced)["level"] == "warning"


@pytest.mark.parametrize(("variable", "value"), [("NO_COLOR", "1"), ("TERM", "dumb")])
def test_no_colours_with_no_color_or_a_dumb_terminal(
    root_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.delenv("CHATMODEL_LOG_FORMAT", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv(variable, value)

    line = configured(Terminal())

    assert "\x1b" not in line
    assert line.endswith("WARNING chatmodel_service.check [-]: careful seen=3\n")


def test_text_lines_redact_secrets_as_json_lines_do(root_logger: logging.Logger) -> None:
    """The message, every string field (uvicorn's color_message too, never shown), the
    traceback: a secret goes from each, in text as in JSON."""
    outputs = {"text": io.StringIO(), "json": io.StringIO()}
    handlers = [logging.StreamHandler(stream) for stream in outputs.values()]
    handlers[0].setFormatter(TextFormatter())
    handlers[1].setFormatter(JsonFormatter())
    for handler in handlers:
        handler.addFilter(RequestIdFilter(outside="-"))
        root_logger.addHandler(handler)
    root_logger.setLevel(logging.INFO)
    stop_redacting = redact_log_records(SecretRedactor({TOKEN}))
    logger = logging.getLogger("chatmodel_service.check")
    try:
        logger.info(
            "calling with %s",
            TOKEN,
            extra={"color_message": f"calling with \x1b[36m{TOKEN}\x1b[0m", "used": TOKEN},
        )
        try:
            raise RuntimeError(f"refused {TOKEN}")
        except RuntimeError:
            logger.exception("the call failed")
    finally:
        stop_redacting()

    text, lines = outputs["text"].getvalue(), outputs["json"].getvalue()
    assert f"[-]: calling with {REDACTED} used={REDACTED}\n" in text
    assert f"RuntimeError: refused {REDACTED}" in text
    for output in (text, lines):
        assert TOKEN not in output
        assert "color_message" not in output and "\x1b" not in output

"""The argument types of the ``chatmodel`` command line: each checks a value, and turns it
into what is sent, before anything is sent (argparse reports a bad one with status 2).

Versions are written as the tables print them or as plain numbers (``v3`` or ``3``),
releases as a number (``#7`` or ``7``) or an id.
"""

from __future__ import annotations

import argparse
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def param(text: str) -> tuple[str, Any]:
    """``key=value``; the value is JSON when it parses (0.2, ["x"], true), else a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


def _without_v(text: str) -> str:
    """``v3`` -> ``3``: a version as the tables print it."""
    text = text.strip()
    return text[1:] if text[:1] in ("v", "V") else text


def version_number(text: str) -> int:
    """A version: ``3`` or ``v3``."""
    digits = _without_v(text)
    if not digits.isdigit() or int(digits) < 1:
        raise argparse.ArgumentTypeError(f"not a version number (3 or v3): {text!r}")
    return int(digits)


# Label names as the server takes them; "v3" is read as version 3, not a label.
_LABEL = re.compile(r"[a-z][a-z0-9_-]{0,39}")
_VERSION = re.compile(r"v?[0-9]+")


def version_selector(text: str) -> int | str:
    """``3``, ``v3``, ``latest`` or a label: ``deploy`` (the published one, also spelled
    ``production``), ``staging`` or an admin-defined one."""
    if text == "latest" or (_LABEL.fullmatch(text) and not _VERSION.fullmatch(text)):
        return text
    try:
        return version_number(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a version number (3 or v3), 'latest' or a label (deploy, staging, "
            f"...), not {text!r}"
        ) from None


def label(text: str) -> str:
    """A release label: ``production`` (or ``deploy``), ``staging`` or an admin-defined
    name (lower-case; the server checks the rest)."""
    if not _LABEL.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"not a label name (a lower-case letter, then letters, digits, '_' or '-'): {text!r}"
        )
    return text


def weights(text: str) -> dict[str, int]:
    """``3=50,4=50`` (or ``v3=50,v4=50``) -> ``{"3": 50, "4": 50}`` (the server checks the
    numbers)."""
    weights: dict[str, int] = {}
    for item in text.split(","):
        version, sep, weight = item.strip().partition("=")
        digits = _without_v(version)
        if not sep or not digits.isdigit() or not weight.strip().lstrip("-").isdigit():
            raise argparse.ArgumentTypeError(f"expected VERSION=PERCENT[,...], not {text!r}")
        weights[str(int(digits))] = int(weight)
    return weights


ReleaseRef = int | uuid.UUID


def release_ref(text: str) -> ReleaseRef:
    """A release as the tables show it (``7`` or ``#7``), or its id."""
    number = text.strip().removeprefix("#")
    if number.isdigit() and int(number) >= 1:
        return int(number)
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a release number (7 or #7) or a release id, not {text!r}"
        ) from None


def variable(text: str) -> tuple[str, str]:
    """``KEY=VALUE``: a template variable's value, always text."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    return key, raw


@dataclass(frozen=True)
class Retention:
    """``--retention-days``: a number of days, or ``None`` (``none``: kept forever)."""

    days: int | None


def retention(text: str) -> Retention:
    if text.strip().lower() in ("none", "null", "forever"):
        return Retention(None)
    return Retention(positive_int(text))


def when(text: str) -> str:
    """An ISO date or datetime, checked here and sent as written."""
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO date (2026-11-01) or datetime (2026-11-01T12:00:00Z), not {text!r}"
        ) from None
    return text

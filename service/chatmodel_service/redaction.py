"""Keep the server's secrets out of everything it returns, stores or logs.

Two nets, applied in this order by :class:`SecretRedactor`:

* **by value**: every secret the server holds (``config.server_secrets``: the provider
  keys in its environment, the database password, ...) is replaced wherever it shows,
  in any spelling a provider may echo it in: raw, URL-encoded (``%2D`` or ``%2d``, ``+``
  for a space, any character encoded or not) and JSON-escaped (``\\"``, ``\\\\``,
  ``\\/``, ``\\u002d``, at any depth of a JSON string inside a JSON string). A secret cut
  short by a length limit (``…`` right after its first characters) goes too;
* **by shape** (:func:`scrub_secrets`): what looks like a key whatever its value, for
  keys the server never held (``sk-…``, ``Bearer …``, ``api_key=…``, ``AIza…``, our own
  ``cm_<prefix>_<secret>`` keys, which the server keeps only hashed).

Values shorter than :data:`MIN_SECRET_CHARS` are never redacted by value: a short
setting (``abc``, ``true``) is a word in ordinary text, and hiding it would garble
messages without protecting anything.
"""

from __future__ import annotations

import re
from collections.abc import Collection

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 8
CUT_MARK = "…"  # what a text cut short ends with (``llm.outcomes.provider_text``)
MIN_CUT_CHARS = 4  # a secret's first characters before a cut that are redacted

# Key shapes: (pattern, replacement, markers). Every match holds one of the markers (case
# folded): a text holding none, as most log lines, is not searched.
_SHAPES: tuple[tuple[re.Pattern[str], str, tuple[str, ...]], ...] = (
    (re.compile(r"\b(sk|pk|rk|sess)-[A-Za-z0-9_\-]{6,}"), REDACTED, ("k-", "ss-")),
    # RFC 6750 b64token: base64 tokens carry '+', '/' and '~' too.
    (
        re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9_\-.~+/=]{6,}"),
        rf"\1 {REDACTED}",
        ("bearer",),
    ),
    # The value after a credential-ish name; an auth scheme before it is kept, the
    # credential after the scheme is not ("Authorization: Basic dXNl..." leaked before).
    (
        re.compile(
            r"(?i)(api[_-]?key|x-api-key|authorization|token|secret)(['\"]?\s*[:=]\s*['\"]?)"
            r"((?:bearer|basic)\s+)?[^\s'\",}]+"
        ),
        rf"\1\2\3{REDACTED}",
        ("api", "authorization", "token", "secret"),
    ),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"), REDACTED, ("aiza",)),
    # Our own API keys (cm_<prefix>_<secret>), should one ever be echoed back.
    (re.compile(r"\bcm_[0-9a-f]{8}_[A-Za-z0-9_\-]{20,}"), REDACTED, ("cm_",)),
)


def scrub_secrets(text: str) -> str:
    """Replace anything that looks like a key or bearer token with ``[redacted]``."""
    folded = text.casefold()  # as (?i) matches: the long s (U+017F) is an "s" to it
    for pattern, replacement, markers in _SHAPES:
        if any(marker in folded for marker in markers):
            text = pattern.sub(replacement, text)
    return text


def _any_case(hex_digits: str) -> str:
    return "".join(f"[{d.lower()}{d.upper()}]" if d.isalpha() else d for d in hex_digits)


def _char_pattern(char: str) -> str:
    """Every spelling of one character of a secret. ASCII letters and digits are spelt
    as themselves by every encoder; anything else may also be percent-encoded (each UTF-8
    byte, either hex case) or JSON-escaped, once or as often as JSON strings nest (so any
    run of backslashes before it, or before its ``\\uXXXX``)."""
    if char.isascii() and char.isalnum():
        return char
    spellings = [r"\\+" if char == "\\" else r"\\*" + re.escape(char)]
    utf16 = char.encode("utf-16-be")  # 2 bytes, or 4: JSON writes a surrogate pair
    units = (utf16[i : i + 2].hex() for i in range(0, len(utf16), 2))
    spellings.append("".join(r"\\+u" + _any_case(unit) for unit in units))
    spellings.append("".join("%" + _any_case(f"{byte:02x}") for byte in char.encode()))
    json_escape = {"\n": "n", "\r": "r", "\t": "t", "\b": "b", "\f": "f"}.get(char)
    if json_escape:
        spellings.append(r"\\+" + json_escape)
    if char == " ":
        spellings.append(r"\+")  # form encoding (quote_plus)
    return "(?:" + "|".join(spellings) + ")"


def secret_pattern(secret: str) -> str:
    """A regular expression matching ``secret`` in every spelling (see module doc)."""
    return "".join(_char_pattern(char) for char in secret)


class SecretRedactor:
    """Redacts a fixed set of secrets by value, then anything shaped like a key.

    Built once per app at start (``app.create_app``'s lifespan) from
    ``config.server_secrets``; one compiled expression holds every secret, longest first,
    so a secret that contains another is redacted whole.
    """

    def __init__(self, secrets: Collection[str] = ()) -> None:
        kept = sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)
        self._secrets = tuple(kept)
        self._values = re.compile("|".join(secret_pattern(s) for s in kept)) if kept else None
        # Letters and digits are spelt as themselves in every spelling: a text holding no
        # secret's longest run of them holds no secret, and is not searched (most texts).
        self._anchors = tuple(max(re.findall("[A-Za-z0-9]+", s), key=len, default="") for s in kept)

    def redact(self, text: str) -> str:
        """``text`` without any of the secrets, in any spelling, nor anything key-shaped."""
        if self._values is not None and any(anchor in text for anchor in self._anchors):
            text = self._values.sub(REDACTED, text)
        if self._secrets:
            text = self._without_cut_secrets(text)
        return scrub_secrets(text)

    def _without_cut_secrets(self, text: str) -> str:
        """A secret whose first characters end a text cut short (``…``) is redacted."""
        if CUT_MARK not in text:
            return text
        pieces = text.split(CUT_MARK)
        for index, piece in enumerate(pieces[:-1]):
            pieces[index] = self._without_secret_start(piece)
        return CUT_MARK.join(pieces)

    def _without_secret_start(self, piece: str) -> str:
        for secret in self._secrets:
            tail = piece[-(len(secret) - 1) :]
            for start in range(len(tail) - MIN_CUT_CHARS + 1):
                if secret.startswith(tail[start:]):
                    return piece[: len(piece) - len(tail) + start] + REDACTED
        return piece

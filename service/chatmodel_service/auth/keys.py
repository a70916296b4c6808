"""Our API keys: ``cm_<prefix>_<secret>``. Only the sha256 of the whole key is stored.

The secret is 32 random bytes, so a fast hash is the right one (nothing to brute-force);
the 8-character prefix is stored in clear to find the row and to recognise a key in lists.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

KEY_PATTERN = re.compile(r"cm_([0-9a-f]{8})_[A-Za-z0-9_\-]{40,100}")


@dataclass(frozen=True)
class NewKey:
    key: str  # shown once, never stored
    prefix: str
    hash: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> NewKey:
    prefix = secrets.token_hex(4)
    key = f"cm_{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(key=key, prefix=prefix, hash=hash_key(key))


def key_prefix(key: str) -> str | None:
    """The prefix of a well-formed key, else None."""
    match = KEY_PATTERN.fullmatch(key)
    return match.group(1) if match else None


def matches(key: str, stored_hash: str) -> bool:
    """Constant-time comparison of ``key`` with a stored hash."""
    return hmac.compare_digest(hash_key(key), stored_hash)

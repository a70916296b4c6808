"""Sticky traffic splits: which version of a split release a new session gets.

Pure functions, no I/O. The same key always lands on the same version for the same
weights, on every server and in every process (sha256, not Python's salted ``hash``),
so a user keeps seeing one side of an A/B test.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping

BUCKETS = 100


def bucket(key: str) -> int:
    """A stable bucket 0..99 for ``key``."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def pick_version(weights: Mapping[int, int], key: str) -> int:
    """The version number whose share of the buckets holds ``key``'s bucket.

    ``weights`` maps version numbers to percentages summing to 100; buckets are handed
    out in version-number order (v3 gets 0..49 and v4 50..99 for ``{3: 50, 4: 50}``).
    """
    if not weights:
        raise ValueError("pick_version needs at least one weighted version")
    point = bucket(key)
    cumulative = 0
    for number in sorted(weights):
        cumulative += weights[number]
        if point < cumulative:
            return number
    # Only reachable for weights summing under 100, which the API never stores.
    return max(weights)


def assignment_key(session_uuid: uuid.UUID, metadata: Mapping[str, object]) -> str:
    """The session metadata's ``user_id`` (all of a user's sessions land together), else the
    session's uuid."""
    user_id = metadata.get("user_id")
    if user_id is None or user_id == "":
        return str(session_uuid)
    return str(user_id)

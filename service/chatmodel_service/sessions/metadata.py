"""What the server reads in a session's free-form metadata: ``user_id``, which keeps a
user on one side of a split (``releases.assignment``) and which the admin listing shows
and filters on (``chat_session.user_id``, written with every write of the metadata)."""

from __future__ import annotations

from collections.abc import Mapping

# The longest user_id the listing keeps and filters on (the column's width).
MAX_USER_ID = 200


def metadata_user_id(metadata: Mapping[str, object] | None) -> str | None:
    """``metadata.user_id`` as the listing keeps it: a string as it is, an integer as its
    digits (``42`` and ``"42"`` are one user, as for a split); None for any other value,
    an empty string, or more than ``MAX_USER_ID`` characters. Revision 0018 fills the
    column of older sessions by the same rule."""
    value = (metadata or {}).get("user_id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    return text if 0 < len(text) <= MAX_USER_ID else None

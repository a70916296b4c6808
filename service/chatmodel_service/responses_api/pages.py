"""Cursor pages of items, as OpenAI's list endpoints answer them: ``after`` (an item id),
``limit`` (1-100, default 20), ``order`` (``desc``, the default, is newest first), and
``first_id``/``last_id``/``has_more``. No I/O here."""

from __future__ import annotations

from collections.abc import Sequence

from chatmodel_service.errors import InvalidInput
from chatmodel_service.responses_api.schemas import Item, ItemPage


def page(items: Sequence[Item], limit: int, *, more: bool = False) -> ItemPage:
    """``items`` (already in the page's order) cut to ``limit``; ``more``: items beyond
    those given exist."""
    data = list(items[:limit])
    return ItemPage(
        data=data,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
        has_more=more or len(items) > limit,
    )


def after_item(items: Sequence[Item], after: str | None) -> list[Item]:
    """The items after the one with id ``after`` (oldest-first or newest-first, as given)."""
    if after is None:
        return list(items)
    for position, item in enumerate(items):
        if item.id == after:
            return list(items[position + 1 :])
    raise InvalidInput(f"No item '{after}' in this list.", field="after")


def page_of(
    items: Sequence[Item], *, after: str | None, limit: int, newest_first: bool
) -> ItemPage:
    """A page of a list held in memory (``items`` oldest first)."""
    ordered = list(reversed(items)) if newest_first else list(items)
    return page(after_item(ordered, after), limit)

"""Release labels: named pointers to what new sessions get, each with its own history.

``production`` (what "deploy" has always meant) and ``staging`` always exist, empty until
published to; admin-defined labels come into being with their first release. ``deploy``
is an alias of ``production`` wherever a label is named. A label name is lower-case
(``LABEL_PATTERN``), so it is never a version number; ``latest`` (the newest version),
``deploy`` (the alias) and ``all`` (every label, in listings) are not label names.

A chat model is named with a version selector after an ``@`` on the OpenAI-compatible
and Responses routes: ``support_bot@staging``, ``support_bot@3``, ``support_bot@latest``
(chat model names never contain ``@``); ``chat_models.schemas.parse_selector`` reads the
part after it. Pure, no I/O, no imports of the service (the schemas import it).
"""

from __future__ import annotations

import re
from typing import Final

PRODUCTION: Final = "production"
STAGING: Final = "staging"
BUILT_IN_LABELS: Final = (PRODUCTION, STAGING)
DEPLOY_ALIAS: Final = "deploy"
ALL_LABELS: Final = "all"
LABEL_PATTERN: Final = r"^[a-z][a-z0-9_-]{0,39}$"
# Lower-case words that mean something else where a label could be named.
RESERVED: Final = frozenset({"latest", DEPLOY_ALIAS, ALL_LABELS})

_LABEL = re.compile(LABEL_PATTERN)


def canonical_label(name: str) -> str:
    """``deploy`` -> ``production``; any other name as it is."""
    return PRODUCTION if name == DEPLOY_ALIAS else name


def label_problem(name: str) -> str | None:
    """Why ``name`` cannot be published to (None: it can; ``deploy`` is ``production``)."""
    if not _LABEL.fullmatch(name):
        return (
            f"'{name}' is not a label name: a lower-case letter, then up to 39 lower-case "
            "letters, digits, '_' or '-'."
        )
    if name in RESERVED - {DEPLOY_ALIAS}:
        return f"'{name}' is reserved and cannot name a label."
    return None


def split_model(model: str) -> tuple[str, str | None]:
    """``support_bot@staging`` -> (``support_bot``, ``staging``); without ``@``, (model,
    None). The selector is split off the last ``@`` and not checked here."""
    name, at, selector = model.rpartition("@")
    if not at:
        return model, None
    return name, selector

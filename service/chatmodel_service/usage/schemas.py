"""Wire format of ``GET /v1/usage``, and the ``group_by`` it takes: one grouping or
several joined by commas (``version,day``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

GroupBy = Literal["version", "day", "key"]
GROUPINGS: tuple[GroupBy, ...] = ("version", "day", "key")


def parse_group_by(text: str) -> tuple[GroupBy, ...]:
    """The groupings ``text`` names, in its order: ``version``, ``day`` or ``key``, or
    several of them joined by commas. ValueError for an unknown or a repeated name."""
    chosen: list[GroupBy] = []
    for part in text.split(","):
        name = part.strip()
        grouping = next((known for known in GROUPINGS if known == name), None)
        if grouping is None:
            raise ValueError(
                f"{name!r} is not a grouping: use version, day or key, or several joined "
                "by commas (version,day)"
            )
        if grouping in chosen:
            raise ValueError(f"{name!r} is named twice")
        chosen.append(grouping)
    return tuple(chosen)


def _checked_group_by(text: str) -> str:
    return ",".join(parse_group_by(text))


# The query parameter: checked (a bad one is a 422 naming ``group_by``), written back
# without spaces.
GroupByParam = Annotated[str, AfterValidator(_checked_group_by)]


class UsageFigures(BaseModel):
    runs: int = Field(description="Runs started in the window (a session's or without one).")
    errors: int = Field(description="Runs that failed.")
    error_rate: float | None = Field(
        default=None, description="errors / runs, from 0 to 1; null when there were no runs."
    )
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float | None = Field(description="Sum of the runs' prices; null if none was priced.")
    latency_p95_ms: int | None = Field(
        default=None,
        description="Nearest-rank 95th percentile of the runs' latency, failed runs "
        "included (as a version's stats count it); null when there were no runs.",
    )


class UsageGroup(UsageFigures):
    """One group's figures; the fields of its ``group_by`` name it, the others are null."""

    chat_model: str | None = Field(default=None, description="`version` grouping.")
    version: int | None = Field(default=None, description="`version` grouping.")
    day: dt.date | None = Field(default=None, description="`day` grouping: a UTC day.")
    key_name: str | None = Field(
        default=None,
        description="`key` grouping: the API key's name; null for runs made without a key.",
    )


class UsageReport(BaseModel):
    chat_model: str | None = Field(description="The chat model asked for; null: all of them.")
    from_: dt.datetime = Field(serialization_alias="from", description="Window start (UTC).")
    to: dt.datetime = Field(description="Window end (UTC), excluded.")
    group_by: str = Field(
        description="The groupings asked for, joined by commas: `version`, `day`, `key` "
        "or several, e.g. `version,day`."
    )
    data: list[UsageGroup]
    total: UsageFigures

"""Wire format of ``GET /v1/usage``."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

GroupBy = Literal["version", "day", "key"]


class UsageFigures(BaseModel):
    runs: int = Field(description="Runs started in the window (a session's or without one).")
    errors: int = Field(description="Runs that failed.")
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float | None = Field(description="Sum of the runs' prices; null if none was priced.")


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
    group_by: GroupBy
    data: list[UsageGroup]
    total: UsageFigures

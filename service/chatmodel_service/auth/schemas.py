"""Wire formats for API keys and projects."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

KeyScope = Literal["admin", "client"]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
Name = Field(min_length=1, max_length=100, pattern=NAME_PATTERN)


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Name
    scope: KeyScope = "client"


class KeyOut(BaseModel):
    id: uuid.UUID
    project: str
    name: str
    scope: KeyScope
    prefix: str = Field(description="The visible part of the key: cm_<prefix>_...")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    key: str = Field(description="The key itself, shown this once: store it now.")


class KeyList(BaseModel):
    data: list[KeyOut]


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Name
    # The same rule as KeyCreate.name: this becomes that key's name.
    admin_key_name: str = Field(
        default="admin",
        min_length=1,
        max_length=100,
        pattern=NAME_PATTERN,
        description="Name of its first key.",
    )


class ProjectOut(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime


class ProjectCreated(ProjectOut):
    admin_key: KeyCreated = Field(description="The new project's first admin key (shown once).")


class ProjectList(BaseModel):
    data: list[ProjectOut]

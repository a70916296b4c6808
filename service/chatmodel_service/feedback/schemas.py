"""Wire formats for feedback: a named score given to a session or to one of its messages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from chatmodel_service.sessions.schemas import StrictModel

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$"
MAX_NAME = 100
MAX_CATEGORY = 200
MAX_COMMENT = 2000
MAX_BY = 200

FeedbackKind = Literal["boolean", "number", "category"]
# true/false, a finite number, or a category's text ("1" is a category, 1 a number).
FeedbackValue = bool | float | Annotated[str, Field(min_length=1, max_length=MAX_CATEGORY)]
ScoreName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_NAME,
        pattern=NAME_PATTERN,
        description="What is scored, e.g. thumbs, rating or resolved: a letter or digit, "
        "then letters, digits, _ . : or -.",
    ),
]


class FeedbackIn(StrictModel):
    """One named score. Sending it again with the same ``id`` replaces what it says."""

    id: UUID | None = Field(
        default=None,
        description="The client's id for this feedback, unique in the project: giving it "
        "again updates that feedback (of the same session or message). Default: a new one.",
    )
    name: ScoreName
    value: FeedbackValue = Field(
        description="true/false, a number, or a category (a string of 1 to 200 characters)."
    )
    comment: str | None = Field(default=None, max_length=MAX_COMMENT)
    by: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_BY,
        description="Who gave it, in the caller's own terms (a user id, an email...).",
    )


class FeedbackOut(BaseModel):
    id: UUID
    session_uuid: UUID
    message_uuid: UUID | None = Field(description="The message scored; null: the session.")
    name: str
    kind: FeedbackKind = Field(description="What the value is: boolean, number or category.")
    value: bool | int | float | str = Field(
        description="As given (a whole number comes back without a fraction)."
    )
    comment: str | None
    by: str | None
    key_name: str | None = Field(description="The name of the API key that gave it.")
    created_at: datetime
    updated_at: datetime


class FeedbackList(BaseModel):
    data: list[FeedbackOut] = Field(description="Oldest first.")


class FeedbackFigures(BaseModel):
    """A version's feedback of one score name."""

    count: int
    mean: float | None = Field(
        description="The mean of its boolean (true as 1, false as 0) and number values; "
        "null when it has none."
    )
    categories: dict[str, int] = Field(description="How many times each category was given.")

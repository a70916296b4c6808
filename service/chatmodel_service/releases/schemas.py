"""Wire formats for publishing, rollbacks, release history, version figures and diffs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
)

from chatmodel_service.chat_models.schemas import MAX_NUMBER
from chatmodel_service.feedback.schemas import FeedbackFigures
from chatmodel_service.releases.labels import PRODUCTION, canonical_label, label_problem

ReleaseKind = Literal["publish", "split", "rollback"]
RELEASE_KINDS: tuple[ReleaseKind, ...] = ("publish", "split", "rollback")

VersionNumber = Annotated[int, Field(ge=1, le=MAX_NUMBER)]
Weight = Annotated[int, Field(ge=1, le=100)]


def _label_name(name: str) -> str:
    problem = label_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return canonical_label(name)


LabelName = Annotated[
    str,
    Field(
        max_length=40,
        description='The label: "production" (also spelled "deploy"), "staging" or an '
        "admin-defined name (created by its first release): a lower-case letter, then up to "
        "39 lower-case letters, digits, '_' or '-'; not \"latest\" or \"all\".",
    ),
    AfterValidator(_label_name),
]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReleaseChange(StrictModel):
    """What every release-changing request carries besides its versions."""

    label: LabelName = PRODUCTION
    expected_release: UUID | None = Field(
        default=None,
        description="The id of the release you believe is the label's current one; if "
        "another release has been made to that label since, the request fails with 409 "
        "stale_release and changes nothing.",
    )
    note: str = Field(default="", max_length=10_000)
    by: str | None = Field(default=None, max_length=200, description="Who did it (free text).")


class PublishRequest(ReleaseChange):
    """Exactly one of ``version`` (one version gets all traffic) or ``weights`` (a split)."""

    version: VersionNumber | None = None
    weights: dict[VersionNumber, Weight] | None = Field(
        default=None,
        validate_default=True,
        description='Version number -> percent of new sessions, e.g. {"3": 50, "4": 50}: '
        "at least two versions, each 1..100, summing to 100. The versions must declare the "
        "same template variables (else 422 variables_mismatch).",
    )
    allow_variable_mismatch: bool = Field(
        default=False,
        description="Publish a split whose versions declare different template variables "
        "anyway. Session creation then fails for the side whose variables a client does not "
        "send; the release's warnings say which. Only for clients that cope with that.",
    )

    @field_validator("weights")
    @classmethod
    def _one_way_to_publish(
        cls, weights: dict[int, int] | None, info: ValidationInfo
    ) -> dict[int, int] | None:
        if "version" not in info.data:
            return weights  # ``version`` itself was invalid and is reported on its own
        version = info.data["version"]
        if version is None and weights is None:
            raise ValueError("give 'version' (one version) or 'weights' (a split)")
        if version is not None and weights is not None:
            raise ValueError("give 'version' or 'weights', not both")
        if weights is None:
            return None
        if len(weights) < 2:
            raise ValueError("a split needs at least two versions; publish one with 'version'")
        total = sum(weights.values())
        if total != 100:
            raise ValueError(f"the weights must sum to 100, not {total}")
        return weights


class RollbackRequest(ReleaseChange):
    pass


class ReleaseWarning(BaseModel):
    code: Literal["variables_mismatch", "variables_changed"] = Field(
        description='"variables_mismatch": the split\'s versions declare different template '
        'variables; "variables_changed": new sessions need other variables than under the '
        "release this one replaced."
    )
    detail: str = Field(description="Which versions, which variables, and what fails.")


class ReleaseOut(BaseModel):
    id: UUID
    release: int = Field(
        description="1, 2, 3... per chat model, across labels; a label's highest is its "
        "current release."
    )
    chat_model: str
    label: str = Field(description='"production", "staging" or an admin-defined label.')
    kind: ReleaseKind
    versions: dict[int, int] = Field(description="Version number -> percent of new sessions.")
    previous_versions: dict[int, int] = Field(
        description="The versions of the label's release this one replaced ({} for the "
        "label's first)."
    )
    published_by: str | None
    key_name: str | None = Field(default=None, description="The API key that made it.")
    note: str
    created_at: datetime
    warnings: list[ReleaseWarning] = Field(
        default_factory=list,
        description="What this release means for clients creating sessions, next to the "
        "release it replaced (empty when nothing changes for them). Sessions created "
        "already keep their versions.",
    )


class ReleaseList(BaseModel):
    data: list[ReleaseOut] = Field(description="Newest first.")


class LatencyStats(BaseModel):
    mean: float | None = Field(description="Over all runs, failed ones included.")
    p95: int | None = Field(description="Nearest-rank 95th percentile.")


class VersionStats(BaseModel):
    version: int
    sessions: int
    runs: int
    errors: int = Field(description="Runs that failed.")
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float | None = Field(description="Sum of the runs' prices; null if none was priced.")
    latency_ms: LatencyStats
    feedback: dict[str, FeedbackFigures] = Field(
        description="Feedback given in the version's sessions (while pinned to it), per score name."
    )


class FieldChange(BaseModel):
    field: str = Field(description='"model", "api_base", "params.<key>", "functions", ...')
    from_: JsonValue = Field(serialization_alias="from")
    to: JsonValue


class VersionDiff(BaseModel):
    from_: int = Field(serialization_alias="from")
    to: int
    system_prompt_diff: list[str] = Field(description="Unified diff lines (empty if equal).")
    changes: list[FieldChange]

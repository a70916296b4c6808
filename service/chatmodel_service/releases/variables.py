"""What a release does to the template variables new sessions must send.

A session is given its version when it is created and must fill in exactly the variables
that version declares (``chat_models.templates.check_values``). So a split whose versions
declare different variables fails session creation for one side, and publishing versions
that declare other variables than the release they replace breaks every client still
sending the old ones. Pure functions over the versions; the texts are written to read
well on their own, as the command line prints them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from chatmodel_service.models import ChatModelVersion
from chatmodel_service.releases.schemas import ReleaseWarning

Names = frozenset[str]


def declared(version: ChatModelVersion) -> Names:
    """The variables a version declares (none for a plain prompt)."""
    return frozenset(version.variables or ())


def _braced(names: Names) -> str:
    return "{" + ", ".join(sorted(names)) + "}"


def _declares(names: Names, *, plural: bool) -> str:
    verb = "declare" if plural else "declares"
    return f"{verb} {_braced(names)}" if names else f"{verb} none"


def _versions(numbers: Sequence[int]) -> str:
    if len(numbers) == 1:
        return f"version {numbers[0]}"
    return "versions " + ", ".join(map(str, numbers[:-1])) + f" and {numbers[-1]}"


def _groups(versions: Iterable[ChatModelVersion]) -> dict[Names, list[int]]:
    """Version numbers by the variables they declare, in version-number order."""
    groups: dict[Names, list[int]] = {}
    for version in sorted(versions, key=lambda v: v.number):
        groups.setdefault(declared(version), []).append(version.number)
    return groups


def _would_fail(sent: Names, others: dict[Names, list[int]]) -> str:
    """'sessions created with variables {plan} would fail on version 2, which declares none'"""
    who = (
        f"sessions created with variables {_braced(sent)}"
        if sent
        else ("sessions created without variables")
    )
    where = " and on ".join(
        f"{_versions(numbers)}, which {_declares(names, plural=len(numbers) > 1)}"
        for names, numbers in others.items()
    )
    return f"{who} would fail on {where}"


def _consequences(groups: dict[Names, list[int]]) -> str:
    return "; ".join(
        _would_fail(names, {other: n for other, n in groups.items() if other != names})
        for names in groups
    )


def split_mismatch(versions: Sequence[ChatModelVersion]) -> str | None:
    """Why a split of ``versions`` breaks session creation, or None if they all declare the
    same variables."""
    groups = _groups(versions)
    if len(groups) < 2:
        return None
    each = ", ".join(
        f"{_versions(numbers)} {_declares(names, plural=len(numbers) > 1)}"
        for names, numbers in groups.items()
    )
    return (
        f"The versions of this split declare different template variables ({each}), and a "
        f"new session must send exactly the variables of the version it is given: "
        f"{_consequences(groups)}."
    )


def release_warnings(
    previous: Sequence[ChatModelVersion] | None,
    chosen: Sequence[ChatModelVersion],
    *,
    previous_release: int | None = None,
) -> list[ReleaseWarning]:
    """What a new release of ``chosen`` means for clients creating sessions, next to the
    ``previous`` release's versions (None when nothing was published): a mixed split, and
    variables that clients sending the previous release's ones no longer match."""
    warnings: list[ReleaseWarning] = []
    mixed = split_mismatch(chosen)
    if mixed is not None:
        warnings.append(ReleaseWarning(code="variables_mismatch", detail=mixed))
    if not previous:
        return warnings
    before = _groups(previous)
    after = _groups(chosen)
    # Clients sending variables some new version declares are covered by ``mixed``; these
    # send variables no new version accepts.
    failing = [_would_fail(names, after) for names in before if names not in after]
    if failing:
        replaced = f"release {previous_release}" if previous_release else "the previous release"
        was = ", ".join(
            f"{_versions(numbers)} {_declares(names, plural=len(numbers) > 1)}"
            for names, numbers in before.items()
        )
        warnings.append(
            ReleaseWarning(
                code="variables_changed",
                detail=(
                    f"New sessions need other template variables than under {replaced} "
                    f"({was}): {'; '.join(failing)}. Sessions created already keep their "
                    f"versions."
                ),
            )
        )
    return warnings

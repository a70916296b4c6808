"""Forking a session (a new session holding a copy of the original's first messages) and
deleting one with everything that belongs to it. Never commits."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.errors import Conflict, InvalidInput, SessionBusy, SessionNotFound
from chatmodel_service.models import ChatSession
from chatmodel_service.models.base import utcnow
from chatmodel_service.sessions.lifecycle_repository import SessionLifecycleRepository
from chatmodel_service.sessions.repository import LoadedSession, SessionRepository
from chatmodel_service.sessions.schemas import SessionFork, SessionOut
from chatmodel_service.sessions.service import require_session, session_out


async def fork_session(
    db: AsyncSession, project_id: uuid.UUID, session_uuid: uuid.UUID, body: SessionFork
) -> tuple[SessionOut, bool]:
    """Copy the session's messages up to ``at_message_uuid``/``at_seq`` (default: all of
    them) into a new session, in one statement. The copies get new uuids and keep their
    seq, content, calls, metadata and superseded flags; runs stay with the original.

    Reads committed data only, so a run in progress on the original does not stand in
    the way. Forking again with the same ``session_uuid`` at the same point returns the
    fork made before. Returns the fork and whether this call created it."""
    sessions = SessionRepository(db)
    lifecycle = SessionLifecycleRepository(db)
    original = await require_session(sessions, project_id, session_uuid)
    at_seq = await _fork_point(sessions, lifecycle, original.session.id, session_uuid, body)
    if body.session_uuid is not None:
        earlier = await _earlier_fork(sessions, project_id, body.session_uuid, session_uuid, at_seq)
        if earlier is not None:
            return earlier, False
    fork = ChatSession(
        id=uuid.uuid4(),
        uuid=body.session_uuid or uuid.uuid4(),
        project_id=project_id,
        chat_model_id=original.session.chat_model_id,
        version_id=original.session.version_id,
        meta=dict(original.session.meta) if body.metadata is None else body.metadata,
        variables=original.session.variables,
        parent_session_id=session_uuid,
        parent_seq=at_seq,
    )
    if not await sessions.add_unless_exists(fork):  # the uuid was taken meanwhile
        earlier = await _earlier_fork(sessions, project_id, fork.uuid, session_uuid, at_seq)
        if earlier is None:  # taken, then deleted again since
            raise _not_this_fork(fork.uuid, session_uuid, at_seq)
        return earlier, False
    await lifecycle.copy_messages(original.session.id, fork.id, at_seq)
    return session_out(LoadedSession(fork, original.version, original.chat_model)), True


async def _fork_point(
    sessions: SessionRepository,
    lifecycle: SessionLifecycleRepository,
    session_id: uuid.UUID,
    session_uuid: uuid.UUID,
    body: SessionFork,
) -> int:
    """The last seq the fork copies (0: the original has no messages yet)."""
    if body.at_message_uuid is not None:
        seq = await lifecycle.message_seq(session_id, body.at_message_uuid)
        if seq is None:
            raise InvalidInput(
                f"Session {session_uuid} has no message {body.at_message_uuid}.",
                field="at_message_uuid",
            )
        return seq
    last = await sessions.last_seq(session_id)
    if body.at_seq is not None and body.at_seq > last:
        raise InvalidInput(
            f"at_seq {body.at_seq} is past the session's newest message (seq {last}).",
            field="at_seq",
        )
    return last if body.at_seq is None else body.at_seq


async def _earlier_fork(
    sessions: SessionRepository,
    project_id: uuid.UUID,
    fork_uuid: uuid.UUID,
    parent_uuid: uuid.UUID,
    at_seq: int,
) -> SessionOut | None:
    """The project's session with this uuid if it is the same fork (same parent, same
    point); 409 if it is any other session; None if the project has no session with it."""
    existing = await sessions.get_with_version(project_id, fork_uuid)
    if existing is None:
        return None
    same = (existing.session.parent_session_id, existing.session.parent_seq)
    if same != (parent_uuid, at_seq):
        raise _not_this_fork(fork_uuid, parent_uuid, at_seq)
    return session_out(existing)


def _not_this_fork(fork_uuid: uuid.UUID, parent_uuid: uuid.UUID, at_seq: int) -> Conflict:
    """Another of the project's sessions has the fork's uuid."""
    return Conflict(
        f"Session {fork_uuid} already exists and is not this fork of {parent_uuid} at "
        f"seq {at_seq}.",
        field="session_uuid",
    )


async def delete_session(
    db: AsyncSession, project_id: uuid.UUID, session_uuid: uuid.UUID, *, force: bool
) -> None:
    """Delete the session with its messages and runs. While a run holds the session (a
    live lease) that is a 409 ``session_busy`` unless ``force``; a forced delete leaves
    the run to finish without storing anything. Forks of the session keep existing."""
    loaded = await SessionRepository(db).get_with_version(project_id, session_uuid, lock=True)
    if loaded is None:
        raise SessionNotFound(f"No session {session_uuid}.", field="session_uuid")
    if not force and held_by_a_run(loaded.session):
        raise SessionBusy(
            "A run is in progress on this session; delete it once the run has finished, "
            "or with force=true (the run then stores nothing)."
        )
    await SessionLifecycleRepository(db).delete_sessions([loaded.session.id])


def held_by_a_run(session: ChatSession) -> bool:
    """A run holds the session and its lease has not lapsed (``claim_session``'s rule)."""
    expires = session.lease_expires_at
    return session.lease_run_id is not None and expires is not None and expires >= utcnow()

"""``/readyz``: can this process serve requests? The database answers, it can store data
(after a write failed for want of storage, a probe write must go through again), and its
schema is at the newest migration this code ships (a server started against a database
migrated by an older release, or not migrated at all, is not ready)."""

from __future__ import annotations

import logging
from functools import lru_cache

import anyio
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from chatmodel_service.db import Database
from chatmodel_service.errors import ServiceError
from chatmodel_service.migrate import alembic_config

logger = logging.getLogger("chatmodel_service")

# A database that takes longer than this to answer ``SELECT``-ing one row is not ready.
READY_TIMEOUT_SECONDS = 5.0


class NotReady(ServiceError):
    """503: a readiness check failed (``detail`` says which)."""

    status_code = 503
    code = "not_ready"


@lru_cache(maxsize=1)
def migration_heads() -> frozenset[str]:
    """The head revision(s) of the packaged migrations (read once per process)."""
    return frozenset(ScriptDirectory.from_config(alembic_config("")).get_heads())


def _current_revisions(connection: Connection) -> frozenset[str]:
    return frozenset(MigrationContext.configure(connection).get_current_heads())


async def check_ready(database: Database) -> str:
    """The database's revision when it is reachable and at head; raises NotReady."""
    heads = await anyio.to_thread.run_sync(migration_heads)
    try:
        with anyio.fail_after(READY_TIMEOUT_SECONDS):
            async with database.engine.connect() as connection:
                current = await connection.run_sync(_current_revisions)
            failure = await database.probe_writes()
    except TimeoutError:
        raise NotReady(f"database: no answer within {READY_TIMEOUT_SECONDS:g} s.") from None
    except (OSError, SQLAlchemyError) as exc:
        logger.warning("readiness: database unreachable: %s: %s", type(exc).__name__, exc)
        raise NotReady(f"database: unreachable ({type(exc).__name__}).") from None
    if failure is not None:
        since = failure.since.isoformat(timespec="seconds")
        raise NotReady(f"database: cannot store data ({failure.cause}) since {since}.")
    if current != heads:
        at = ", ".join(sorted(current)) or "none (not migrated)"
        raise NotReady(
            f"migrations: the database is at revision {at}, this server needs "
            f"{', '.join(sorted(heads))}; run `chatmodel db upgrade`."
        )
    return ", ".join(sorted(current))

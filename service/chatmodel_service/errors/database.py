"""Database errors read for what they mean to a caller: a value the database cannot store
(``refused_value``, a 422), a database that cannot store anything right now
(``storage_failure``, ``storage_unavailable``: a 503), SQLite's write lock held too long
(``sqlite_locked``). SQLAlchemy is imported only when an error is read.
"""

from __future__ import annotations

from chatmodel_service.errors.service_errors import InvalidInput, StorageUnavailable

# SQLSTATE class 22, "data exception": the database refused a value, not the request's
# shape. The schemas should refuse such values first (naming the field); this is the net.
_DATA_EXCEPTIONS = {
    "22001": "A text value is longer than the database column allows.",
    "22003": "A number is out of the range the database can store.",
    "22021": "Text contains a character the database cannot store (NUL, \\u0000).",
    "22P05": "Text contains a character the database cannot store.",
}


def refused_value(exc: BaseException) -> InvalidInput | None:
    """The 422 for a database error caused by a value it cannot store (PostgreSQL's data
    exceptions, a driver refusing to encode a parameter), or None for any other error."""
    from sqlalchemy.exc import DataError, DBAPIError

    if not isinstance(exc, DBAPIError):
        return None
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
    if sqlstate.startswith("22"):
        return InvalidInput(_DATA_EXCEPTIONS.get(sqlstate, "A value cannot be stored."))
    # asyncpg checks parameters before sending them (an int beyond 32 bits for an INTEGER
    # column) and raises a ValueError, adapted as an InterfaceError; other drivers: DataError.
    if isinstance(exc, DataError) or isinstance(getattr(exc.orig, "__cause__", None), ValueError):
        return InvalidInput("A value is out of the range the database can store.")
    return None


# SQLite's messages for a database that cannot be written (SQLITE_FULL, SQLITE_IOERR,
# SQLITE_READONLY, SQLITE_CANTOPEN), and PostgreSQL's SQLSTATEs for the same: 53000
# (insufficient resources), 53100 (disk full), 58030 (I/O error) and 25006 (a read-only
# transaction: a standby, or default_transaction_read_only).
_SQLITE_STORAGE_MESSAGES = (
    "database or disk is full",
    "disk i/o error",
    "attempt to write a readonly database",
    "unable to open database file",
)
_POSTGRES_STORAGE_STATES = {
    "53000": "insufficient resources",
    "53100": "the disk is full",
    "58030": "I/O error",
    "25006": "the database is read-only",
}


def storage_failure(exc: BaseException) -> str | None:
    """What keeps the database from storing anything, in a few words ("database or disk is
    full"), when ``exc`` is such a failure; None for any other error."""
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError):
        return None
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
    if sqlstate in _POSTGRES_STORAGE_STATES:
        return _POSTGRES_STORAGE_STATES[sqlstate]
    text = str(exc.orig).lower()
    return next((m for m in _SQLITE_STORAGE_MESSAGES if m in text), None)


def storage_unavailable(cause: str) -> StorageUnavailable:
    return StorageUnavailable(
        f"The database cannot store data right now ({cause}); nothing of this request was "
        "stored. Retry later."
    )


def sqlite_locked(exc: Exception) -> bool:
    """SQLite gave up waiting for another connection's write lock (``busy_timeout``): on
    SQLite, another server process on the same file (this process's writers queue)."""
    orig = getattr(exc, "orig", None)
    return type(orig).__name__ == "OperationalError" and "database is locked" in str(orig)

"""The one mapping from exceptions to JSON bodies, installed on the app."""

from __future__ import annotations

from typing import Any

from chatmodel_service.errors.database import (
    refused_value,
    sqlite_locked,
    storage_failure,
    storage_unavailable,
)
from chatmodel_service.errors.service_errors import (
    Conflict,
    DatabaseBusy,
    ServiceError,
    SessionBusy,
)
from chatmodel_service.errors.validation import undecodable_body, validation_body


def install_error_handlers(app: Any) -> None:
    """Register the one mapping from exceptions to JSON bodies (no tracebacks, ever)."""
    import logging

    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from sqlalchemy.exc import DBAPIError, IntegrityError
    from sqlalchemy.exc import TimeoutError as PoolTimeout
    from starlette.exceptions import HTTPException

    from chatmodel_service.observability.metrics import count_busy_rejection

    logger = logging.getLogger("chatmodel_service")

    async def service_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        if isinstance(exc, SessionBusy):
            count_busy_rejection(exc.code)
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)

    async def request_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse(validation_body(list(exc.errors())), status_code=422)

    async def integrity(_: Request, exc: Exception) -> JSONResponse:
        logger.info("integrity conflict: %s", type(exc).__name__)
        body = Conflict("The write conflicts with data stored concurrently; retry.").body()
        return JSONResponse(body, status_code=409)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        if isinstance(exc.__cause__, ServiceError):
            # FastAPI turns any error raised while reading the body into a 400; the
            # body-size limit raises PayloadTooLarge there for bodies without a length.
            return await service_error(request, exc.__cause__)
        undecodable = undecodable_body(exc, request.headers.get("content-type"))
        if undecodable is not None:
            return await request_validation(request, undecodable)
        codes = {404: "not_found", 405: "method_not_allowed"}
        body = {
            "error": codes.get(exc.status_code, "http_error"),
            "detail": exc.detail,
            "field": None,
        }
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        if sqlite_locked(exc):  # another process held SQLite's write lock too long
            return await pool_timeout(request, exc)
        cause = storage_failure(exc)
        if cause is not None:
            logger.error("the database cannot store data: %s (%s)", cause, type(exc).__name__)
            return await service_error(request, storage_unavailable(cause))
        refused = refused_value(exc)
        if refused is None:
            return await unexpected(request, exc)
        # The request carried a value no schema check caught: log where, never the value.
        sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
        logger.warning(
            "database refused a value (%s, sqlstate %s) on %s %s",
            type(exc).__name__,
            sqlstate,
            request.method,
            request.url.path,
        )
        return await service_error(request, refused)

    async def pool_timeout(request: Request, exc: Exception) -> JSONResponse:
        logger.warning("the database was busy for too long: %s", type(exc).__name__)
        busy = DatabaseBusy("The database is busy; retry shortly.")
        return await service_error(request, busy)

    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error", exc_info=exc)
        body = {
            "error": "internal_error",
            "detail": "Unexpected server error; see the server log.",
            "field": None,
        }
        return JSONResponse(body, status_code=500)

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(RequestValidationError, request_validation)
    app.add_exception_handler(IntegrityError, integrity)
    app.add_exception_handler(DBAPIError, database_error)
    app.add_exception_handler(PoolTimeout, pool_timeout)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)

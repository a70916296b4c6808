"""``chatmodel serve`` under uvicorn: one process, or ``--workers N`` sharing one socket,
and how a server stops.

Stopping (SIGTERM, or Ctrl-C): the server stops accepting connections at once and closes
idle ones; streams and calls in flight get ``shutdown_grace_seconds`` to finish. Then the
app drains (``app.state.drain``): every run still going in the process is cancelled and
recorded ``interrupted`` (nothing half is stored), and each open stream gets that end as
its last event, in its own API's framing, then its terminator. Only after that does the
process stop, so a SIGTERM never leaves a run ``running``. uvicorn's own cancelling of
what is left is kept ``DRAIN_SECONDS`` later, for anything the drain could not end.

With ``--workers N`` uvicorn's supervisor starts N processes of this module's
:func:`worker_app`; each reads the settings from the environment (``cmd_serve`` has written
its ``--host``/``--port`` there), logs as the parent does, and keeps its own run tasks,
event log and metrics. Everything the workers share goes through the database: the
one-run-per-session lease, idempotency, queued runs, events readable from any worker.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import multiprocess

from chatmodel_service.config import Settings, get_settings

logger = logging.getLogger(__name__)

# How long the drain (ending every run and stream of the process) may take before uvicorn
# cancels what is left.
DRAIN_SECONDS = 5.0


class ChatModelServer(uvicorn.Server):
    """uvicorn's server, draining the app when the shutdown grace has passed (uvicorn's
    ``timeout_graceful_shutdown`` is that grace plus ``DRAIN_SECONDS``)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.grace_seconds = max(0.0, (config.timeout_graceful_shutdown or 0) - DRAIN_SECONDS)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        drain = asyncio.create_task(self._drain_after(self.grace_seconds))
        try:
            await super().shutdown(sockets)
        finally:
            drain.cancel()

    async def _drain_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        app = _chatmodel_app(self.config.loaded_app)
        drain = getattr(getattr(app, "state", None), "drain", None)
        if drain is None:
            return
        logger.warning(
            "still serving after the %.0f s shutdown grace: ending every run and stream",
            seconds,
        )
        try:
            await drain()
        except Exception:  # uvicorn's own cancelling comes next
            logger.exception("could not end every run before stopping")


def _chatmodel_app(app: Any) -> FastAPI | None:
    """Our app under uvicorn's middleware (each wraps the next as ``.app``)."""
    for _ in range(10):
        if isinstance(app, FastAPI):
            return app
        app = getattr(app, "app", None)
    return None


def worker_app() -> FastAPI:
    """The app of one ``--workers`` process: settings from the environment, logging as
    ``chatmodel serve`` sets it up (uvicorn's factory)."""
    from chatmodel_service.app import create_app
    from chatmodel_service.observability.logs import configure_logging

    settings = get_settings()
    configure_logging(settings)
    return create_app(settings)


def serve(settings: Settings, workers: int) -> None:
    """Serve until stopped: ``workers`` processes (1: this one)."""
    from chatmodel_service.app import create_app

    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level.lower(),
        "log_config": None,  # uvicorn's own lines in our format (configure_logging)
        "access_log": False,  # the app logs one line per request, with its request id
        "timeout_keep_alive": settings.keep_alive_seconds,
        "timeout_graceful_shutdown": int(settings.shutdown_grace_seconds + DRAIN_SECONDS),
    }
    if workers == 1:
        ChatModelServer(uvicorn.Config(create_app(settings), **options)).run()
        return
    config = uvicorn.Config(
        "chatmodel_service.serving:worker_app", factory=True, workers=workers, **options
    )
    # uvicorn's supervisor makes each worker's server itself, by this module-level name:
    # this process only supervises, so it makes them ours.
    multiprocess.Process = _WorkerProcess  # type: ignore[misc]
    multiprocess.Multiprocess(config, sockets=[config.bind_socket()]).run()


class _WorkerProcess(multiprocess.Process):
    """A worker process whose server is a ``ChatModelServer``."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = ChatModelServer(config=self.config)
        return self._server

"""create_app(): the lifespan builds the engine, the unit-of-work factory and the gateway."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.types import ASGIApp

from chatmodel_service import __version__
from chatmodel_service.admin.router import router as admin_router
from chatmodel_service.auth.router import router as auth_router
from chatmodel_service.auth.startup import auth_required
from chatmodel_service.chat_models.router import router as chat_models_router
from chatmodel_service.chat_models.service import seed_demo_once
from chatmodel_service.config import Settings, get_settings, server_secrets
from chatmodel_service.db import Database, create_engine
from chatmodel_service.egp_compat.router import router as egp_compat_router
from chatmodel_service.error_schemas import ERROR_RESPONSES
from chatmodel_service.errors import install_error_handlers
from chatmodel_service.feedback.router import router as feedback_router
from chatmodel_service.limits import BodySizeLimit, RateLimiter, reject_unstorable_text
from chatmodel_service.llm.gateway import LLMGateway, create_gateway
from chatmodel_service.llm_engine_compat.router import router as llm_engine_router
from chatmodel_service.observability.logs import redact_log_records
from chatmodel_service.observability.metrics import ServiceMetrics
from chatmodel_service.observability.middleware import RequestObservability
from chatmodel_service.observability.router import install as install_operator_routes
from chatmodel_service.openai_compat.chunks import OPENAI_EVENTS
from chatmodel_service.openai_compat.errors import UnservedPaths
from chatmodel_service.openai_compat.router import install as install_openai_compat
from chatmodel_service.promptmodel_compat.router import router as promptmodel_compat_router
from chatmodel_service.redaction import SecretRedactor
from chatmodel_service.releases.router import router as releases_router
from chatmodel_service.responses import end_open_streams
from chatmodel_service.responses_api.router import router as responses_api_router
from chatmodel_service.responses_api.stream import RESPONSES_EVENTS
from chatmodel_service.runs import recover_lapsed_runs
from chatmodel_service.runs.background import BackgroundRuns
from chatmodel_service.runs.router import router as runs_router
from chatmodel_service.runs.router import runs_router as run_states_router
from chatmodel_service.runs.router import version_test_router
from chatmodel_service.sessions.router import router as sessions_router
from chatmodel_service.usage.router import router as usage_router
from chatmodel_service.webhooks.delivery import WebhookDeliveries
from chatmodel_service.webhooks.router import router as webhooks_router

# A shutdown's drain gives streams this long to send the end of their cancelled run before
# it ends the rest with a closing error event.
DRAIN_SETTLE_SECONDS = 1.0

logger = logging.getLogger("chatmodel_service")


class ChatModelAPI(FastAPI):
    """FastAPI with the request middleware (request id, metrics, log line) outside
    everything, the error middleware included, so even a 500 carries its request id."""

    def build_middleware_stack(self) -> ASGIApp:
        metrics: ServiceMetrics = self.state.metrics
        return RequestObservability(super().build_middleware_stack(), metrics)


def create_app(settings: Settings | None = None, gateway: LLMGateway | None = None) -> FastAPI:
    """Build the ASGI app. Nothing connects or imports LiteLLM until the lifespan starts."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(create_engine(settings))
        app.state.settings = settings
        app.state.database = database
        shared_gateway = gateway or create_gateway(settings.litellm_openai_transport)
        # The secrets held now (provider keys, the database password), kept out of every
        # failure the gateway reports and of every log line while the app runs.
        redactor = SecretRedactor(server_secrets(settings, shared_gateway.key_variables()))
        app.state.gateway = shared_gateway.redacting(redactor)
        stop_redacting_logs = redact_log_records(redactor)
        if not app.state.auth_required:
            logger.warning(
                "API keys are NOT required: every request acts as the default project's "
                "admin. Only allowed on a loopback address (%s).",
                settings.host,
            )
        recovered = await recover_lapsed_runs(database)
        if recovered:
            logger.warning("marked %d run(s) interrupted: their server stopped mid-run", recovered)
        if settings.seed_demo and await seed_demo_once(database, app.state.gateway.check_model):
            logger.info("created the demo chat model 'simple_assistant' (offline model)")
        # Each API's streams are kept for resuming in its own framing.
        formats = (OPENAI_EVENTS, RESPONSES_EVENTS)
        app.state.background_runs = background_runs = BackgroundRuns(database, settings, formats)
        background_runs.begin()  # event writing, lapsed-lease and retention sweeps
        app.state.webhook_deliveries = webhook_deliveries = WebhookDeliveries(database, settings)
        webhook_deliveries.begin()  # sends the outbox's due deliveries

        async def drain() -> None:
            """End every run and stream of this process (``serving``: a shutdown whose
            grace has passed): each run ``interrupted``, each stream with that end."""
            await background_runs.drain()
            await end_open_streams(app.state.open_streams, DRAIN_SETTLE_SECONDS)

        app.state.drain = drain
        try:
            yield
        finally:
            await webhook_deliveries.stop()  # what is unsent stays for the next start
            await background_runs.stop()  # each recorded interrupted
            await database.dispose()
            stop_redacting_logs()

    app = ChatModelAPI(
        title="chatmodel",
        version=__version__,
        summary="Stateful chat sessions with versioned system prompts.",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        dependencies=[Depends(reject_unstorable_text)],
    )
    app.state.auth_required = auth_required(settings)
    app.state.open_streams = set()  # EventStream: each stream while it is sent
    app.state.metrics = ServiceMetrics()  # a registry per app: tests build many apps
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    install_error_handlers(app)

    @app.get("/health", tags=["system"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    install_operator_routes(app, settings)  # /healthz, /readyz, /metrics
    # Routes are matched in order, one by one: the busiest first (no path overlaps).
    app.include_router(runs_router)
    app.include_router(run_states_router)  # /v1/runs/{uuid}
    app.include_router(sessions_router)
    app.include_router(feedback_router)
    app.include_router(chat_models_router)
    app.include_router(releases_router)
    install_openai_compat(app)  # /v1/chat/completions, /v1/completions, /v1/models
    app.include_router(responses_api_router)  # /v1/responses, /v1/conversations
    app.include_router(llm_engine_router)  # /v1/llm/completions-sync, -stream
    app.include_router(version_test_router)
    app.include_router(promptmodel_compat_router)  # /api/cli/... for promptmodel's SDK
    app.include_router(auth_router)
    app.include_router(usage_router)
    app.include_router(webhooks_router)
    app.include_router(admin_router)
    app.include_router(egp_compat_router)  # /egp/...: Scale EGP's completion API
    native_api = (
        runs_router,
        run_states_router,
        sessions_router,
        feedback_router,
        chat_models_router,
        releases_router,
        version_test_router,
        auth_router,
        usage_router,
        webhooks_router,
    )
    app.router.default = UnservedPaths(app.router.default, native_api)  # 404 of no route
    return app

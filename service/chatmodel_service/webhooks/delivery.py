"""The delivery worker: one task per server process sends the outbox's due deliveries.

It polls every ``POLL_SECONDS`` (at once when this process has just queued one), claims
up to as many due deliveries as it has free slots (``webhook_max_concurrent_deliveries``)
for ``CLAIM_MARGIN_SECONDS`` more than a send may take, so no other process sends the same
attempt meanwhile, and POSTs each, signed, from a task of its own: a slow or dead receiver
holds a slot, never a run (runs only insert rows). A 2xx answer is delivered; any other
answer, a redirect (never followed), a timeout or a refused address schedules the next
attempt (``webhook_retry_schedule``) or, after the last, marks the delivery ``failed``.

Delivery is at least once: a server that stops leaves its deliveries in the table (their
claims released) and the next start sends them; one that dies mid-send leaves a claim that
lapses, and the attempt is made again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import anyio
import httpx

from chatmodel_service import __version__
from chatmodel_service.config import Settings
from chatmodel_service.db import Database
from chatmodel_service.models.base import utcnow
from chatmodel_service.webhooks.addresses import AddressPolicy, RefusedAddress, resolve
from chatmodel_service.webhooks.outbox import on_queued
from chatmodel_service.webhooks.repository import ClaimedDelivery, DeliveryRepository
from chatmodel_service.webhooks.service import message_id
from chatmodel_service.webhooks.signing import signed_headers

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5
# A claim outlasts the longest send by this much: it lapses only for a worker that died.
CLAIM_MARGIN_SECONDS = 30.0
ERROR_CHARS = 500  # of last_error


@dataclass(frozen=True)
class Attempt:
    """One send: the receiver's status (None: no answer) and why it failed, if it did."""

    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.error is None


def attempt_values(
    attempt: Attempt, attempts_before: int, schedule: list[float], now: datetime
) -> dict[str, Any]:
    """The delivery's columns after an attempt: delivered, the next attempt, or failed."""
    made = attempts_before + 1
    values: dict[str, Any] = {
        "attempts": made,
        "last_status_code": attempt.status_code,
        "last_error": attempt.error,
    }
    if attempt.delivered:
        return values | {"status": "delivered", "delivered_at": now, "next_attempt_at": None}
    if made > len(schedule):
        return values | {"status": "failed", "next_attempt_at": None}
    return values | {"next_attempt_at": now + timedelta(seconds=schedule[made - 1])}


def body_of(payload: dict[str, Any]) -> str:
    """The bytes sent and signed: compact JSON, every attempt the same."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


class WebhookDeliveries:
    """This process's delivery worker (built and started in the app's lifespan)."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self._database = database
        self._schedule = list(settings.webhook_retry_schedule)
        self._timeout = settings.webhook_timeout_seconds
        self._slots = settings.webhook_max_concurrent_deliveries
        self._policy = AddressPolicy.from_settings(settings.webhook_allowed_hosts)
        self._in_flight: dict[uuid.UUID, tuple[uuid.UUID, asyncio.Task[None]]] = {}  # by id
        self._due = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._unsubscribe: Callable[[], None] = lambda: None

    def begin(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=self._timeout,
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: the address check is ours
            # No connection is kept: a pool keys them by address, and two hosts on one
            # address must not share a connection made (TLS, SNI) for one of them.
            limits=httpx.Limits(max_connections=self._slots, max_keepalive_connections=0),
            headers={"user-agent": f"chatmodel-webhooks/{__version__}"},
        )
        loop = asyncio.get_running_loop()

        def wake() -> None:  # called from whichever thread committed
            with suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(self._due.set)

        self._unsubscribe = on_queued(wake)
        self._poller = asyncio.create_task(self._poll_forever(), name="webhook-deliveries")

    async def stop(self) -> None:
        """Stop sending: attempts in flight are dropped and their claims released, so the
        next start (of any process) sends them."""
        self._unsubscribe()
        sending = list(self._in_flight.values())
        tokens = list({token for token, _ in sending})
        tasks = [t for t in (self._poller, *(task for _, task in sending)) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task
        if tokens:
            try:
                async with self._database.transaction() as db:
                    await DeliveryRepository(db).release(tokens)
            except Exception:  # their claims lapse instead
                logger.warning("could not release %d webhook claim(s)", len(tokens))
        if self._client is not None:
            await self._client.aclose()

    async def _poll_forever(self) -> None:
        while True:
            self._due.clear()
            free = self._slots - len(self._in_flight)
            if free > 0:
                try:
                    claimed = await self._claim(free)
                except Exception:  # the database is unreachable: try again next poll
                    logger.warning("could not claim webhook deliveries", exc_info=True)
                    claimed = []
                for delivery in claimed:
                    task = asyncio.create_task(self._deliver(delivery))
                    self._in_flight[delivery.id] = (delivery.token, task)
            with anyio.move_on_after(POLL_SECONDS):
                await self._due.wait()

    async def _claim(self, limit: int) -> list[ClaimedDelivery]:
        now = utcnow()
        # A read first: an idle poll never takes SQLite's write lock from the runs.
        async with self._database.transaction(write=False) as db:
            if not await DeliveryRepository(db).any_due(now):
                return []
        until = now + timedelta(seconds=self._timeout + CLAIM_MARGIN_SECONDS)
        async with self._database.transaction() as db:
            claimed = await DeliveryRepository(db).claim_due(now, limit, until, uuid.uuid4())
        return claimed

    async def _deliver(self, delivery: ClaimedDelivery) -> None:
        try:
            attempt = await self._send(delivery)
            values = attempt_values(attempt, delivery.attempts, self._schedule, utcnow())
            async with self._database.transaction() as db:
                await DeliveryRepository(db).record(delivery.id, delivery.token, values)
        except Exception:  # not recorded: the claim lapses and the attempt is made again
            logger.warning("could not record webhook delivery %s", delivery.id, exc_info=True)
        finally:
            self._in_flight.pop(delivery.id, None)
            self._due.set()  # a slot is free

    async def _send(self, delivery: ClaimedDelivery) -> Attempt:
        """POST the delivery once, to the address its host was checked at."""
        assert self._client is not None
        body = body_of(delivery.payload)
        headers = signed_headers(delivery.secret, message_id(delivery.id), int(time.time()), body)
        headers["content-type"] = "application/json"
        try:
            # The whole attempt, the address's lookup included, within the timeout.
            with anyio.fail_after(self._timeout):
                url = httpx.URL(delivery.url)
                target = await resolve(delivery.url, self._policy)
                headers["host"] = url.netloc.decode("ascii")
                request = self._client.build_request(
                    "POST",
                    url.copy_with(host=target.address),
                    content=body.encode(),
                    headers=headers,
                    extensions={"sni_hostname": target.host},
                )
                response = await self._client.send(request, stream=True)
                await response.aclose()  # the answer's body is not read
        except RefusedAddress as exc:
            return Attempt(None, f"refused: {exc}")
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:  # timeouts too
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return Attempt(None, reason[:ERROR_CHARS])
        if 200 <= response.status_code < 300:
            return Attempt(response.status_code, None)
        return Attempt(response.status_code, f"the receiver answered {response.status_code}")

"""When a failed model call is tried again, on which model, and after how long.

The rule, for each failure of one attempt:

- **retry the same model** (up to ``num_retries`` times, pausing in between) when the
  failure is likely to pass: rate limited (429), the provider failed (5xx, 408, 409), a
  timeout, a refused or dropped connection, an answer that could not be read or did not
  come (a 200 whose body is not JSON, a stream without any text or call), or a stream
  that broke before its first piece reached the caller;
- **give up** when the request itself is at fault, so every model would refuse it: a bad
  request (400/422, content policy);
- **move on to the next fallback model** otherwise, and when a model's retries are used
  up: a fallback may have a larger context window, know a model the first provider does
  not, hold its own credentials, or answer in a form we can read.

Once any piece of a stream has reached the caller nothing is tried again: a drop after
that stays ``stream_interrupted``. Fallbacks are called like the version's model (same
messages, parameters, ``api_base`` and timeout), as LiteLLM's own ``fallbacks`` do.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace
from enum import Enum

from chatmodel_service.llm.types import Attempt, LLMCall, LLMFailure, LLMOutcome, LLMResult

# Longest pause between two attempts, whatever the backoff or a Retry-After header say.
MAX_RETRY_PAUSE = 30.0

RETRYABLE_ERRORS = frozenset(
    {"rate_limited", "timeout", "connection_error", "stream_interrupted", "malformed_response"}
)
RETRYABLE_STATUSES = frozenset({408, 409, 429})
# The request is at fault: another model would refuse it too.
FINAL_ERRORS = frozenset({"bad_request"})
SUCCEEDED = "succeeded"


class NextStep(Enum):
    RETRY = "retry"
    FALL_BACK = "fall_back"
    GIVE_UP = "give_up"


def next_step(failure: LLMFailure) -> NextStep:
    """What to do after ``failure`` of one attempt (see the module docstring)."""
    status = failure.provider_status
    if (
        failure.error_type in RETRYABLE_ERRORS
        or status in RETRYABLE_STATUSES
        or (status is not None and status >= 500)
    ):
        return NextStep.RETRY
    if failure.error_type in FINAL_ERRORS:
        return NextStep.GIVE_UP
    return NextStep.FALL_BACK


def retry_pause(retry: int, backoff: float, retry_after: float | None = None) -> float:
    """Seconds to wait before retry number ``retry`` (0 for the first): ``backoff * 2**retry``
    plus up to half again of jitter, or the provider's Retry-After when it asks for longer;
    never more than ``MAX_RETRY_PAUSE``."""
    pause = backoff * 2.0**retry
    pause += random.uniform(0, pause / 2)
    if retry_after is not None:
        pause = max(pause, retry_after)
    return min(pause, MAX_RETRY_PAUSE)


@dataclass(frozen=True)
class Tried:
    """How one attempt ended, and how long the provider asked us to wait (Retry-After)."""

    outcome: LLMOutcome
    retry_after: float | None = None


class RetryPlan:
    """Walks one call through its models and retries, recording every attempt."""

    def __init__(self, call: LLMCall) -> None:
        self._call = call
        self._models = tuple(dict.fromkeys((call.model, *call.fallbacks)))
        self._model_index = 0
        self._retry = 0
        self._attempts: list[Attempt] = []
        self._started = time.perf_counter()

    def current(self) -> LLMCall:
        """The call for the next attempt."""
        return replace(self._call, model=self._models[self._model_index])

    def after(self, tried: Tried, *, replayable: bool = True) -> float | None:
        """Record an attempt; the pause before the next one, or None when the call is over.

        ``replayable`` is False once part of the reply has reached the caller."""
        outcome = tried.outcome
        failure = outcome if isinstance(outcome, LLMFailure) else None
        self._attempts.append(
            Attempt(
                model=self.current().model,
                outcome=failure.error_type if failure else SUCCEEDED,
                latency_ms=outcome.latency_ms,
                provider_status=failure.provider_status if failure else None,
            )
        )
        if failure is None or not replayable:
            return None
        step = next_step(failure)
        if step is NextStep.RETRY and self._retry < self._call.num_retries:
            pause = retry_pause(self._retry, self._call.retry_backoff, tried.retry_after)
            self._retry += 1
            return pause
        if step is NextStep.GIVE_UP or self._model_index + 1 >= len(self._models):
            return None
        self._model_index += 1
        self._retry = 0
        return 0.0

    def finish(self, outcome: LLMOutcome) -> LLMOutcome:
        """The last attempt's outcome, with every attempt and the whole call's wall time."""
        attempts = tuple(self._attempts)
        latency_ms = int((time.perf_counter() - self._started) * 1000)
        if isinstance(outcome, LLMResult) or len(attempts) < 2:
            return replace(outcome, latency_ms=latency_ms, attempts=attempts)
        tried = ", ".join(dict.fromkeys(a.model for a in attempts))
        return replace(
            outcome,
            latency_ms=latency_ms,
            attempts=attempts,
            error_log=f"{outcome.error_log} ({len(attempts)} attempts on {tried})",
        )

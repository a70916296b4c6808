"""Runs by their uuid: starting one in the background, reading, cancelling and waiting for
it, and the request that follows its events.

Operations, as in ``_protocol`` (no I/O here): ``_transport`` drives them, and
``_run_handle`` holds the sync and async handles that call them. A run's events are read
by ``_run_stream.RunStream``, which also resumes a streamed run through here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pydantic

from chatmodel._errors import ChatModelError, RunWaitTimeout, api_error, error_body
from chatmodel._models import LLMResponse, RunState
from chatmodel._protocol import (
    IDEMPOTENCY_KEY_HEADER,
    Operation,
    Request,
    RunOptions,
    SessionState,
    new_idempotency_key,
    parse,
    run_request,
    send_with_retries,
    write_to_session,
)

LAST_EVENT_ID_HEADER = "Last-Event-ID"
RUN_ID_HEADER = "X-Run-Id"

# RunHandle.wait asks for the run's state after pauses that grow from the first to the
# longest (doubling): a quick run is seen at once, a long one costs a request every 2 s.
FIRST_POLL_PAUSE = 0.1
LONGEST_POLL_PAUSE = 2.0


def run_path(run_uuid: str) -> str:
    return f"/v1/runs/{run_uuid}"


class _RunList(pydantic.BaseModel):
    data: list[RunState]


# -- starting ---------------------------------------------------------------------------


def start_background_run(
    state: SessionState, options: RunOptions, *, stream: bool
) -> Operation[str]:
    """Start a run that goes on on the server; returns its uuid. Raises ``ChatModelError``
    (the server refused it: ``SessionBusyError``, ...; or could not be reached).

    The request carries a fresh Idempotency-Key and is resent with it (twice at most) when
    no answer came back. The server never starts a second run for a key it has seen: it
    answers 409 ``run_in_progress`` while the first attempt's run goes on (that run is then
    found in the session's runs by its key) or, once it has ended, its result.
    """
    key = new_idempotency_key()
    request = run_request(state, options, stream=stream, idempotency_key=key, background=True)
    response = yield from write_to_session(state, request, resend=request)
    if response.status_code == 409 and (error_body(response) or {}).get("error") == (
        "run_in_progress"
    ):
        found = yield from find_run_by_key(state, key)
        if found is None:
            raise api_error(response)
        return found
    if response.status_code == 202:
        return str(parse(RunState, response).uuid)
    replayed = parse(LLMResponse, response)  # the first attempt's run, ended: its result
    if replayed.detail is None:
        raise api_error(response)
    return str(replayed.detail.run_uuid)


def find_run_by_key(state: SessionState, key: str) -> Operation[str | None]:
    """The uuid of the session's run started with Idempotency-Key ``key``, if there is one:
    how a run whose start was sent but never answered is found."""
    response = yield from send_with_retries(Request("GET", f"{state.path}/runs"))
    for run in reversed(parse(_RunList, response).data):  # newest first: it is a recent one
        if run.idempotency_key == key:
            return str(run.uuid)
    return None


def stream_key(request: Request) -> str | None:
    """The Idempotency-Key a run request was sent with."""
    return request.headers.get(IDEMPOTENCY_KEY_HEADER)


# -- reading, cancelling ----------------------------------------------------------------


def get_run(run_uuid: str) -> Operation[RunState]:
    """The run's state (resent twice at most when no answer came). Raises
    ``RunNotFound`` for a uuid the server has no run under (in this API key's project)."""
    response = yield from send_with_retries(Request("GET", run_path(run_uuid)))
    return parse(RunState, response)


def cancel_run(run_uuid: str) -> Operation[RunState]:
    """Cancel the run; a run that has ended is answered as it is, so the request is
    resent safely (twice at most) when no answer came."""
    response = yield from send_with_retries(Request("POST", f"{run_path(run_uuid)}/cancel"))
    return parse(RunState, response)


def abandon_run(run_uuid: str) -> Operation[None]:
    """Cancel a run the caller stopped reading: asked once, its answer (or none) ignored.
    Closing a stream must not raise, nor wait for retries."""
    try:
        yield Request("POST", f"{run_path(run_uuid)}/cancel")
    except ChatModelError:
        return


def events_request(run_uuid: str, last_event_id: str | None) -> Request:
    """``GET /v1/runs/{uuid}/events``: after the event ``last_event_id`` (``<run>:<seq>``),
    or all of them."""
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers[LAST_EVENT_ID_HEADER] = last_event_id
    return Request("GET", f"{run_path(run_uuid)}/events", headers=headers)


# -- waiting ----------------------------------------------------------------------------


@dataclass
class RunWait:
    """When ``RunHandle.wait`` asks again, and when it gives up; times are
    ``time.monotonic()`` seconds, given by the caller (this does no I/O)."""

    run_uuid: str
    deadline: float | None
    pause: float = FIRST_POLL_PAUSE

    @classmethod
    def starting(cls, run_uuid: str, timeout: float | None, now: float) -> RunWait:
        return cls(run_uuid, None if timeout is None else now + max(timeout, 0.0))

    def pause_after(self, state: RunState, now: float) -> float | None:
        """``None`` when the run has ended; else the seconds to pause before asking again
        (never past the deadline, so the last look is at it). Past it, raises
        ``RunWaitTimeout``."""
        if state.finished:
            return None
        pause = self.pause
        if self.deadline is not None:
            left = self.deadline - now
            if left <= 0:
                raise RunWaitTimeout(
                    f"Run {self.run_uuid} is still {state.status}; it goes on on the server.",
                    run_uuid=self.run_uuid,
                    state=state,
                )
            pause = min(pause, left)
        self.pause = min(self.pause * 2, LONGEST_POLL_PAUSE)
        return pause


def run_result(state: RunState) -> LLMResponse:
    """An ended run's result: its ``response``, or, should the server have sent none, a
    failed result saying how the run ended."""
    if state.response is not None:
        return state.response
    return LLMResponse(
        error=True,
        error_type=state.error_type or state.status,
        error_log=state.error_log or f"The run ended {state.status} without a result.",
    )

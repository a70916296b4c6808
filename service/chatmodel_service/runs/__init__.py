"""The run engine: one model call on a session (or without one), its lease and its record.

Other domains use only the names below (the OpenAI-compatible API runs its calls through
them; the app recovers lapsed runs at start-up); the modules behind them are the run
engine's own. Its routes are mounted from ``runs.router``.

* building a call: ``version_call``; fitting its prompt to the model: ``fit_conversation``
  (a conversation in memory; ``count_missing`` counts stored messages) or
  ``fit_session_call`` (a session's newest messages), giving a ``FittedCall`` and its
  ``ContextFigures``;
* a session's run: ``require_session_locked`` and ``claim_session`` in the start
  transaction give a ``PreparedRun``; ``complete_run`` (or, streamed,
  ``relay_session_run``) calls the model and ``finish_run`` stores the outcome, a
  ``FinishedRun``;
* a call without a session: ``relay_and_record`` streams it (``Recorded``: its end) and
  ``record_sessionless_run`` stores its run record;
* a call the client made itself (promptmodel's SDK runs its own LiteLLM):
  ``record_client_run`` stores its run record and reply on the session;
* ``recover_lapsed_runs``: frees the sessions of runs whose server died;
* a claimed run can go on in the background (``BackgroundRuns``, the app's one registry)
  and be stopped from any process (``cancel_run``), and read (``get_run``);
* ``server_shutdown``: what a run its server's shutdown cut short is stored with;
* a run's events are kept for resuming (``BackgroundRuns.events``; ``logged`` keeps a
  request's own stream), framed by each API's ``EventFormat``; ``resume_after`` reads
  where a reader resumes from.
"""

from chatmodel_service.runs.background import BackgroundRuns, cancel_run, get_run
from chatmodel_service.runs.call import version_call
from chatmodel_service.runs.events import EventFormat, logged, resume_after
from chatmodel_service.runs.lease import claim_session, recover_lapsed_runs, require_session_locked
from chatmodel_service.runs.prompt_fit import (
    ContextFigures,
    FittedCall,
    count_missing,
    fit_conversation,
    fit_session_call,
)
from chatmodel_service.runs.records import record_client_run, record_sessionless_run
from chatmodel_service.runs.schemas import RunOptions
from chatmodel_service.runs.service import FinishedRun, PreparedRun, complete_run, finish_run
from chatmodel_service.runs.stream_run import (
    Recorded,
    relay_and_record,
    relay_session_run,
    server_shutdown,
)

__all__ = [
    "BackgroundRuns",
    "ContextFigures",
    "EventFormat",
    "FinishedRun",
    "FittedCall",
    "PreparedRun",
    "Recorded",
    "RunOptions",
    "cancel_run",
    "claim_session",
    "complete_run",
    "count_missing",
    "finish_run",
    "fit_conversation",
    "fit_session_call",
    "get_run",
    "logged",
    "record_client_run",
    "record_sessionless_run",
    "recover_lapsed_runs",
    "relay_and_record",
    "relay_session_run",
    "require_session_locked",
    "resume_after",
    "server_shutdown",
    "version_call",
]

"""A run's server-sent events, kept so that its stream can be resumed, from any process.

Every event of a streamed or background run carries an ``id:`` line, ``<run uuid>:<seq>``
(seq 0, 1, 2, ... in the order sent). While the run goes on, its process keeps them in
memory (``RunEvents``) and writes what is new every ``WRITE_EVERY`` seconds: one
transaction for every run of the process (``EventLog``), never a write per event. The
run's last batch is marked ``final``.

A reader (``follow``) names the last event it has and gets the ones after it: from
memory for a run of this process, from the database for a run of another one (looking
again every ``POLL_EVERY`` seconds while the run is running), live until the run's last
event, then the format's terminator. A run whose last events were never written (its
process died; or they were deleted, ``run_events_retention_seconds`` after the run
ended) ends, once it is no longer running, with one event built from its stored result
(``EventFormat.end``): a reader always learns how the run ended.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from chatmodel_service.db import Database
from chatmodel_service.errors import InvalidInput
from chatmodel_service.models.base import utcnow
from chatmodel_service.runs.repository import RunEventRepository

logger = logging.getLogger(__name__)

WRITE_EVERY = 0.1  # seconds between writes of new events (all runs of the process at once)
POLL_EVERY = 0.2  # seconds between looks for new events of a run of another process
# A run that has ended without its last events written after this long never will (its
# process died in between): its reader gets the end from the stored result.
END_WRITTEN_WITHIN = timedelta(seconds=5)

# The frame of a run's end built from its stored result, given (database, project, run,
# the end's seq); None when the format has nothing to say but its terminator.
EndFrame = Callable[[Database, uuid.UUID, uuid.UUID, int], Awaitable[str | None]]


@dataclass(frozen=True)
class EventFormat:
    """How one API frames a run's events (``chat_run.stream_format`` names it)."""

    name: str
    terminator: str  # sent after the last event ("data: [DONE]\n\n"), or ""
    end: EndFrame  # a frame (without its id line) telling how the run ended


class RunEvents:
    """One run's events in this process: every frame so far, with its id line."""

    def __init__(self, run_id: uuid.UUID, on_change: Callable[[RunEvents], None]) -> None:
        self.run_id = run_id
        self.frames: list[str] = []
        self.ended = False
        self.written = 0  # frames[:written] are in the database
        self._prefix = f"id: {run_id}:"
        self._on_change = on_change
        self._changed = asyncio.Event()
        self._waiting = 0

    def add(self, frame: str) -> str:
        """Number the frame (``frame``: its ``event:``/``data:`` lines and blank line) and
        keep it; returns it as sent."""
        framed = f"{self._prefix}{len(self.frames)}\n{frame}"
        self.frames.append(framed)
        self._wake()
        return framed

    def end(self) -> None:
        """The run sends nothing more."""
        if not self.ended:
            self.ended = True
            self._wake()

    def _wake(self) -> None:
        self._on_change(self)
        if self._waiting:
            self._changed.set()
            self._changed = asyncio.Event()

    async def wait_beyond(self, count: int) -> None:
        """Until there are more than ``count`` frames, or the run has ended."""
        while len(self.frames) <= count and not self.ended:
            changed = self._changed
            self._waiting += 1
            try:
                await changed.wait()
            finally:
                self._waiting -= 1


class EventLog:
    """The events of this process's runs, written in batches; and reading any run's."""

    def __init__(self, database: Database, formats: Iterable[EventFormat]) -> None:
        self._database = database
        self.formats = {f.name: f for f in formats}
        self._live: dict[uuid.UUID, RunEvents] = {}
        self._unwritten: dict[uuid.UUID, RunEvents] = {}
        self._due = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    def open(self, run_id: uuid.UUID) -> RunEvents:
        events = RunEvents(run_id, self._changed)
        self._live[run_id] = events
        return events

    def live(self, run_id: uuid.UUID) -> RunEvents | None:
        """The run's events, if it runs in this process (or ended and is being written)."""
        return self._live.get(run_id)

    def _changed(self, events: RunEvents) -> None:
        self._unwritten[events.run_id] = events
        self._due.set()

    def begin(self) -> None:
        self._writer = asyncio.create_task(self._write_forever())

    async def stop(self) -> None:
        """Stop writing every WRITE_EVERY, and write what is left."""
        if self._writer is not None:
            self._writer.cancel()
            with suppress(asyncio.CancelledError):
                await self._writer
        await self.write()

    async def _write_forever(self) -> None:
        while True:
            await self._due.wait()
            await asyncio.sleep(WRITE_EVERY)
            self._due.clear()
            await self.write()

    async def write(self) -> None:
        """Write every run's new events (and ends), in one transaction."""
        pending, self._unwritten = self._unwritten, {}
        now = utcnow()
        written: list[tuple[RunEvents, int, bool]] = []  # each run's count and end, as written
        batches: list[dict[str, Any]] = []
        for events in pending.values():
            first, count, final = events.written, len(events.frames), events.ended
            written.append((events, count, final))
            batches.append(
                {
                    "run_id": events.run_id,
                    "first_seq": first,
                    "last_seq": count - 1,
                    "frames": events.frames[first:count],
                    "final": final,
                    "created_at": now,
                }
            )
        if not batches:
            return
        try:
            async with self._database.transaction() as db:
                await RunEventRepository(db).add(batches)
        except Exception:  # tried again at the next write; readers of this process unaffected
            logger.warning("could not write the events of %d run(s)", len(batches), exc_info=True)
            for events in pending.values():
                self._unwritten.setdefault(events.run_id, events)
            self._due.set()
            return
        for events, count, final in written:
            events.written = count
            if final:
                del self._live[events.run_id]  # its readers keep what they hold

    def follow_live(self, events: RunEvents) -> AsyncIterator[str]:
        """A run of this process's frames from the first, as they come."""
        return _from_memory(events, 0)

    async def follow(
        self, run_id: uuid.UUID, project_id: uuid.UUID, after: int, format_name: str | None
    ) -> AsyncIterator[str]:
        """The run's frames after seq ``after`` (-1: all), several at once when they are
        there together, to its end, then the format's terminator."""
        form = self.formats[format_name or "native"]
        local = self.live(run_id)
        if local is not None:
            async for chunk in _from_memory(local, after + 1):
                yield chunk
        else:
            async for chunk in self._from_database(run_id, project_id, after + 1, form):
                yield chunk
        if form.terminator:
            yield form.terminator

    async def _from_database(
        self, run_id: uuid.UUID, project_id: uuid.UUID, seq: int, form: EventFormat
    ) -> AsyncIterator[str]:
        prefix = f"id: {run_id}:"
        while True:
            async with self._database.transaction(write=False) as db:
                batches = await RunEventRepository(db).after(run_id, seq)
                progress = await RunEventRepository(db).progress(run_id)
            for batch in batches:
                if batch.first_seq > seq:
                    break  # deleted (retention): only the end is left
                frames = batch.frames[seq - batch.first_seq :]
                if frames:
                    yield "".join(frames)
                seq = batch.last_seq + 1
                if batch.final:
                    return
            local = self.live(run_id)
            if local is not None:  # being written by this process after all
                async for chunk in _from_memory(local, seq):
                    yield chunk
                return
            if progress is None or progress.status not in ("running", "queued"):
                ended = progress.finished_at if progress else None
                if (
                    ended is None
                    or progress is None
                    or progress.stream_format is None  # it keeps no events
                    or utcnow() - ended > END_WRITTEN_WITHIN
                    or (batches and batches[0].first_seq > seq)
                ):
                    frame = await form.end(self._database, project_id, run_id, seq)
                    if frame is not None:
                        yield f"{prefix}{seq}\n{frame}"
                    return
            await asyncio.sleep(POLL_EVERY)


async def _from_memory(events: RunEvents, seq: int) -> AsyncIterator[str]:
    """The frames from ``seq`` on, as they come; those there together in one piece (a
    reader that fell behind catches up in one write, never waiting for more)."""
    while True:
        frames = events.frames
        if seq < len(frames):
            chunk = frames[seq] if seq == len(frames) - 1 else "".join(frames[seq:])
            seq = len(frames)
            yield chunk
        elif events.ended:
            return
        else:
            await events.wait_beyond(seq)


def resume_after(run_id: uuid.UUID, after: int | None, last_event_id: str | None) -> int:
    """The seq a reader has up to: ``?after=N``, or a ``Last-Event-ID`` (``<run>:<seq>``
    as sent, or a bare seq); -1 (from the start) when neither is given."""
    if after is not None:
        return after
    if last_event_id is None or not last_event_id.strip():
        return -1
    run, _, seq = last_event_id.strip().rpartition(":")
    if run and run != str(run_id):
        raise InvalidInput(
            f"Last-Event-ID names another run ({run}); this stream is run {run_id}.",
            field="Last-Event-ID",
        )
    if not seq.isdigit() or len(seq) > 9:
        raise InvalidInput(
            "Last-Event-ID must be an event id as sent (<run uuid>:<seq>) or a seq.",
            field="Last-Event-ID",
        )
    return int(seq)


async def logged(
    frames: AsyncIterator[str], events: RunEvents, terminator: str
) -> AsyncIterator[str]:
    """A request's own stream, its events numbered and kept as they are sent (the
    ``terminator`` is sent, not kept); closing it closes ``frames``."""
    try:
        async for frame in frames:
            yield frame if frame == terminator else events.add(frame)
    finally:
        events.end()
        close = getattr(frames, "aclose", None)
        if close is not None:
            await close()

"""(a) A run's latency at concurrency 1 on a 20-message session (SQLite), against the
floor: ``litellm.acompletion`` from this process to the same upstream with the same
prompt. A Responses API run on a session (``POST /v1/responses`` with the session as its
``conversation`` and one new user message as ``input``) is measured beside it, and so is
a native run that brings the same new message in its body (what the Responses run stores),
each on sessions of its own of the same size. The sides are interleaved call by call."""

from __future__ import annotations

import math

from bench import api
from bench.load import Sample, interleaved
from bench.report import Row, ms, ratio, within
from bench.rig import CHAT_MODEL, Rig

TARGET = 1.3
WARM_UP = 10
RUNS_PER_SESSION = 4  # each run adds a reply: sessions stay near their starting size


async def run(rig: Rig) -> list[Row]:
    server = await rig.server("sqlite")
    size = rig.plan.session_messages
    rounds = rig.plan.latency_rounds
    messages = api.prompt(size)
    direct = rig.direct
    async with api.client(server.base_url, 1) as http:
        count = math.ceil((rounds + WARM_UP) / RUNS_PER_SESSION)
        sessions = await api.create_sessions(http, CHAT_MODEL, count, size)
        conversations = await api.create_sessions(http, CHAT_MODEL, count, size)
        carrying = await api.create_sessions(http, CHAT_MODEL, count, size)

        async def floor(worker: int, index: int) -> bool:
            return await direct.complete(messages)

        async def same_transport(worker: int, index: int) -> bool:
            return await rig.direct_own_handler.complete(messages)

        async def ours(worker: int, index: int) -> bool:
            return await api.run(http, sessions[index % len(sessions)])

        async def responses(worker: int, index: int) -> bool:
            session = conversations[index % len(conversations)]
            return await api.respond(http, CHAT_MODEL, session, index)

        async def with_message(worker: int, index: int) -> bool:
            return await api.run_with_message(http, carrying[index % len(carrying)], index)

        sides = [floor, same_transport, ours, responses, with_message]
        await interleaved(sides, WARM_UP)
        base, own, mine, via_responses, native_with = await interleaved(sides, rounds)
    rig.check("(a) latency", base, own, mine, via_responses, native_with)
    p50, p95 = mine.p(50), mine.p(95)
    scenario = f"(a) latency c=1, {size}-msg session, SQLite"
    return [
        Row(
            scenario,
            "run p50 vs direct litellm p50",
            ms(p50),
            ms(base.p(50)),
            ratio(p50, base.p(50)),
            f"≤ {TARGET}x",
            within(p50 / base.p(50), TARGET),
        ),
        Row(
            scenario,
            "run p95 vs direct litellm p95",
            ms(p95),
            ms(base.p(95)),
            ratio(p95, base.p(95)),
        ),
        Row(scenario, "added per run (p50 difference)", ms(p50 - base.p(50))),
        Row(
            scenario,
            "run p50 vs direct litellm p50 on LiteLLM's own HTTP handler (the server's transport)",
            ms(p50),
            ms(own.p(50)),
            ratio(p50, own.p(50)),
        ),
        *responses_rows(scenario, via_responses, base, mine, native_with),
    ]


def responses_rows(
    scenario: str, responses: Sample, base: Sample, native: Sample, native_with: Sample
) -> list[Row]:
    """The Responses API run beside the native one: against the floor, as the native run
    is, and against the native run itself (the issue's bar: it costs no more), plain and
    carrying the same new user message (the same writes)."""
    p50, p95 = responses.p(50), responses.p(95)
    return [
        Row(
            scenario,
            "Responses API run on a session p50 vs direct litellm p50",
            ms(p50),
            ms(base.p(50)),
            ratio(p50, base.p(50)),
        ),
        Row(
            scenario,
            "Responses API run on a session p95 vs direct litellm p95",
            ms(p95),
            ms(base.p(95)),
            ratio(p95, base.p(95)),
        ),
        Row(
            scenario,
            "Responses API run on a session p50 vs native run p50",
            ms(p50),
            ms(native.p(50)),
            ratio(p50, native.p(50)),
        ),
        Row(
            scenario,
            "Responses API run on a session p50 vs native run with the same new message p50",
            ms(p50),
            ms(native_with.p(50)),
            ratio(p50, native_with.p(50)),
        ),
    ]

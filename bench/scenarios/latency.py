"""(a) A run's latency at concurrency 1 on a 20-message session (SQLite), against the
floor: ``litellm.acompletion`` from this process to the same upstream with the same
prompt. The two are interleaved call by call."""

from __future__ import annotations

import math

from bench import api
from bench.load import interleaved
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
        sessions = await api.create_sessions(
            http, CHAT_MODEL, math.ceil((rounds + WARM_UP) / RUNS_PER_SESSION), size
        )

        async def floor(worker: int, index: int) -> bool:
            return await direct.complete(messages)

        async def same_transport(worker: int, index: int) -> bool:
            return await rig.direct_own_handler.complete(messages)

        async def ours(worker: int, index: int) -> bool:
            return await api.run(http, sessions[index % len(sessions)])

        sides = [floor, same_transport, ours]
        await interleaved(sides, WARM_UP)
        base, own, mine = await interleaved(sides, rounds)
    rig.check("(a) latency", base, own, mine)
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
    ]

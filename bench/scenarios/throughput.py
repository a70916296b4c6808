"""(b) Throughput and p95 at concurrency 32 and 128, on SQLite and on PostgreSQL, against
the direct LiteLLM ceiling at the same concurrency. Blocks of a fixed number of runs,
interleaved: direct, then each database, and again for every round. On each database a
Responses API run on a session (``POST /v1/responses``, the session as its
``conversation``) is a side too, and so is a native run bringing the same new user
message (the like-for-like comparison), each on a pool of sessions of its own of the
same size."""

from __future__ import annotations

import httpx

from bench import api
from bench.load import Call, Sample, closed_loop, median_throughput
from bench.report import Row, at_least, ms, per_s, ratio
from bench.rig import CHAT_MODEL, Rig

TARGET = 0.8  # of the direct ceiling, at concurrency 32
TARGET_CONCURRENCY = 32
WARM_UP = 64
RESPONSES = "responses"  # a side's suffix: the Responses API on that database
WITH_MESSAGE = "with a message"  # a side's suffix: native runs that bring a new message


def session_call(http: httpx.AsyncClient, pool: list[str], concurrency: int) -> Call:
    """Worker w only ever runs sessions w, w+c, w+2c... of the pool: no two workers share
    a session, so no run waits for another (one run at a time per session)."""
    per_worker = len(pool) // concurrency

    async def call(worker: int, index: int) -> bool:
        return await api.run(http, pool[worker + concurrency * (index % per_worker)])

    return call


def message_call(http: httpx.AsyncClient, pool: list[str], concurrency: int) -> Call:
    """As ``session_call``, each run bringing one new user message (as a response's input
    does): the like-for-like native side for the Responses API's."""
    per_worker = len(pool) // concurrency

    async def call(worker: int, index: int) -> bool:
        session = pool[worker + concurrency * (index % per_worker)]
        return await api.run_with_message(http, session, index)

    return call


def responses_call(http: httpx.AsyncClient, pool: list[str], concurrency: int) -> Call:
    """As ``session_call``, through the Responses API: worker w only ever runs sessions
    w, w+c, w+2c... of the pool, each as a response's conversation."""
    per_worker = len(pool) // concurrency

    async def call(worker: int, index: int) -> bool:
        session = pool[worker + concurrency * (index % per_worker)]
        return await api.respond(http, CHAT_MODEL, session, index)

    return call


async def run(rig: Rig) -> list[Row]:
    plan = rig.plan
    messages = api.prompt(plan.session_messages)
    direct = rig.direct
    pool_size = max(plan.concurrencies)  # one session per worker at the most
    servers = {db: await rig.server(db) for db in plan.databases}
    clients = {db: api.client(s.base_url, max(plan.concurrencies)) for db, s in servers.items()}
    rows: list[Row] = []
    try:
        pools = {
            db: await api.create_sessions(http, CHAT_MODEL, pool_size, plan.session_messages)
            for db, http in clients.items()
        }
        conversations = {
            db: await api.create_sessions(http, CHAT_MODEL, pool_size, plan.session_messages)
            for db, http in clients.items()
        }
        carrying = {
            db: await api.create_sessions(http, CHAT_MODEL, pool_size, plan.session_messages)
            for db, http in clients.items()
        }

        async def floor(worker: int, index: int) -> bool:
            return await direct.complete(messages)

        for concurrency in plan.concurrencies:
            sides: dict[str, Call] = {"direct": floor}
            for db, http in clients.items():
                sides[db] = session_call(http, pools[db], concurrency)
                sides[f"{db} {RESPONSES}"] = responses_call(http, conversations[db], concurrency)
                sides[f"{db} {WITH_MESSAGE}"] = message_call(http, carrying[db], concurrency)
            for call in sides.values():
                await closed_loop(call, concurrency, WARM_UP)
            samples: dict[str, list[Sample]] = {side: [] for side in sides}
            for _ in range(plan.throughput_rounds):
                for side, call in sides.items():
                    samples[side].append(
                        await closed_loop(
                            call, concurrency, max(plan.throughput_requests, 2 * concurrency)
                        )
                    )
            for side, taken in samples.items():
                rig.check(f"(b) c={concurrency} {side}", *taken)
            rows += _rows(concurrency, samples)
        rig.loaded.update(plan.databases)
    finally:
        for http in clients.values():
            await http.aclose()
    return rows


def merged(samples: list[Sample]) -> Sample:
    total = Sample()
    for sample in samples:
        total = total.merge(sample)
    return total


def _rows(concurrency: int, samples: dict[str, list[Sample]]) -> list[Row]:
    ceiling = median_throughput(samples["direct"])
    ceiling_p95 = merged(samples["direct"]).p(95)
    rows = []
    for side, taken in samples.items():
        if side == "direct" or side.endswith((RESPONSES, WITH_MESSAGE)):
            continue
        name = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[side]
        scenario = f"(b) throughput c={concurrency}, {name}"
        done = median_throughput(taken)
        p95 = merged(taken).p(95)
        targeted = concurrency == TARGET_CONCURRENCY
        rows.append(
            Row(
                scenario,
                "runs/s vs direct litellm calls/s",
                per_s(done),
                per_s(ceiling),
                ratio(done, ceiling),
                f"≥ {TARGET}x" if targeted else "",
                at_least(done / ceiling, TARGET) if targeted else None,
            )
        )
        rows.append(
            Row(scenario, "p95 vs direct p95", ms(p95), ms(ceiling_p95), ratio(p95, ceiling_p95))
        )
        other = samples.get(f"{side} {RESPONSES}")
        if other is None:
            continue
        via, via_p95 = median_throughput(other), merged(other).p(95)
        rows += [
            Row(
                scenario,
                "Responses API runs on a session/s vs direct litellm calls/s",
                per_s(via),
                per_s(ceiling),
                ratio(via, ceiling),
            ),
            Row(
                scenario,
                "Responses API p95 vs direct p95",
                ms(via_p95),
                ms(ceiling_p95),
                ratio(via_p95, ceiling_p95),
            ),
            Row(
                scenario,
                "Responses API runs/s vs native runs/s",
                per_s(via),
                per_s(done),
                ratio(via, done),
            ),
        ]
        carried = samples.get(f"{side} {WITH_MESSAGE}")
        if carried is not None:
            like = median_throughput(carried)
            rows.append(
                Row(
                    scenario,
                    "Responses API runs/s vs native runs with the same new message/s",
                    per_s(via),
                    per_s(like),
                    ratio(via, like),
                )
            )
    return rows

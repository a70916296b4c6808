"""(d) The same requests through LiteLLM's proxy (its own venv, one process, no database)
on the same upstream: what a user would otherwise put in front of their models. Its
latency at concurrency 1 and throughput at 32 are interleaved with direct LiteLLM and
with our runs (SQLite, 20-message sessions); its idle RSS and time to ready are measured
as ours are."""

from __future__ import annotations

import math

from bench import api
from bench.load import Call, Sample, closed_loop, interleaved, median_throughput
from bench.processes import PROXY_KEY
from bench.report import Row, mb, ms, per_s, ratio, secs
from bench.rig import CHAT_MODEL, Rig
from bench.scenarios.throughput import session_call

CONCURRENCY = 32
WARM_UP = 10


async def run(rig: Rig) -> list[Row]:
    proxy = await rig.litellm_proxy()
    if proxy is None:
        return []
    server = await rig.server("sqlite")
    plan = rig.plan
    messages = api.prompt(plan.session_messages)
    body = {"model": "bench-model", "messages": messages}
    direct = rig.direct
    async with (
        api.client(server.base_url, CONCURRENCY) as http,
        api.client(proxy.base_url, CONCURRENCY, PROXY_KEY) as proxied,
    ):
        pool = await api.create_sessions(
            http,
            CHAT_MODEL,
            max(2 * CONCURRENCY, math.ceil(plan.proxy_rounds / 4)),
            plan.session_messages,
        )

        async def floor(worker: int, index: int) -> bool:
            return await direct.complete(messages)

        async def through_proxy(worker: int, index: int) -> bool:
            response = await proxied.post("/v1/chat/completions", json=body)
            return response.status_code == 200

        async def ours(worker: int, index: int) -> bool:
            return await api.run(http, pool[index % len(pool)])

        await interleaved([floor, through_proxy, ours], WARM_UP)
        base, via_proxy, mine = await interleaved([floor, through_proxy, ours], plan.proxy_rounds)
        rig.check("(d) proxy c=1", base, via_proxy, mine)
        loaded: dict[str, Call] = {
            "direct": floor,
            "proxy": through_proxy,
            "ours": session_call(http, pool, CONCURRENCY),
        }
        blocks: dict[str, list[Sample]] = {side: [] for side in loaded}
        for _ in range(plan.throughput_rounds):
            for side, call in loaded.items():
                blocks[side].append(await closed_loop(call, CONCURRENCY, plan.throughput_requests))
        rig.check("(d) proxy c=32", *blocks["proxy"], *blocks["ours"])
    rig.loaded.add("sqlite")
    floor_p50, proxy_p50, ours_p50 = base.p(50), via_proxy.p(50), mine.p(50)
    floor_rate, proxy_rate, ours_rate = (median_throughput(blocks[s]) for s in loaded)
    scenario = "(d) vs LiteLLM proxy, SQLite"
    return [
        Row(
            scenario,
            f"p50 c=1, ours vs proxy (proxy = {ratio(proxy_p50, floor_p50)} "
            f"direct {ms(floor_p50)})",
            ms(ours_p50),
            ms(proxy_p50),
            ratio(ours_p50, proxy_p50),
        ),
        Row(
            scenario,
            f"throughput c={CONCURRENCY}, ours vs proxy (proxy = {ratio(proxy_rate, floor_rate)} "
            f"direct {per_s(floor_rate)})",
            per_s(ours_rate),
            per_s(proxy_rate),
            ratio(ours_rate, proxy_rate),
        ),
        Row(
            scenario,
            "idle RSS, ours vs proxy",
            mb(server.idle_rss_mb),
            mb(proxy.idle_rss_mb),
            ratio(server.idle_rss_mb, proxy.idle_rss_mb),
        ),
        Row(
            scenario,
            "time to ready, ours vs proxy",
            secs(server.ready_seconds),
            secs(proxy.ready_seconds),
            ratio(server.ready_seconds, proxy.ready_seconds),
        ),
    ]

"""The upstream's own ceiling: if it is far above anything measured through LiteLLM, it is
not what limits those figures. Measured with the raw client (httpx would cost more than
the upstream does), keep-alive, the same 20-message body the runs send."""

from __future__ import annotations

import json

from bench import api
from bench.load import closed_loop
from bench.rawhttp import RawConnection, post_request
from bench.report import Row, ms, per_s
from bench.rig import Rig

CONCURRENCY = 32


async def run(rig: Rig) -> list[Row]:
    assert rig.upstream is not None
    port = int(rig.upstream.base_url.rsplit(":", 1)[1])
    body = json.dumps({"model": "bench-model", "messages": api.prompt(20)}).encode()
    request = post_request("/v1/chat/completions", port, body)
    connections = [await RawConnection.open(port) for _ in range(CONCURRENCY)]
    try:

        async def call(worker: int, index: int) -> bool:
            return (await connections[worker].send(request)).status == 200

        total = rig.plan.upstream_requests
        await closed_loop(call, CONCURRENCY, 500)  # warm-up
        single = await closed_loop(call, 1, max(200, total // 10))
        many = await closed_loop(call, CONCURRENCY, total)
    finally:
        for connection in connections:
            await connection.close()
    return [
        Row("upstream", "own latency p50, c=1", ms(single.p(50)), target="(not the bottleneck)"),
        Row(
            "upstream",
            f"own ceiling, c={CONCURRENCY} (raw client on the other core)",
            per_s(many.throughput),
            f"p95 {ms(many.p(95))}",
        ),
    ]

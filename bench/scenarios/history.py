"""Issue 8, item 5: run latency at 10, 1,000 and 10,000 stored messages (SQLite), and
add_messages time as the history grows. A run should read the window it can send, not
the history, so its latency should not grow with the history.

The chat model's version sets a small ``context_window`` so every size sends about the
same window (the table says how many messages each sent): what differs between the
sizes is only what is stored. Messages go in through the API, 1,000 per request (the
most one add takes); the largest session's batches are timed as it fills. Then, round
after round and size after size: add one user message (timed), then run (timed)."""

from __future__ import annotations

import math
import statistics
import time

import httpx

from bench import api
from bench.load import Call, interleaved
from bench.report import Row, ms, ratio, secs, within
from bench.rig import Rig

CHAT_MODEL = "bench_history"
BATCH = 1000
REPLY_TOKENS = 64
WINDOW_TOKENS = REPLY_TOKENS + 700  # about 15 of the bench's messages
TARGET = 1.2
SMALL = 100  # sizes below this get a pool of sessions, so runs barely grow them


async def fill(http: httpx.AsyncClient, session: str, size: int) -> list[tuple[int, float]]:
    """Store ``size`` messages in batches; (stored before, seconds) per batch."""
    timings = []
    for start in range(0, size, BATCH):
        count = min(BATCH, size - start)
        messages = api.conversation(count, start)
        began = time.perf_counter()
        await api.add_messages(http, session, messages)
        timings.append((start, time.perf_counter() - began))
    return timings


async def run(rig: Rig) -> list[Row]:
    database = rig.plan.databases[0]
    server = await rig.server(database)
    sizes = sorted(rig.plan.history_sizes)
    rounds = rig.plan.history_rounds
    pools: dict[int, list[str]] = {}
    batches: list[tuple[int, float]] = []
    sent: dict[int, object] = {}
    async with api.client(server.base_url, 8) as http:
        await api.create_chat_model(
            http,
            CHAT_MODEL,
            rig.api_base,
            params={"max_tokens": REPLY_TOKENS},
            context_window=WINDOW_TOKENS,
        )
        filled_at = time.perf_counter()
        for size in sizes:
            if size < SMALL:
                pools[size] = await api.create_sessions(
                    http, CHAT_MODEL, math.ceil(rounds / 2), size
                )
                continue
            session = await api.create_session(http, CHAT_MODEL, 0)
            batches = await fill(http, session, size)
            pools[size] = [session]
        filled = time.perf_counter() - filled_at
        for size, pool in pools.items():
            sent[size] = (await api.run_figures(http, pool[0])).get("messages_sent")

        def adder(pool: list[str]) -> Call:
            async def call(worker: int, index: int) -> bool:
                session = pool[index // 2 % len(pool)]
                await api.add_messages(http, session, [{"role": "user", "content": "And now?"}])
                return True

            return call

        def runner(pool: list[str]) -> Call:
            async def call(worker: int, index: int) -> bool:
                return await api.run(http, pool[index // 2 % len(pool)])

            return call

        calls = [c for size in sizes for c in (adder(pools[size]), runner(pools[size]))]
        await interleaved(calls, 2)
        samples = await interleaved(calls, rounds)
    rig.check("(h) history", *samples)
    adds = {size: samples[2 * i] for i, size in enumerate(sizes)}
    runs = {size: samples[2 * i + 1] for i, size in enumerate(sizes)}
    smallest, largest = sizes[0], sizes[-1]
    scenario = f"(h) history, {database}"
    rows = []
    for size in sizes:
        last = size == largest and size != smallest
        run_ratio = runs[size].p(50) / runs[smallest].p(50)
        rows.append(
            Row(
                scenario,
                f"run p50 at {size:,} stored (sent {sent[size]}) vs at {smallest:,}",
                ms(runs[size].p(50)),
                ms(runs[smallest].p(50)),
                ratio(runs[size].p(50), runs[smallest].p(50)),
                f"≤ {TARGET}x" if last else "",
                within(run_ratio, TARGET) if last else None,
            )
        )
    for size in sizes:
        last = size == largest and size != smallest
        add_ratio = adds[size].p(50) / adds[smallest].p(50)
        rows.append(
            Row(
                scenario,
                f"add 1 message p50 at {size:,} stored vs at {smallest:,}",
                ms(adds[size].p(50)),
                ms(adds[smallest].p(50)),
                ratio(adds[size].p(50), adds[smallest].p(50)),
                f"flat (≤ {TARGET}x)" if last else "",
                within(add_ratio, TARGET) if last else None,
            )
        )
    if len(batches) > 1:
        # Each batch is one sample: compare the median of the first and last few.
        few = max(1, min(3, len(batches) // 2))
        first = statistics.median(t for _, t in batches[:few])
        last_batch = statistics.median(t for _, t in batches[-few:])
        first_at, last_at = batches[few // 2][0], batches[-few:][few // 2][0]
        rows.append(
            Row(
                scenario,
                f"add {BATCH:,} messages at ~{last_at:,} stored vs at ~{first_at:,}, median of "
                f"{few} (all sizes filled in {secs(filled)})",
                ms(last_batch * 1000),
                ms(first * 1000),
                ratio(last_batch, first),
                f"flat (≤ {TARGET}x)",
                within(last_batch / first, TARGET),
            )
        )
    return rows

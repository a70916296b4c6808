"""(p) Paced streams: N streamed runs started at once, each on a fresh one-message session,
against an upstream that streams at a real model's pace (``--paced-chunks`` K pieces
``--paced-gap-ms`` D apart, 50 x 40 ms: a 2.0 s reply), the way a chat service holds many
replies open at once.

For each N in ``--paced-counts`` (20, 100, 200), interleaved side by side: the upstream
alone (read raw), direct in-process ``litellm.acompletion(stream=True)`` (on its default
transport, and on its own HTTP handler as the server sends), LiteLLM's proxy (one
worker), and one ``chatmodel serve`` on SQLite through its three streaming routes: a native
run (``POST /v1/sessions/{uuid}/run``), an OpenAI-compatible stream
(``POST /v1/chat/completions``) and a Responses stream (``POST /v1/responses``).
Each block reports first-event and whole-reply p50/p99 (the ideal is K x D), the worst pause
between two events beyond the upstream's own D (p50/p99 over streams), failed streams,
CPU per stream (the server process and its workers; for direct LiteLLM, the benchmark
process itself) and how much the server's resident memory grew per stream in flight.

Then capacity: native streams on PostgreSQL, one worker against ``--workers 2``, at
growing N (``--paced-ladder``) until a block's whole-reply p99 passes 1.3x the ideal; the
largest N within it is what that server holds.

Every reader is a bare asyncio socket (``bench.rawhttp.stream_events``), so hundreds at
once cost the benchmark process little beside the servers it measures.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from bench import api
from bench.direct import DirectLiteLLM, transport
from bench.load import percentile
from bench.processes import PROXY_KEY, Process, start_litellm_proxy, start_upstream
from bench.rawhttp import Paced, post_request, stream_events
from bench.report import Row, at_least, ratio, within
from bench.rig import Rig

PACED_MODEL = "bench-paced"
WHOLE_BOUND = 1.3  # whole-reply p99 within this many times the ideal
GAP_BOUND_MS = 150.0
RSS_BOUND_KB = 150.0
SAMPLE_SECONDS = 0.05


@dataclass
class Block:
    """N streams of one side started at once, and what they cost."""

    side: str
    count: int
    streams: list[Paced] = field(default_factory=list)
    cpu_seconds: float = math.nan  # the measured process(es), over the whole block
    rss_growth_mb: float = math.nan  # peak resident memory during the block minus before it
    peak_rss_mb: float = math.nan  # peak resident memory during the block
    wall: float = 0.0

    def ok(self) -> list[Paced]:
        return [s for s in self.streams if not s.failed and s.arrivals]

    @property
    def errors(self) -> int:
        return len(self.streams) - len(self.ok())

    def p(self, what: Callable[[Paced], float], q: float) -> float:
        return percentile([what(s) for s in self.ok()], q)

    def cpu_ms_per_stream(self) -> float:
        return self.cpu_seconds * 1000 / self.count

    def rss_kb_per_stream(self) -> float:
        return self.rss_growth_mb * 1024 / self.count


async def _sampled_peak(process: Process, stop: asyncio.Event) -> float:
    peak = process.rss_mb()
    while not stop.is_set():
        peak = max(peak, process.rss_mb())
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_SECONDS)
    return max(peak, process.rss_mb())


async def measured(
    side: str,
    count: int,
    one: Callable[[int], Awaitable[Paced]],
    process: Process | None,
) -> Block:
    """Start ``count`` streams of ``one`` at once and wait for all; the CPU and memory of
    ``process`` (None: this process's own CPU, direct LiteLLM's, on the transport its
    side names) over the block."""
    if process is None:
        with transport("own HTTP handler" in side):
            return await _measured(side, count, one, process)
    return await _measured(side, count, one, process)


async def _measured(
    side: str,
    count: int,
    one: Callable[[int], Awaitable[Paced]],
    process: Process | None,
) -> Block:
    block = Block(side, count)
    stop = asyncio.Event()
    sampler = None
    if process is not None:
        before_rss = process.rss_mb()
        before_cpu = process.cpu_seconds()
        sampler = asyncio.create_task(_sampled_peak(process, stop))
    else:
        before_cpu = time.process_time()
    started = time.perf_counter()
    block.streams = list(await asyncio.gather(*(one(i) for i in range(count))))
    block.wall = time.perf_counter() - started
    if process is not None and sampler is not None:
        stop.set()
        block.peak_rss_mb = await sampler
        block.rss_growth_mb = block.peak_rss_mb - before_rss
        block.cpu_seconds = process.cpu_seconds() - before_cpu
    else:
        block.cpu_seconds = time.process_time() - before_cpu
    return block


def _port(base_url: str) -> int:
    return int(base_url.rsplit(":", 1)[1].split("/")[0])


def _request(base_url: str, path: str, body: dict[str, Any], key: str | None = None) -> bytes:
    return post_request(path, _port(base_url), json.dumps(body).encode(), key)


def _user_text(n: int) -> str:
    return api.USER_TEXT.format(n=n)


class PacedRig:
    """What the paced blocks need beyond the shared rig: an upstream at the real pace, the
    proxy on it, and the paced chat model on each server."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.upstream: Process | None = None
        self.proxy: Process | None = None
        self.modelled: set[str] = set()

    @property
    def api_base(self) -> str:
        assert self.upstream is not None
        return self.upstream.base_url + "/v1"

    async def start(self) -> None:
        plan = self.rig.plan
        self.upstream = await start_upstream(
            self.rig.workdir / "paced-upstream", plan.paced_gap_ms, plan.paced_chunks
        )
        self.rig.extra_processes.append(self.upstream)
        litellm = plan.proxy_venv / "bin" / "litellm"
        if litellm.exists():
            self.proxy = await start_litellm_proxy(
                plan.proxy_venv, self.rig.workdir / "paced-proxy", self.api_base
            )
            self.rig.extra_processes.append(self.proxy)
        else:
            self.rig.notes.append(
                f"(p) LiteLLM's proxy is not installed in {plan.proxy_venv}: no proxy rows"
            )

    async def server(self, database: str, workers: int = 1) -> Process:
        server = await self.rig.server(database, workers)
        if server.base_url not in self.modelled:
            async with api.client(server.base_url, 4) as http:
                await api.create_chat_model(http, PACED_MODEL, self.api_base)
            self.modelled.add(server.base_url)
        return server

    # One stream of each side; ``n`` numbers it within its block.

    def upstream_stream(self) -> Callable[[int], Awaitable[Paced]]:
        assert self.upstream is not None
        body = {
            "model": "bench-model",
            "messages": [{"role": "user", "content": _user_text(0)}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        request = _request(self.upstream.base_url, "/v1/chat/completions", body)
        port = _port(self.upstream.base_url)
        return lambda n: stream_events(port, request)

    def proxy_stream(self) -> Callable[[int], Awaitable[Paced]]:
        assert self.proxy is not None
        port = _port(self.proxy.base_url)

        def one(n: int) -> Awaitable[Paced]:
            body = {
                "model": "bench-model",
                "messages": [{"role": "user", "content": _user_text(n)}],
                "stream": True,
            }
            request = _request(self.proxy_url, "/chat/completions", body, PROXY_KEY)
            return stream_events(port, request)

        return one

    @property
    def proxy_url(self) -> str:
        assert self.proxy is not None
        return self.proxy.base_url

    def direct_stream(self, own_handler: bool) -> Callable[[int], Awaitable[Paced]]:
        """Direct LiteLLM streams to the paced upstream; run them inside
        ``transport(own_handler)``."""
        direct = DirectLiteLLM(self.api_base, own_handler=own_handler)

        async def one(n: int) -> Paced:
            messages = [{"role": "user", "content": _user_text(n)}]
            return await direct.paced(messages)

        return one

    async def native_streams(
        self, server: Process, count: int
    ) -> Callable[[int], Awaitable[Paced]]:
        """Fresh one-message sessions, made before the block (not timed)."""
        async with api.client(server.base_url, 4) as http:
            sessions = await api.create_sessions(http, PACED_MODEL, count, 1)
        requests = [
            _request(server.base_url, f"/v1/sessions/{s}/run", {"stream": True}) for s in sessions
        ]
        port = _port(server.base_url)
        return lambda n: stream_events(port, requests[n])

    def openai_stream(self, server: Process) -> Callable[[int], Awaitable[Paced]]:
        def one(n: int) -> Awaitable[Paced]:
            body = {
                "model": PACED_MODEL,
                "messages": [{"role": "user", "content": _user_text(n)}],
                "stream": True,
            }
            request = _request(server.base_url, "/v1/chat/completions", body)
            return stream_events(_port(server.base_url), request)

        return one

    def responses_stream(self, server: Process) -> Callable[[int], Awaitable[Paced]]:
        def one(n: int) -> Awaitable[Paced]:
            body = {"model": PACED_MODEL, "input": _user_text(n), "stream": True}
            request = _request(server.base_url, "/v1/responses", body)
            return stream_events(_port(server.base_url), request)

        return one


def _summary(block: Block, ideal: float, gap: float) -> str:
    def ms_of(what: Callable[[Paced], float], q: float) -> float:
        return block.p(what, q) * 1000

    first = f"first {ms_of(lambda s: s.first, 50):.0f} / {ms_of(lambda s: s.first, 99):.0f} ms"
    whole = (
        f"whole {block.p(lambda s: s.last, 50):.2f} / {block.p(lambda s: s.last, 99):.2f} s"
        f" ({block.p(lambda s: s.last, 99) / ideal:.2f}x ideal)"
    )
    extra = (
        f"extra gap {ms_of(lambda s: s.worst_gap() - gap, 50):.0f} / "
        f"{ms_of(lambda s: s.worst_gap() - gap, 99):.0f} ms"
    )
    cpu = f"CPU {block.cpu_ms_per_stream():.1f} ms/stream"
    rss = ""
    if not math.isnan(block.rss_growth_mb):
        rss = f", RSS +{block.rss_kb_per_stream():.0f} KB/stream"
    errors = f", {block.errors} failed" if block.errors else ""
    return f"{first}; {whole}; {extra}; {cpu}{rss}{errors}"


def _whole_p99(block: Block) -> float:
    if block.errors:
        return math.inf
    return block.p(lambda s: s.last, 99)


async def paced_rig(rig: Rig) -> PacedRig:
    """The rig's paced upstream, proxy and chat models, started on first use."""
    paced = rig.shared.get("paced")
    if not isinstance(paced, PacedRig):
        paced = PacedRig(rig)
        await paced.start()
        rig.shared["paced"] = paced
    return paced


async def run(rig: Rig) -> list[Row]:
    plan = rig.plan
    paced = await paced_rig(rig)
    ideal = plan.paced_chunks * plan.paced_gap_ms / 1000
    gap = plan.paced_gap_ms / 1000
    server = await paced.server("sqlite")
    scenario = (
        f"(p) paced streams, {plan.paced_chunks} x {plan.paced_gap_ms:g} ms "
        f"(ideal {ideal:.1f} s), SQLite, one process"
    )
    rows: list[Row] = []
    blocks: dict[tuple[str, int], Block] = {}
    # A warm-up block per route, so no first block pays for imports and caches.
    for warm in (paced.openai_stream(server), paced.responses_stream(server)):
        await measured("warm-up", 4, warm, server)
    await measured("warm-up", 4, await paced.native_streams(server, 4), server)
    await asyncio.sleep(0.5)
    idle_rss = server.rss_mb()  # warm, with no stream in flight
    await measured("warm-up direct (OpenAI SDK transport)", 4, paced.direct_stream(False), None)
    await measured("warm-up direct (its own HTTP handler)", 4, paced.direct_stream(True), None)
    if paced.proxy is not None:
        await measured("warm-up", 4, paced.proxy_stream(), paced.proxy)
    for count in plan.paced_counts:
        sides: list[tuple[str, Callable[[int], Awaitable[Paced]], Process | None]] = [
            ("upstream alone", paced.upstream_stream(), paced.upstream),
            ("direct litellm (OpenAI SDK transport)", paced.direct_stream(False), None),
            ("direct litellm (its own HTTP handler)", paced.direct_stream(True), None),
        ]
        if paced.proxy is not None:
            sides.append(("LiteLLM proxy", paced.proxy_stream(), paced.proxy))
        sides += [
            ("native run stream", await paced.native_streams(server, count), server),
            ("/v1/chat/completions stream", paced.openai_stream(server), server),
            ("/v1/responses stream", paced.responses_stream(server), server),
        ]
        for side, one, process in sides:
            block = await measured(side, count, one, process)
            blocks[(side, count)] = block
            rows.append(Row(scenario, f"N={count}: {side}", _summary(block, ideal, gap)))
            print(f"    N={count} {side}: {_summary(block, ideal, gap)}", flush=True)
            await asyncio.sleep(0.5)  # let the servers settle between blocks
    rows += _targets(scenario, blocks, plan.paced_counts, ideal, gap, idle_rss)
    if "postgresql" in plan.databases:
        rows += await _capacity(paced, plan.paced_ladder, ideal, gap)
    return rows


def _targets(
    scenario: str,
    blocks: dict[tuple[str, int], Block],
    counts: list[int],
    ideal: float,
    gap: float,
    idle_rss: float,
) -> list[Row]:
    rows: list[Row] = []
    at = 100 if 100 in counts else counts[-1]
    native = blocks[("native run stream", at)]
    direct = blocks[("direct litellm (OpenAI SDK transport)", at)]
    ours_cpu, direct_cpu = native.cpu_ms_per_stream(), direct.cpu_ms_per_stream()
    rows.append(
        Row(
            scenario,
            f"N={at}: server CPU per native stream vs direct in-process litellm",
            f"{ours_cpu:.1f} ms",
            f"{direct_cpu:.1f} ms",
            ratio(ours_cpu, direct_cpu),
            "≤ 1.00x",
            within(ours_cpu / direct_cpu, 1.0),
        )
    )
    proxy = blocks.get(("LiteLLM proxy", at))
    if proxy is not None:
        proxy_cpu = proxy.cpu_ms_per_stream()
        rows.append(
            Row(
                scenario,
                f"N={at}: server CPU per native stream vs LiteLLM's proxy",
                f"{ours_cpu:.1f} ms",
                f"{proxy_cpu:.1f} ms",
                ratio(ours_cpu, proxy_cpu),
                "≤ 0.50x",
                within(ours_cpu / proxy_cpu, 0.5),
            )
        )
    whole = _whole_p99(native)
    rows.append(
        Row(
            scenario,
            f"N={at}: native whole-reply p99 vs the ideal",
            f"{whole:.2f} s",
            f"{ideal:.2f} s",
            ratio(whole, ideal),
            f"≤ {WHOLE_BOUND:g}x",
            within(whole / ideal, WHOLE_BOUND),
        )
    )
    extra = native.p(lambda s: s.worst_gap() - gap, 99) * 1000
    rows.append(
        Row(
            scenario,
            f"N={at}: native worst extra gap p99",
            f"{extra:.0f} ms",
            target=f"< {GAP_BOUND_MS:g} ms",
            met=within(extra, GAP_BOUND_MS),
        )
    )
    top = counts[-1]
    biggest = blocks[("native run stream", top)]
    # Against the warm idle server, not the block's start: memory freed by one block is
    # kept by the process for the next, so growth within a late block says little.
    rss = (biggest.peak_rss_mb - idle_rss) * 1024 / top
    rows.append(
        Row(
            scenario,
            f"N={top}: server RSS per native stream in flight (peak minus warm idle "
            f"{idle_rss:.0f} MB, over N)",
            f"{rss:.0f} KB",
            target=f"< {RSS_BOUND_KB:g} KB",
            met=within(rss, RSS_BOUND_KB),
        )
    )
    return rows


async def _capacity(paced: PacedRig, ladder: list[int], ideal: float, gap: float) -> list[Row]:
    """The largest N of ``ladder`` whose native whole-reply p99 stays within the bound,
    for one worker and for two on PostgreSQL, the two interleaved step by step."""
    servers = {workers: await paced.server("postgresql", workers) for workers in (1, 2)}
    for workers, server in servers.items():  # every worker's imports, pools and caches warm
        for _ in range(2):
            await measured(
                "warm-up", 8 * workers, await paced.native_streams(server, 8 * workers), server
            )
    held = {1: 0, 2: 0}
    going = {1: True, 2: True}  # still within the bound at every N so far
    p99_at: dict[tuple[int, int], float] = {}
    scenario = "(p) paced streams, native, PostgreSQL: capacity within 1.3x the ideal"
    for count in ladder:
        for workers in [w for w, still in going.items() if still]:
            one = await paced.native_streams(servers[workers], count)
            block = await measured(f"{workers} worker(s)", count, one, servers[workers])
            whole = _whole_p99(block)
            p99_at[(workers, count)] = whole
            print(f"    capacity, {workers} worker(s), N={count}: {_summary(block, ideal, gap)}")
            if whole <= WHOLE_BOUND * ideal:
                held[workers] = count
            else:
                going[workers] = False
            await asyncio.sleep(0.5)
        if not any(going.values()):
            break
    if (2, 200) not in p99_at:  # the target's own point, past where the ladder stopped
        one = await paced.native_streams(servers[2], 200)
        block = await measured("2 worker(s)", 200, one, servers[2])
        p99_at[(2, 200)] = _whole_p99(block)
        print(f"    capacity, 2 worker(s), N=200: {_summary(block, ideal, gap)}")
    rows = []
    for workers in (1, 2):
        tried = ", ".join(
            f"N={n}: {p:.2f} s" for (w, n), p in sorted(p99_at.items()) if w == workers
        )
        rows.append(Row(scenario, f"--workers {workers}: whole-reply p99 per N", tried or "n/a"))
    top = ladder[-1]
    if (2, 200) in p99_at:
        whole = p99_at[(2, 200)]
        rows.append(
            Row(
                scenario,
                "N=200, --workers 2: whole-reply p99 vs the ideal",
                f"{whole:.2f} s",
                f"{ideal:.2f} s",
                ratio(whole, ideal),
                f"≤ {WHOLE_BOUND:g}x",
                within(whole / ideal, WHOLE_BOUND),
            )
        )
    share = held[2] / held[1] if held[1] else math.nan
    rows.append(
        Row(
            scenario,
            "streams held within the bound, --workers 2 vs one worker",
            f"{held[2]}{'+' if held[2] == top else ''}",
            f"{held[1]}{'+' if held[1] == top else ''}",
            "n/a" if math.isnan(share) else f"{share:.2f}x",
            "≥ 1.7x",
            at_least(share, 1.7),
        )
    )
    return rows

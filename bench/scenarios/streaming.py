"""(c) Streaming: time to the first event and to the end of the stream for a streamed run
(SQLite, 20-message session), against direct LiteLLM streaming and against the upstream's
own stream read with the same httpx client; beside it, the same run resumable
(``on_disconnect: continue``) and as a background run followed on
``GET /v1/runs/{uuid}/events`` (timed from its ``POST``), and a streamed Responses API run on a
session (``POST /v1/responses``, the session as its ``conversation``, ``stream: true``;
its stream ends with ``response.completed``), on sessions of its own of the same size.
They are interleaved stream by stream.
The upstream sends its first piece at once and each next one ``--stream-gap-ms`` later."""

from __future__ import annotations

import math
import statistics

from bench import api
from bench.api import StreamTimes
from bench.report import Row, ms, within
from bench.rig import CHAT_MODEL, Rig

TARGET_MS = 3.0
WARM_UP = 5
RUNS_PER_SESSION = 4


def p50_ms(times: list[StreamTimes], first: bool) -> float:
    values = [(t.first if first else t.last) * 1000 for t in times if t.ok]
    return statistics.median(values) if values else math.nan


async def run(rig: Rig) -> list[Row]:
    server = await rig.server("sqlite")
    size = rig.plan.session_messages
    rounds = rig.plan.stream_rounds
    messages = api.prompt(size)
    upstream_body = {
        "model": "bench-model",
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    direct = rig.direct
    sides: dict[str, list[StreamTimes]] = {
        "upstream": [],
        "direct": [],
        "own": [],
        "ours": [],
        "resumable": [],
        "followed": [],
        "responses": [],
    }
    async with api.client(server.base_url, 1) as http, api.client(rig.api_base, 1) as raw:
        count = math.ceil((rounds + WARM_UP) / RUNS_PER_SESSION)
        sessions = await api.create_sessions(http, CHAT_MODEL, count, size)
        conversations = await api.create_sessions(http, CHAT_MODEL, count, size)
        resumables = await api.create_sessions(http, CHAT_MODEL, count, size)
        followers = await api.create_sessions(http, CHAT_MODEL, count, size)
        for index in range(rounds + WARM_UP):
            session = sessions[index % len(sessions)]
            conversation = conversations[index % len(conversations)]
            taken = {
                "upstream": await api.sse_times(raw, "POST", "/chat/completions", upstream_body),
                "direct": await direct.stream(messages),
                "own": await rig.direct_own_handler.stream(messages),
                "ours": await api.sse_times(
                    http, "POST", f"/v1/sessions/{session}/run", {"stream": True}
                ),
                "resumable": await api.sse_times(
                    http,
                    "POST",
                    f"/v1/sessions/{resumables[index % count]}/run",
                    {"stream": True, "on_disconnect": "continue"},
                ),
                "followed": await api.followed_times(http, followers[index % count]),
                "responses": await api.sse_times(
                    http,
                    "POST",
                    "/v1/responses",
                    api.response_body(CHAT_MODEL, conversation, index, stream=True),
                ),
            }
            if index >= WARM_UP:
                for side, one in taken.items():
                    sides[side].append(one)
    for side, times in sides.items():
        failed = sum(not t.ok for t in times)
        if failed:
            rig.notes.append(f"(c) streaming {side}: {failed} stream(s) failed")
    first = {side: p50_ms(times, True) for side, times in sides.items()}
    last = {side: p50_ms(times, False) for side, times in sides.items()}
    scenario = f"(c) streaming c=1, {size}-msg session, SQLite"
    added = first["ours"] - first["direct"]
    return [
        Row(
            scenario,
            "first event p50 vs direct litellm first chunk",
            ms(first["ours"]),
            ms(first["direct"]),
            f"+{added:.1f} ms",
            f"≤ +{TARGET_MS:g} ms",
            within(added, TARGET_MS),
        ),
        Row(
            scenario,
            "first event p50 vs direct litellm first chunk on LiteLLM's own HTTP handler",
            ms(first["ours"]),
            ms(first["own"]),
            f"+{first['ours'] - first['own']:.1f} ms",
        ),
        Row(scenario, "upstream's own first event p50 (httpx)", ms(first["upstream"])),
        Row(
            scenario,
            "last event p50 vs direct litellm last chunk",
            ms(last["ours"]),
            ms(last["direct"]),
            f"+{last['ours'] - last['direct']:.1f} ms",
        ),
        Row(scenario, "upstream's own last event p50 (httpx)", ms(last["upstream"])),
        Row(
            scenario,
            'stream with "on_disconnect": "continue": last event p50 vs a plain stream',
            ms(last["resumable"]),
            ms(last["ours"]),
            f"{last['resumable'] - last['ours']:+.1f} ms",
        ),
        Row(
            scenario,
            "background stream followed on /v1/runs/{uuid}/events: first event p50 vs a "
            "plain stream",
            ms(first["followed"]),
            ms(first["ours"]),
            f"{first['followed'] - first['ours']:+.1f} ms",
        ),
        Row(
            scenario,
            "background stream followed on /v1/runs/{uuid}/events: last event p50 vs a "
            "plain stream",
            ms(last["followed"]),
            ms(last["ours"]),
            f"{last['followed'] - last['ours']:+.1f} ms",
        ),
        Row(
            scenario,
            "Responses API stream on a session: first event p50 vs direct litellm first chunk",
            ms(first["responses"]),
            ms(first["direct"]),
            f"+{first['responses'] - first['direct']:.1f} ms",
        ),
        Row(
            scenario,
            "Responses API stream on a session: last event p50 vs direct litellm last chunk",
            ms(last["responses"]),
            ms(last["direct"]),
            f"+{last['responses'] - last['direct']:.1f} ms",
        ),
        Row(
            scenario,
            "Responses API stream on a session: last event p50 vs native run's last event",
            ms(last["responses"]),
            ms(last["ours"]),
            f"{last['responses'] - last['ours']:+.1f} ms",
        ),
    ]

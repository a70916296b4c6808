"""``--profile SECONDS``: py-spy the server (on the first of ``--databases``) while it
serves runs at concurrency 32, then say where its time went; with (p) chosen, also while
it holds 100 paced native streams at once. py-spy is not a project dependency:
``pip install py-spy``.

Two views of the same samples: inclusive shares of the parts of a run (a sample counts
for every part on its stack, so the shares overlap), and the functions that were running
(self time), the top ones by share.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench import api
from bench.load import closed_loop
from bench.rig import CHAT_MODEL, Rig
from bench.scenarios.throughput import session_call

CONCURRENCY = 32
RATE = 100  # samples a second

# (what, a regular expression matched against each frame "function (path/file.py:line)";
# the path is service/chatmodel_service/... from a checkout, chatmodel_service/... installed)
PARTS: list[tuple[str, str]] = [
    ("the run route (runs/router.py run), all below it", r"^run [(/]chatmodel_service/runs/router"),
    (
        "run start phase (claim, add, read window)",
        r"\b_try_start [(/]chatmodel_service/runs/service",
    ),
    ("  reading/fitting the window (prompt_fit.py)", r"[(/]chatmodel_service/runs/prompt_fit"),
    ("  token counting (litellm.token_counter)", r"\btoken_counter \(litellm"),
    (
        "gateway: the LiteLLM call (incl. its HTTP)",
        r"_complete_once [(/]chatmodel_service/llm/gateway",
    ),
    ("  LiteLLM logging/callbacks machinery", r"litellm_logging|logging_worker|callback"),
    ("  LiteLLM cost calculation", r"cost_calculator|completion_cost|response_cost"),
    ("  OpenAI SDK request building (openai/_utils)", r"\(openai/"),
    ("  HTTP client to the upstream (httpx/aiohttp)", r"\((httpx|httpcore|aiohttp)/"),
    ("run finish phase (store reply, release)", r"\bfinish_run [(/]chatmodel_service/runs/service"),
    ("  LLMResponse/JSON of the stored result", r"model_dump|JSONResponse"),
    ("lease heartbeat (keep_lease)", r"[(/]chatmodel_service/runs/lease"),
    ("SQLAlchemy (anywhere)", r"\(sqlalchemy/"),
    ("database driver (aiosqlite/asyncpg)", r"\((aiosqlite|asyncpg)/"),
    ("pydantic (validation, dumping)", r"\(pydantic(_core)?/"),
    ("json module", r"\(json/"),
    ("Python logging (access log, service logs)", r"\(logging/"),
]
# The same for a server holding paced streams.
STREAM_PARTS: list[tuple[str, str]] = [
    ("the stream's task (background.py _send), all below it", r"\b_send [(/]chatmodel_service/"),
    ("  gateway: reading the LiteLLM stream", r"_stream_once [(/]chatmodel_service/llm/gateway"),
    ("    LiteLLM's chunk parser", r"chunk_parser|gpt_transformation"),
    ("    LiteLLM's per-chunk wrapper (CustomStreamWrapper)", r"streaming_handler"),
    ("    LiteLLM logging/callbacks machinery", r"litellm_logging|logging_worker|callback"),
    ("    HTTP client to the upstream (httpx/httpcore)", r"\((httpx|httpcore|aiohttp)/"),
    ("  our frames (runs/stream_run.py)", r"[(/]chatmodel_service/runs/stream_run"),
    ("  the run's event log (runs/events.py)", r"[(/]chatmodel_service/runs/events"),
    ("sending events to the client (uvicorn's send)", r"RequestResponseCycle\.send "),
    (
        "LiteLLM's chunk models (pydantic, in its parser)",
        r"StreamingChoices\.__init__|ModelResponseStream\.__init__",
    ),
    ("run start and finish (runs/service.py)", r"[(/]chatmodel_service/runs/service"),
    ("lease heartbeat (keep_lease)", r"[(/]chatmodel_service/runs/lease"),
    ("SQLAlchemy (anywhere)", r"\(sqlalchemy/"),
    ("pydantic (validation, dumping)", r"\(pydantic(_core)?/"),
    ("json module", r"\(json/"),
]
STREAMS = 100  # paced native streams at once while profiling

# Leaf frames of a thread that waits (py-spy cannot always tell idle threads here).
IDLE = re.compile(
    r"^(Condition\.wait|EpollSelector\.select|_connection_worker_thread|_worker|"
    r"Event\.wait|Thread\._wait_for_tstate_lock|Queue\.get|SimpleQueue\.get) "
)


def _parse(raw: str) -> list[tuple[list[str], int]]:
    stacks = []
    for line in raw.splitlines():
        head, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = [f for f in head.split(";") if f]
        stacks.append((frames, int(count)))
    return stacks


def _package(frames: list[str]) -> str:
    """The package of the innermost frame whose path names one (py-spy shortens some
    paths to a bare file name: those count for the package of their nearest caller)."""
    for frame in reversed(frames):
        found = re.search(r"\(([^/:)]+)/", frame)
        if found:
            name = found.group(1)
            return "chatmodel_service" if name == "service" else name
    return "?"


def summarize(
    raw: str,
    database: str,
    top: int = 15,
    parts: list[tuple[str, str]] = PARTS,
    load: str = f"c={CONCURRENCY}",
) -> list[str]:
    stacks = _parse(raw)
    busy = [(f, c) for f, c in stacks if f and not IDLE.match(f[-1])]
    total = sum(count for _, count in busy)
    idle = sum(count for _, count in stacks) - total
    if not total:
        return ["profile: py-spy recorded no busy samples"]
    lines = [
        f"profile (py-spy, {total} busy samples, {idle} idle left out, {database} server, {load}):",
        "  inclusive share of busy samples (a sample counts for every part on its stack):",
    ]
    for what, pattern in parts:
        regex = re.compile(pattern)
        hits = sum(count for frames, count in busy if any(regex.search(f) for f in frames))
        lines.append(f"  {hits / total:6.1%}  {what}")
    packages: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for frames, count in busy:
        packages[_package(frames)] += count
        leaves[re.sub(r":\d+\)$", ")", frames[-1])] += count
    lines.append("  self time by package:")
    lines += [f"  {n / total:6.1%}  {p}" for p, n in packages.most_common(top)]
    lines.append("  self time, top functions:")
    lines += [f"  {n / total:6.1%}  {leaf}" for leaf, n in leaves.most_common(top)]
    return lines


def find_py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


async def profile(rig: Rig, seconds: float) -> list[str]:
    spy = find_py_spy()
    if spy is None:
        return ["profile: py-spy is not installed (pip install py-spy); skipped"]
    database = rig.plan.databases[0]
    server = await rig.server(database)
    output = Path(tempfile.gettempdir()) / "chatmodel-bench-profile.txt"  # kept
    async with api.client(server.base_url, CONCURRENCY) as http:
        pool = await api.create_sessions(
            http, CHAT_MODEL, 2 * CONCURRENCY, rig.plan.session_messages
        )
        call = session_call(http, pool, CONCURRENCY)
        await closed_loop(call, CONCURRENCY, 64)
        recorder = await _record(spy, server.pid, seconds, output)
        done = 0
        while recorder.returncode is None:
            done += (await closed_loop(call, CONCURRENCY, 4 * CONCURRENCY)).count
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(recorder.wait(), timeout=0.01)
        assert recorder.stderr is not None
        errors = (await recorder.stderr.read()).decode(errors="replace")
    if not output.exists():
        return [f"profile: py-spy wrote nothing: {errors[-500:]}"]
    lines = summarize(output.read_text(), database)
    lines[0] += f" ({done} runs in {seconds:g} s; raw stacks in {output})"
    return lines


async def _record(spy: str, pid: int, seconds: float, output: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        spy,
        "record",
        "-p",
        str(pid),
        "-d",
        str(int(seconds)),
        "-r",
        str(RATE),
        "-f",
        "raw",
        "-o",
        str(output),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def profile_streams(rig: Rig, seconds: float) -> list[str]:
    """py-spy the server while it holds ``STREAMS`` paced native streams at once, block
    after block (each stream on a fresh one-message session, as (p) runs them)."""
    from bench.scenarios.paced import paced_rig

    spy = find_py_spy()
    if spy is None:
        return ["profile: py-spy is not installed (pip install py-spy); skipped"]
    database = rig.plan.databases[0]
    paced = await paced_rig(rig)
    server = await paced.server(database)
    output = Path(tempfile.gettempdir()) / "chatmodel-bench-profile-streams.txt"  # kept
    warm = await paced.native_streams(server, 4)
    await asyncio.gather(*(warm(i) for i in range(4)))
    # Every block's sessions made before recording, so the profile is of streams only.
    ideal = rig.plan.paced_chunks * rig.plan.paced_gap_ms / 1000
    blocks = [await paced.native_streams(server, STREAMS) for _ in range(int(seconds / ideal) + 2)]
    recorder = await _record(spy, server.pid, seconds, output)
    streams = 0
    while recorder.returncode is None and blocks:
        one = blocks.pop()
        await asyncio.gather(*(one(i) for i in range(STREAMS)))
        streams += STREAMS
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(recorder.wait(), timeout=0.01)
    await recorder.wait()
    assert recorder.stderr is not None
    errors = (await recorder.stderr.read()).decode(errors="replace")
    if not output.exists():
        return [f"profile: py-spy wrote nothing: {errors[-500:]}"]
    lines = summarize(
        output.read_text(), database, parts=STREAM_PARTS, load=f"{STREAMS} paced streams at once"
    )
    lines[0] += f" ({streams} streams in {seconds:g} s; raw stacks in {output})"
    return lines

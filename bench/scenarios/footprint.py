"""(e) Footprint: ``import chatmodel`` (the client) in a fresh interpreter, time and memory;
``chatmodel serve``'s time to ready and its idle and loaded RSS."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import api
from bench.load import closed_loop
from bench.processes import clean_env
from bench.report import Row, mb, ms, secs, within
from bench.rig import CHAT_MODEL, Rig
from bench.scenarios.throughput import session_call

SCENARIO = "(e) footprint"
IMPORT_MS, IMPORT_MB = 100.0, 30.0
IDLE_MB, READY_S = 220.0, 8.0
LOAD_CONCURRENCY, LOAD_REQUESTS = 32, 400

# Measured inside the fresh interpreter, so its own start-up is not counted.
IMPORT_SCRIPT = r"""
import sys, time
def rss_kb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
before = rss_kb()
wall, cpu = time.perf_counter(), time.process_time()
import chatmodel
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
after = rss_kb()
heavy = [m for m in ("litellm", "chatmodel_service", "fastapi", "sqlalchemy") if m in sys.modules]
print(wall, cpu, before, after, ",".join(heavy) or "-")
"""


@dataclass(frozen=True)
class ImportCost:
    wall_ms: float  # medians over the runs
    cpu_ms: float
    added_mb: float
    total_mb: float
    heavy: str  # server or LiteLLM modules the import loaded ("-": none)


def measure_import(python: Path, runs: int) -> ImportCost:
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as cwd:  # not the repo: only the installed client
        for attempt in range(runs + 1):
            out = subprocess.run(
                [str(python), "-c", IMPORT_SCRIPT],
                cwd=cwd,
                env=clean_env(),
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout.split()
            if attempt:  # the first run may write bytecode caches, as an install does
                rows.append(out)
    return ImportCost(
        wall_ms=statistics.median(float(r[0]) for r in rows) * 1000,
        cpu_ms=statistics.median(float(r[1]) for r in rows) * 1000,
        added_mb=statistics.median((int(r[3]) - int(r[2])) / 1024 for r in rows),
        total_mb=statistics.median(int(r[3]) / 1024 for r in rows),
        heavy=rows[-1][4],
    )


def import_rows(python: Path, label: str, runs: int) -> list[Row]:
    cost = measure_import(python, runs)
    scenario = SCENARIO
    return [
        Row(
            scenario,
            f"import chatmodel, {label}: wall p50 (CPU {ms(cost.cpu_ms)})",
            ms(cost.wall_ms),
            target=f"< {IMPORT_MS:g} ms",
            met=within(cost.wall_ms, IMPORT_MS),
        ),
        Row(
            scenario,
            f"import chatmodel, {label}: RSS added (process {mb(cost.total_mb)})",
            mb(cost.added_mb),
            target=f"< {IMPORT_MB:g} MB",
            met=within(cost.added_mb, IMPORT_MB),
        ),
        Row(
            scenario,
            f"import chatmodel, {label}: server/LiteLLM modules loaded",
            "none" if cost.heavy == "-" else cost.heavy,
            target="none",
            met=cost.heavy == "-",
        ),
    ]


async def run(rig: Rig) -> list[Row]:
    runs = rig.plan.import_runs
    client_python = rig.plan.client_venv / "bin" / "python"
    rows = []
    if client_python.exists():
        rows += import_rows(client_python, "client-only venv", runs)
    else:
        rig.notes.append(
            f"no client-only venv in {rig.plan.client_venv} (a full run makes one): "
            "import chatmodel was measured in this venv only"
        )
    rows += import_rows(Path(sys.executable), "this venv", runs)
    server = await rig.server("sqlite")
    for name, process in rig.servers.items():
        rows.append(
            Row(
                SCENARIO,
                f"chatmodel serve time to ready, {name}, fresh database (CPU "
                f"{secs(process.ready_cpu_seconds)})",
                secs(process.ready_seconds),
                target=f"< {READY_S:g} s",
                met=within(process.ready_seconds, READY_S),
            )
        )
    rows.append(
        Row(
            SCENARIO,
            "chatmodel serve idle RSS (SQLite)",
            mb(server.idle_rss_mb),
            target=f"< {IDLE_MB:g} MB",
            met=within(server.idle_rss_mb, IDLE_MB),
        )
    )
    if "sqlite" not in rig.loaded:
        async with api.client(server.base_url, LOAD_CONCURRENCY) as http:
            pool = await api.create_sessions(
                http, CHAT_MODEL, 2 * LOAD_CONCURRENCY, rig.plan.session_messages
            )
            sample = await closed_loop(
                session_call(http, pool, LOAD_CONCURRENCY), LOAD_CONCURRENCY, LOAD_REQUESTS
            )
            rig.check("(e) load", sample)
        rig.loaded.add("sqlite")
    rows.append(
        Row(
            SCENARIO,
            "chatmodel serve RSS after load (SQLite): now / peak",
            f"{mb(server.rss_mb())} / {mb(server.rss_mb(peak=True))}",
        )
    )
    return rows

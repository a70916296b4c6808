"""The processes a benchmark runs: the upstream, ``chatmodel serve``, LiteLLM's proxy and a
throwaway PostgreSQL cluster. Each listens on 127.0.0.1 only and is stopped on exit.

Each server's time to ready is measured from spawning the process to its first healthy
answer, and its idle RSS a moment after that (the process and its children, from /proc).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
SETTLE_SECONDS = 1.0  # after ready, before idle RSS is read


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
        except OSError:
            continue
        found += [int(child) for child in text.split()]
    return found


def _status_kb(pid: int, field_name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mb(pid: int, peak: bool = False) -> float:
    """Resident memory of ``pid`` and all its descendants, in MB (peak: VmHWM each)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += _status_kb(current, "VmHWM" if peak else "VmRSS")
        todo += _children(current)
    return total / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its descendants so far (from /proc)."""
    total, todo = 0, [pid]
    ticks = os.sysconf("SC_CLK_TCK")
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
        todo += _children(current)
    return total / ticks


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without the service's settings or provider keys, so every
    server sees only what the benchmark sets; bytecode may be cached, as installs do."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CHATMODEL_", "LITELLM_", "OPENAI_", "ANTHROPIC_"))
        and k not in ("PYTHONDONTWRITEBYTECODE", "DATABASE_URL")
    }
    env.update(extra)
    return env


@dataclass
class Process:
    """A started server: its process, URL, and the figures of its start."""

    name: str
    popen: subprocess.Popen[bytes]
    base_url: str
    log: Path
    ready_seconds: float = float("nan")
    ready_cpu_seconds: float = float("nan")  # the process's own CPU time until ready
    idle_rss_mb: float = float("nan")
    notes: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def rss_mb(self, peak: bool = False) -> float:
        return rss_mb(self.pid, peak)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


async def wait_ready(process: Process, path: str, limit: float) -> None:
    """Poll ``path`` until it answers 200; records the time since spawn and the idle RSS."""
    started = time.perf_counter()
    deadline = started + limit
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if process.popen.poll() is not None:
                raise RuntimeError(f"{process.name} exited early:\n{process.log_tail()}")
            try:
                if (await client.get(process.base_url + path)).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{process.name} not ready in {limit} s:\n{process.log_tail()}")
            await asyncio.sleep(0.05)
    process.ready_seconds = time.perf_counter() - started
    process.ready_cpu_seconds = cpu_seconds(process.pid)
    await asyncio.sleep(SETTLE_SECONDS)
    process.idle_rss_mb = process.rss_mb()


def spawn(
    name: str, command: list[str], workdir: Path, env: dict[str, str], base_url: str
) -> Process:
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            command, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    return Process(name, popen, base_url, log)


def _spawn_upstream(workdir: Path, stream_gap_ms: float, chunks: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "bench.upstream", "--stream-gap-ms", str(stream_gap_ms)]
    workdir.mkdir(parents=True, exist_ok=True)
    with (workdir / "upstream.log").open("wb") as errors:
        return subprocess.Popen(
            [*command, "--chunks", str(chunks)],
            cwd=REPO,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
        )


async def start_upstream(workdir: Path, stream_gap_ms: float, chunks: int) -> Process:
    started = time.perf_counter()
    popen = _spawn_upstream(workdir, stream_gap_ms, chunks)
    assert popen.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(popen.stdout.readline), timeout=30)
    if not line.startswith(b"READY "):
        popen.kill()
        raise RuntimeError(f"the bench upstream did not start: {line!r}")
    port = int(line.split()[1])
    process = Process("upstream", popen, f"http://127.0.0.1:{port}", workdir / "upstream.log")
    process.ready_seconds = time.perf_counter() - started
    process.idle_rss_mb = process.rss_mb()
    return process


async def start_chatmodel(name: str, workdir: Path, database_url: str, workers: int = 1) -> Process:
    """``chatmodel serve --workers N`` as a user starts it (default log level, access log
    and all), with the rate limit off so the load is not refused."""
    port = free_port()
    env = clean_env(
        CHATMODEL_DATABASE_URL=database_url,
        CHATMODEL_RATE_LIMIT_PER_MINUTE="0",
    )
    command = [sys.executable, "-m", "chatmodel_service.cli", "serve", "--port", str(port)]
    if workers != 1:
        command += ["--workers", str(workers)]
    process = spawn(name, command, workdir, env, f"http://127.0.0.1:{port}")
    try:
        await wait_ready(process, "/health", limit=120)
    except BaseException:
        process.stop()
        raise
    return process


PROXY_CONFIG = """\
general_settings:
  master_key: {master_key}
model_list:
  - model_name: bench-model
    litellm_params:
      model: openai/bench-model
      api_base: {api_base}
      api_key: bench-no-key
litellm_settings:
  telemetry: false
  num_retries: 0
"""


# The proxy refuses to start without a master key; a random one, sent by the benchmark.
PROXY_KEY = "sk-bench-" + secrets.token_hex(16)


def write_proxy_config(workdir: Path, upstream_api_base: str) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "proxy.yaml"
    config.write_text(PROXY_CONFIG.format(api_base=upstream_api_base, master_key=PROXY_KEY))
    return config


async def start_litellm_proxy(venv: Path, workdir: Path, upstream_api_base: str) -> Process:
    """LiteLLM's proxy, one process, no database, in front of the same upstream."""
    port = free_port()
    config = write_proxy_config(workdir, upstream_api_base)
    env = clean_env(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR")
    command = [
        str(venv / "bin" / "litellm"),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    process = spawn("litellm-proxy", command, workdir, env, f"http://127.0.0.1:{port}")
    try:
        await wait_ready(process, "/health/liveliness", limit=180)
    except BaseException:
        process.stop()
        raise
    return process


@dataclass
class Postgres:
    directory: Path
    admin_url: str

    @property
    def database_url(self) -> str:
        return self.admin_url.replace("postgresql://", "postgresql+asyncpg://", 1)

    async def create_database(self, name: str) -> str:
        """A new empty database in the cluster; its URL for ``chatmodel serve``."""
        import asyncpg

        connection = await asyncpg.connect(self.admin_url)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        return self.database_url.rsplit("/", 1)[0] + f"/{name}"


def start_postgres(directory: Path) -> Postgres:
    """A throwaway PostgreSQL 15 cluster (``tests/support/postgres.py``: loopback, trust)."""
    from tests.support.postgres import binaries_available, start_cluster

    if not binaries_available():
        raise RuntimeError("PostgreSQL 15 is not installed in /usr/lib/postgresql/15/bin")
    return Postgres(directory, start_cluster(directory).url)


def stop_postgres(postgres: Postgres) -> None:
    from tests.support.postgres import stop_cluster

    stop_cluster(postgres.directory)

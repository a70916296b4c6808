"""The rig every scenario shares: the plan (sizes), the upstream, the direct LiteLLM floor
and the servers, each started once, on first use, and stopped when the benchmark ends."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from bench import api
from bench.direct import DirectLiteLLM
from bench.load import Sample
from bench.processes import (
    Postgres,
    Process,
    start_chatmodel,
    start_litellm_proxy,
    start_postgres,
    start_upstream,
    stop_postgres,
)

CHAT_MODEL = "bench"
DEFAULT_PROXY_VENV = Path("/tmp/chatmodel-bench-proxy-venv")
DEFAULT_CLIENT_VENV = Path("/tmp/chatmodel-bench-client-venv")


@dataclass
class Plan:
    """How much of everything a run does (``--quick`` shrinks it)."""

    scenarios: list[str]
    quick: bool = False
    latency_rounds: int = 200  # (a) c=1 calls per side
    session_messages: int = 20
    concurrencies: list[int] = field(default_factory=lambda: [32, 128])
    databases: list[str] = field(default_factory=lambda: ["sqlite", "postgresql"])
    throughput_requests: int = 240  # (b), (d) calls per block
    throughput_rounds: int = 2  # (b) blocks per side, interleaved
    stream_rounds: int = 100  # (c) streams per side
    proxy_rounds: int = 100  # (d) c=1 calls per side
    history_sizes: list[int] = field(default_factory=lambda: [10, 1000, 10_000])
    history_rounds: int = 30  # runs (and single adds) per size
    upstream_requests: int = 20_000  # the upstream's own ceiling
    import_runs: int = 7
    stream_gap_ms: float = 1.0
    stream_chunks: int = 8
    paced_counts: list[int] = field(default_factory=lambda: [20, 100, 200])  # (p) N at once
    paced_chunks: int = 50  # (p) K pieces per reply
    paced_gap_ms: float = 40.0  # (p) D between them
    paced_ladder: list[int] = field(
        default_factory=lambda: [10, 20, 40, 60, 80, 100, 150, 200, 300]
    )
    proxy_venv: Path = DEFAULT_PROXY_VENV
    client_venv: Path = DEFAULT_CLIENT_VENV  # the client alone, for import chatmodel
    install_venvs: bool = True  # make the two venvs above when missing
    profile_seconds: float = 0.0  # >0: py-spy the SQLite server under c=32 load

    @classmethod
    def quick_plan(cls, scenarios: list[str]) -> Plan:
        return cls(
            scenarios=scenarios,
            quick=True,
            latency_rounds=60,
            concurrencies=[32],
            throughput_requests=128,
            throughput_rounds=1,
            stream_rounds=40,
            proxy_rounds=40,
            history_rounds=12,
            upstream_requests=5_000,
            import_runs=5,
            paced_counts=[20, 50],
            paced_ladder=[50, 100],
            install_venvs=False,
        )


class Rig:
    def __init__(self, plan: Plan, workdir: Path | None = None) -> None:
        self.plan = plan
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="chatmodel-bench-"))
        self.workdir.chmod(0o755)  # the PostgreSQL cluster inside runs as another user
        self.upstream: Process | None = None
        self._direct: DirectLiteLLM | None = None
        self._direct_own: DirectLiteLLM | None = None
        self.servers: dict[str, Process] = {}
        self.extra_processes: list[Process] = []  # started by a scenario, stopped at close
        self.proxy: Process | None = None
        self.postgres: Postgres | None = None
        self.notes: list[str] = []
        self.loaded: set[str] = set()  # servers that have served a concurrent load
        self.failed = False  # some call failed: keep the servers' logs
        self.shared: dict[str, object] = {}  # what a scenario set up for later ones to reuse

    def check(self, label: str, *samples: Sample) -> None:
        """Note failed calls (with the first error), so no figure hides them."""
        failed = sum(s.failures for s in samples)
        if failed:
            error = next((s.first_error for s in samples if s.first_error), "an error answer")
            self.notes.append(f"{label}: {failed} failed call(s); first: {error}")
            self.failed = True

    async def start(self) -> None:
        self.upstream = await start_upstream(
            self.workdir / "upstream", self.plan.stream_gap_ms, self.plan.stream_chunks
        )

    @property
    def api_base(self) -> str:
        assert self.upstream is not None
        return self.upstream.base_url + "/v1"

    @property
    def direct(self) -> DirectLiteLLM:
        """The floor the targets name: LiteLLM as a user would call it (its defaults)."""
        if self._direct is None:
            self._direct = DirectLiteLLM(self.api_base)
        return self._direct

    @property
    def direct_own_handler(self) -> DirectLiteLLM:
        """The same call through LiteLLM's own HTTP handler, as the server sends it."""
        if self._direct_own is None:
            self._direct_own = DirectLiteLLM(self.api_base, own_handler=True)
        return self._direct_own

    async def server(self, database: str, workers: int = 1) -> Process:
        """``chatmodel serve`` (``--workers``) on a fresh database of this kind, with the
        bench chat model; servers with other worker counts get databases of their own."""
        name = database if workers == 1 else f"{database}-{workers}-workers"
        if name in self.servers:
            return self.servers[name]
        if database == "sqlite":
            url = f"sqlite+aiosqlite:///{self.workdir / name / 'chatmodel.db'}"
        elif database == "postgresql":
            if self.postgres is None:
                self.postgres = start_postgres(self.workdir / "postgres")
            url = self.postgres.database_url
            if workers != 1:
                url = await self.postgres.create_database(name.replace("-", "_"))
        else:
            raise ValueError(f"unknown database {database!r}")
        process = await start_chatmodel(f"chatmodel-{name}", self.workdir / name, url, workers)
        self.servers[name] = process
        async with api.client(process.base_url, 4) as http:
            await api.create_chat_model(http, CHAT_MODEL, self.api_base)
        return process

    async def litellm_proxy(self) -> Process | None:
        """LiteLLM's proxy on the same upstream, or None (with a note) when not installed."""
        if self.proxy is None:
            litellm = self.plan.proxy_venv / "bin" / "litellm"
            if not litellm.exists():
                self.notes.append(
                    f"LiteLLM's proxy is not installed in {self.plan.proxy_venv}: "
                    "`python -m bench --install-venvs` (or a full run) installs it"
                )
                return None
            self.proxy = await start_litellm_proxy(
                self.plan.proxy_venv, self.workdir / "proxy", self.api_base
            )
        return self.proxy

    def keep_logs(self) -> Path:
        """Copy every process's log out of the work folder (which close() removes)."""
        kept = Path(tempfile.mkdtemp(prefix="chatmodel-bench-logs-"))
        for log in self.workdir.glob("*/*.log"):
            shutil.copy(log, kept / f"{log.parent.name}-{log.name}")
        return kept

    async def close(self) -> None:
        if self.failed:
            self.notes.append(f"the servers' logs are kept in {self.keep_logs()}")
        for process in [*self.servers.values(), *self.extra_processes, self.proxy, self.upstream]:
            if process is not None:
                with suppress(Exception):
                    process.stop()
        if self.postgres is not None:
            with suppress(Exception):
                stop_postgres(self.postgres)
        shutil.rmtree(self.workdir, ignore_errors=True)

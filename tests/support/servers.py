"""Real servers for tests: `chatmodel serve` as a process, or the app under uvicorn in a thread.

``served`` (module scope) is the real command-line server on a fresh database of each kind
(a SQLite file, an empty PostgreSQL database), migrated on start, with the demo chat model.
``live_app`` runs ``create_app(settings, gateway)`` under real uvicorn in a background
thread, on the test's ``database_url``, for tests that need a real socket (client
disconnects, early breaks) and still want to inspect the app's database.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from chatmodel_service.app import create_app
from chatmodel_service.config import Settings
from chatmodel_service.llm.gateway import LLMGateway
from tests.support.databases import DATABASES, PostgresDatabases, sqlite_url
from tests.support.llm_server import ScriptedLLMServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(base_url: str, alive: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("server exited before it became healthy")
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{base_url} did not become healthy in {timeout} s")


@pytest.fixture(scope="module", params=DATABASES)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`chatmodel serve` in a subprocess on a fresh database; yields its base URL."""
    workdir = tmp_path_factory.mktemp("serve")
    if request.param == "sqlite":
        yield from _serve(workdir, sqlite_url(workdir / "data" / "chat.db"))
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    with databases.database(migrated=False) as url:
        yield from _serve(workdir, url)


def _serve(workdir: Path, database_url: str) -> Iterator[str]:
    for base_url, _log in serve_logged(workdir, database_url):
        yield base_url


def serve_logged(
    workdir: Path, database_url: str, settings: dict[str, str] | None = None
) -> Iterator[tuple[str, Path]]:
    """A `chatmodel serve` process on ``database_url`` (with ``settings``: more
    ``CHATMODEL_*`` variables), its output in a log file: yields (base URL, log path)."""
    with serve_process(workdir, database_url, settings) as (base_url, _process):
        yield base_url, workdir / "serve.log"


@contextmanager
def serve_process(
    workdir: Path,
    database_url: str,
    settings: dict[str, str] | None = None,
    arguments: Sequence[str] = (),
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``serve_logged``'s process as a context manager, yielding (base URL, process): for
    tests that stop or kill it themselves. ``arguments`` go after ``serve --port N``. Its
    output goes to ``workdir/serve.log``."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATMODEL_")}
    env["CHATMODEL_DATABASE_URL"] = database_url
    env.update(settings or {})
    env.pop("OPENAI_API_KEY", None)  # the quick start needs no provider key
    log_path = workdir / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chatmodel_service.cli",
                "serve",
                "--port",
                str(port),
                *arguments,
            ],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            try:
                wait_healthy(base_url, lambda: process.poll() is None)
            except RuntimeError as exc:
                pytest.fail(f"{exc}\n{log_path.read_text()}")
            yield base_url, process
        finally:
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


@dataclass
class LiveApp:
    base_url: str
    app: FastAPI


@pytest.fixture
def live_app(database_url: str, gateway: LLMGateway) -> Iterator[LiveApp]:
    """The app (demo chat model seeded) under real uvicorn in a thread, on its own DB."""
    settings = Settings(database_url=database_url, seed_demo=True, llm_timeout_seconds=5)
    with serve_in_thread(create_app(settings, gateway)) as live:
        yield live


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[LiveApp]:
    """``app`` under real uvicorn in a background thread until the block ends.

    The socket is bound here and handed to uvicorn, so no other process (another test
    worker, say) can take the port between choosing it and listening on it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", log_config=None))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="live-app", daemon=True
    )
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url, thread.is_alive, timeout=30)
        yield LiveApp(base_url=base_url, app=app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


__all__ = [
    "LiveApp",
    "free_port",
    "live_app",
    "serve_in_thread",
    "serve_logged",
    "serve_process",
    "served",
]


def scripted_chat_model(live_app: LiveApp, server: ScriptedLLMServer) -> str:
    """Chat model "remote" on the live app, its published version calling ``server``."""
    name = "remote"
    created = httpx.post(f"{live_app.base_url}/v1/chat-models", json={"name": name})
    assert created.status_code == 201, created.text
    version = httpx.post(
        f"{live_app.base_url}/v1/chat-models/{name}/versions",
        json={
            "system_prompt": "Be brief.",
            "model": "openai/scripted",
            "api_base": server.base_url,
            "publish": True,
        },
    )
    assert version.status_code == 201, version.text
    return name


def background_run_at_the_model(
    base_url: str, llm_server: ScriptedLLMServer, message: dict[str, Any]
) -> tuple[str, str]:
    """Over HTTP on a served process: a published chat model ``remote`` on ``llm_server``,
    a session, and a background run with ``message``, returned once the model has its
    call: (session uuid, run uuid)."""
    httpx.post(f"{base_url}/v1/chat-models", json={"name": "remote"}).raise_for_status()
    httpx.post(
        f"{base_url}/v1/chat-models/remote/versions",
        json={
            "system_prompt": "Be brief.",
            "model": "openai/scripted",
            "api_base": llm_server.base_url,
            "publish": True,
        },
    ).raise_for_status()
    session = httpx.post(f"{base_url}/v1/sessions", json={"chat_model": "remote"}).json()
    run = httpx.post(
        f"{base_url}/v1/sessions/{session['uuid']}/run",
        json={"background": True, "messages": [message]},
    )
    assert run.status_code == 202, run.text
    deadline = time.monotonic() + 10
    while not llm_server.requests:
        assert time.monotonic() < deadline, "the model never had the call"
        time.sleep(0.05)
    return session["uuid"], run.json()["uuid"]

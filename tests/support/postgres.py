"""A throwaway PostgreSQL 15 cluster for tests: on 127.0.0.1, a free port, its own directory.

Standard library only, so ``.ci/run`` can use it before any virtualenv exists::

    python3 -m tests.support.postgres start DIR   # prints the admin URL
    python3 -m tests.support.postgres stop DIR    # stops the server and removes DIR

and the test harness can start one for the session (``start_cluster`` / ``stop_cluster``).

The cluster trusts every connection, so it listens on loopback only (no Unix socket) and
trades durability for speed (``fsync``, ``synchronous_commit`` and ``full_page_writes`` off):
it holds nothing worth keeping. ``initdb`` refuses to run as root, so as root the server runs
as the ``postgres`` OS user and DIR is handed to that user.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

POSTGRES_BIN = Path(os.environ.get("CHATMODEL_TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
SUPERUSER = "postgres"
OS_USER_WHEN_ROOT = "postgres"
MAX_CONNECTIONS = 300

SERVER_SETTINGS = f"""
# chatmodel test cluster: throwaway, loopback only, speed over durability.
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = {MAX_CONNECTIONS}
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 128MB
log_min_messages = warning
log_connections = off
log_disconnections = off
"""

HBA = """# chatmodel test cluster: trust, loopback only.
host all all 127.0.0.1/32 trust
"""


class ClusterError(RuntimeError):
    """The cluster could not be created, started or stopped (the message says why)."""


@dataclass(frozen=True)
class Cluster:
    directory: Path
    port: int

    @property
    def url(self) -> str:
        """An admin DSN: the superuser on the ``postgres`` database (libpq form)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "postgres.log"


def binaries_available() -> bool:
    return (POSTGRES_BIN / "initdb").is_file() and (POSTGRES_BIN / "pg_ctl").is_file()


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    if shutil.which("runuser"):
        return ["runuser", "-u", OS_USER_WHEN_ROOT, "--", *command]
    return ["su", OS_USER_WHEN_ROOT, "-s", "/bin/sh", "-c", shlex.join(command)]


def _run(command: list[str], cwd: Path, timeout: float) -> None:
    done = subprocess.run(
        _as_server_user(command),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"},
        check=False,
    )
    if done.returncode != 0:
        raise ClusterError(
            f"{' '.join(command)} exited with {done.returncode}:\n{done.stdout}{done.stderr}"
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare_directory(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise ClusterError(f"{directory} is not empty")
    if os.geteuid() == 0:
        try:
            server_user = pwd.getpwnam(OS_USER_WHEN_ROOT)
        except KeyError as exc:
            raise ClusterError(
                f"running as root needs the {OS_USER_WHEN_ROOT!r} OS user (initdb refuses root)"
            ) from exc
        os.chown(directory, server_user.pw_uid, server_user.pw_gid)
        directory.chmod(0o700)
        # The server user must be able to reach the directory through its parents.
        for parent in directory.resolve().parents:
            if parent.stat().st_mode & 0o001 == 0:
                raise ClusterError(
                    f"{parent} is not searchable by the {OS_USER_WHEN_ROOT!r} user; "
                    "put the cluster directory somewhere like /tmp"
                )


def start_cluster(directory: Path, attempts: int = 3) -> Cluster:
    """initdb a cluster in ``directory`` (created, must be empty) and start it."""
    if not binaries_available():
        raise ClusterError(f"no PostgreSQL binaries in {POSTGRES_BIN}")
    directory = directory.absolute()
    _prepare_directory(directory)
    cluster = Cluster(directory, 0)
    _run(
        [
            str(POSTGRES_BIN / "initdb"),
            "--pgdata",
            str(cluster.data),
            "--username",
            SUPERUSER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--no-instructions",
            "--no-sync",
        ],
        cwd=directory,
        timeout=120,
    )
    # Rewriting the files initdb made keeps their owner (the server user).
    settings = cluster.data / "postgresql.conf"
    settings.write_text(settings.read_text() + SERVER_SETTINGS)
    (cluster.data / "pg_hba.conf").write_text(HBA)
    for attempt in range(attempts):
        # The port is free now; another process may take it before the server binds.
        cluster = Cluster(directory, _free_port())
        try:
            _pg_ctl(cluster, "start", "-l", str(cluster.log), "-o", f"-p {cluster.port}")
        except ClusterError:
            if attempt + 1 == attempts:
                raise ClusterError(_with_log(cluster, "the server did not start")) from None
            continue
        return cluster
    raise AssertionError("unreachable")


def _pg_ctl(cluster: Cluster, action: str, *args: str) -> None:
    command = [str(POSTGRES_BIN / "pg_ctl"), "--pgdata", str(cluster.data), "--wait"]
    _run([*command, "--timeout", "60", *args, action], cwd=cluster.directory, timeout=90)


def _with_log(cluster: Cluster, message: str) -> str:
    try:
        tail = cluster.log.read_text()[-2000:]
    except OSError:
        tail = "(no log)"
    return f"{message}; {cluster.log}:\n{tail}"


def stop_cluster(directory: Path) -> None:
    """Stop the server in ``directory`` (if it runs) and remove the directory."""
    directory = directory.absolute()
    data = directory / "data"
    if (data / "postmaster.pid").exists():
        _pg_ctl(Cluster(directory, 0), "stop", "--mode", "immediate")
    shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: python -m tests.support.postgres (start|stop) DIR", file=sys.stderr)
        return 2
    action, directory = argv[0], Path(argv[1])
    try:
        if action == "start":
            print(start_cluster(directory).url)
        else:
            stop_cluster(directory)
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

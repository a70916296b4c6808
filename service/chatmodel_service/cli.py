"""The server half of the ``chatmodel`` command: ``serve``, and the commands that work on
the database directly (``database_commands``): ``db upgrade|downgrade|current``, ``keys
create|list|revoke`` (to bootstrap the first key) and ``gc`` (retention).

The ``chatmodel`` console script is ``chatmodel._cli:main`` (the client package); it runs
the admin commands itself and hands ``serve``, ``db ...``, ``keys ...`` and ``gc`` to
:func:`main` (with ``--json``, when that came before the command).
``python -m chatmodel_service.cli serve`` works too. Importing this module is cheap: the
app (and LiteLLM) load only for ``serve``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from sqlalchemy.engine import make_url

from chatmodel_service import __version__, database_commands
from chatmodel_service.auth.startup import CREATE_KEY_HINT, AuthRefused, check_serve_auth
from chatmodel_service.config import Settings, SettingsError, get_settings
from chatmodel_service.database_commands import (
    command_settings,
    describe_database,
    safe_url,
    upgrade_database,
)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 64, not {text!r}")
    return value


def _serving_banner(settings: Settings, workers: int, keys_required: bool) -> str:
    """What ``serve`` prints once it is about to serve: where, and what a first visit needs
    (each line starts ``chatmodel:``, as every line it prints itself before logging)."""
    address = f"http://{settings.host}:{settings.port}"
    # A wildcard bind is reached on this machine as localhost.
    here = address.replace("://0.0.0.0:", "://127.0.0.1:").replace("://[::]:", "://[::1]:")
    keys = (
        f"required: send 'Authorization: Bearer KEY' (a first key: {CREATE_KEY_HINT})"
        if keys_required
        else "not required on this loopback address"
    )
    lines = [
        f"chatmodel: serving on {address}"
        + (f" ({workers} worker processes)" if workers > 1 else ""),
        f"chatmodel: admin page {here}/admin",
        f"chatmodel: API docs   {here}/docs",
        f"chatmodel: database   {describe_database(settings.database_url)}",
        f"chatmodel: API keys   {keys}",
    ]
    return "\n".join(lines)


def cmd_serve(args: argparse.Namespace) -> int:
    overrides = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    settings = command_settings(args).model_copy(update=overrides)
    from chatmodel_service.observability.logs import configure_logging

    configure_logging(settings)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        required = check_serve_auth(settings)
    except AuthRefused as exc:
        print(f"chatmodel: {exc}", file=sys.stderr)
        return 2
    print(
        f"chatmodel {__version__}: database {describe_database(settings.database_url)}",
        file=sys.stderr,
    )
    upgrade_database(settings, "head")
    unwritable = asyncio.run(_write_failure(settings))
    if unwritable is not None:
        print(
            f"chatmodel: cannot serve: the database {safe_url(settings.database_url)} "
            f"cannot store data ({unwritable})",
            file=sys.stderr,
        )
        return 1
    if required and asyncio.run(_usable_keys(settings)) == 0:
        # Serving anyway would answer 401 to everyone: say how to get the first key.
        print(
            f"chatmodel: refusing to serve on {settings.host}: API keys are required there "
            f"and none exists yet; create one with\n    {CREATE_KEY_HINT}",
            file=sys.stderr,
        )
        return 2
    from chatmodel_service.serving import serve

    workers = args.workers
    if workers > 1:
        # Each worker process reads its settings from the environment.
        os.environ["CHATMODEL_HOST"] = settings.host
        os.environ["CHATMODEL_PORT"] = str(settings.port)
        os.environ["CHATMODEL_DATABASE_URL"] = settings.database_url
        if make_url(settings.database_url).get_backend_name() == "sqlite":
            print(
                f"chatmodel: {workers} workers share one SQLite file: their writes take "
                "turns; use PostgreSQL to scale past one process",
                file=sys.stderr,
            )
    print(_serving_banner(settings, workers, required), file=sys.stderr)
    serve(settings, workers)
    return 0


async def _write_failure(settings: Settings) -> str | None:
    """Why the database cannot store data (a read-only file, a full disk), or None: a
    server that cannot write would answer every run with 503s."""
    from chatmodel_service.db import Database, create_engine

    database = Database(create_engine(settings))
    try:
        failure = await database.probe_writes(always=True)
    finally:
        await database.dispose()
    return None if failure is None else failure.cause


def _database_problem(exc: BaseException, database_url: str) -> str | None:
    """One line for an error that means the database cannot be used (unreachable, cannot
    be opened or written), naming it without its password; None for any other error."""
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError | OSError):
        return None
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    url = safe_url(database_url)
    return f"cannot use the database {url}: {reason} ({type(cause).__name__})"


async def _usable_keys(settings: Settings) -> int:
    from chatmodel_service.auth.repository import ApiKeyRepository
    from chatmodel_service.db import Database, create_engine

    database = Database(create_engine(settings))
    try:
        async with database.transaction() as db:
            return await ApiKeyRepository(db).count_usable()
    finally:
        await database.dispose()


def _batch_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"must be 1 to 10000, not {value}")
    return value


def _option_parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The ``--database-url`` option of every command, and the ``--json`` option of those
    that print a document (no default: one given before the command is kept)."""
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument(
        "--database-url",
        metavar="URL",
        help="the database to use (default: CHATMODEL_DATABASE_URL, else ./chatmodel.db)",
    )
    document = argparse.ArgumentParser(add_help=False)
    document.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON"
    )
    return database, document


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    database, _ = _option_parsers()
    serve = commands.add_parser(
        "serve", help="migrate the database and start the server", parents=[database]
    )
    serve.add_argument("--host", help="bind address (default 127.0.0.1, or CHATMODEL_HOST)")
    serve.add_argument("--port", type=int, help="port (default 8000, or CHATMODEL_PORT)")
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        metavar="N",
        help="server processes sharing the port (default 1); use PostgreSQL with more than one",
    )
    serve.set_defaults(handler=cmd_serve)


def _add_db(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    database, _ = _option_parsers()
    db = commands.add_parser("db", help="database migrations")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser(
        "upgrade", help="migrate to the newest schema (creates a SQLite file)", parents=[database]
    )
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(handler=database_commands.db_upgrade)
    downgrade = db_commands.add_parser(
        "downgrade", help="migrate back to a revision", parents=[database]
    )
    downgrade.add_argument("revision")
    downgrade.set_defaults(handler=database_commands.db_downgrade)
    current = db_commands.add_parser(
        "current", help="the revision the database is at", parents=[database]
    )
    current.set_defaults(handler=database_commands.db_current)


def _add_keys(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    database, document = _option_parsers()
    keys = commands.add_parser("keys", help="API keys, written to the database directly")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser(
        "create",
        help="create a key (and its project if new); prints the key last",
        parents=[database],
    )
    create.add_argument("--project", default="default", help="project name (default: default)")
    create.add_argument("--scope", choices=["admin", "client"], default="admin")
    create.add_argument("--name", required=True, help="what the key is for, e.g. ops")
    create.set_defaults(handler=database_commands.keys_create)
    listing = key_commands.add_parser(
        "list",
        help="a project's keys: id, name, scope, prefix, dates (never the key)",
        parents=[database, document],
    )
    listing.add_argument("--project", default="default", help="project name (default: default)")
    listing.set_defaults(handler=database_commands.keys_list, prints_json=True)
    revoke = key_commands.add_parser(
        "revoke",
        help="revoke a key, named by its id or its name; requests with it get 401",
        parents=[database, document],
    )
    revoke.add_argument("key", metavar="ID_OR_NAME", help="the key's id or name (keys list)")
    revoke.add_argument("--project", default="default", help="project name (default: default)")
    revoke.set_defaults(handler=database_commands.keys_revoke, prints_json=True)


def _add_gc(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    database, document = _option_parsers()
    gc = commands.add_parser(
        "gc",
        help="delete sessions idle longer than their chat model's retention_days",
        description="Per chat model with retention_days: delete the sessions whose newest "
        "message (or creation, without messages) is older, with their messages and runs. "
        "Sessions a run holds are skipped. Prints what was deleted per chat model.",
        parents=[database, document],
    )
    gc.add_argument("--dry-run", action="store_true", help="print what would go; delete nothing")
    gc.add_argument(
        "--batch-size",
        type=_batch_size,
        default=500,
        help="sessions deleted per transaction (default 500)",
    )
    gc.set_defaults(handler=database_commands.gc, prints_json=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatmodel", description="Self-hosted chat sessions.")
    parser.add_argument("--version", action="version", version=f"chatmodel {__version__}")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON (keys list, keys revoke and gc; may follow the command)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_serve(commands)
    _add_db(commands)
    _add_keys(commands)
    _add_gc(commands)
    return parser


def _refuse_bad_settings() -> int | None:
    """Exit status 2, with each setting the environment got wrong on its own line of
    stderr, if there is one (every command reads the settings first); else None."""
    try:
        get_settings()
    except SettingsError as exc:
        for problem in exc.problems:
            print(f"chatmodel: {problem}", file=sys.stderr)
        return 2
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.json and not getattr(args, "prints_json", False):
        parser.error(f"--json: 'chatmodel {args.command}' prints no JSON")
    refused = _refuse_bad_settings()
    if refused is not None:
        return refused
    try:
        return int(args.handler(args))
    except Exception as exc:
        problem = _database_problem(exc, command_settings(args).database_url)
        if problem is None:
            raise
        print(f"chatmodel: {problem}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

"""The server half of the ``chatmodel`` command: ``serve``, ``db upgrade|downgrade``,
``keys create|list`` (which write to the database directly, to bootstrap the first key)
and ``gc`` (retention: deletes idle sessions in the database directly).

The ``chatmodel`` console script is ``chatmodel._cli:main`` (the client package); it runs
the admin commands itself and hands ``serve``, ``db ...``, ``keys ...`` and ``gc`` to
:func:`main`.
``python -m chatmodel_service.cli serve`` works too. Importing this module is cheap: the
app (and LiteLLM) load only for ``serve``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from chatmodel_service import __version__
from chatmodel_service.auth.startup import CREATE_KEY_HINT, AuthRefused, check_serve_auth
from chatmodel_service.config import Settings, SettingsError, get_settings


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _ensure_sqlite_dir(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(str(parsed.database)).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _upgrade(settings: Settings, revision: str) -> None:
    from chatmodel_service.migrate import upgrade

    _ensure_sqlite_dir(settings.database_url)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    upgrade(settings.database_url, revision)


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
        f"chatmodel: database   {_safe_url(settings.database_url)}",
        f"chatmodel: API keys   {keys}",
    ]
    return "\n".join(lines)


def cmd_serve(args: argparse.Namespace) -> int:
    overrides = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    settings = get_settings().model_copy(update=overrides)
    from chatmodel_service.observability.logs import configure_logging

    configure_logging(settings.log_format, settings.log_level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        required = check_serve_auth(settings)
    except AuthRefused as exc:
        print(f"chatmodel: {exc}", file=sys.stderr)
        return 2
    print(f"chatmodel {__version__}: database {_safe_url(settings.database_url)}", file=sys.stderr)
    _upgrade(settings, "head")
    unwritable = asyncio.run(_write_failure(settings))
    if unwritable is not None:
        print(
            f"chatmodel: cannot serve: the database {_safe_url(settings.database_url)} "
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


def _database_problem(exc: BaseException) -> str | None:
    """One line for an error that means the database cannot be used (unreachable, cannot
    be opened or written), naming it without its password; None for any other error."""
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError | OSError):
        return None
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    url = _safe_url(get_settings().database_url)
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


async def _create_key(settings: Settings, project: str, scope: str, name: str) -> str:
    from chatmodel_service.auth.repository import ProjectRepository
    from chatmodel_service.auth.schemas import KeyCreate
    from chatmodel_service.auth.service import create_key
    from chatmodel_service.db import Database, create_engine
    from chatmodel_service.models import Project

    database = Database(create_engine(settings))
    try:
        async with database.transaction() as db:
            projects = ProjectRepository(db)
            found = await projects.get_by_name(project)
            if found is None:
                found = await projects.add(Project(name=project))
                print(f"created project '{project}'")
            body = KeyCreate.model_validate({"name": name, "scope": scope})
            created = await create_key(db, found.id, body)
        print(f"created {scope} key '{name}' (cm_{created.prefix}_…) of project '{project}'")
        print("the key is shown this once; store it now:")
        return created.key
    finally:
        await database.dispose()


async def _list_keys(settings: Settings, project: str) -> list[str]:
    from chatmodel_service.auth.repository import ProjectRepository
    from chatmodel_service.auth.service import list_keys
    from chatmodel_service.db import Database, create_engine

    database = Database(create_engine(settings))
    try:
        async with database.transaction() as db:
            found = await ProjectRepository(db).get_by_name(project)
            if found is None:
                raise LookupError(f"no project named '{project}'")
            keys = await list_keys(db, found.id)
    finally:
        await database.dispose()
    lines = []
    for key in keys.data:
        state = "revoked" if key.revoked_at else "active"
        used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never"
        lines.append(f"cm_{key.prefix}_…  {key.scope:<6}  {state:<7}  last used {used}  {key.name}")
    return lines


def cmd_keys_create(args: argparse.Namespace) -> int:
    settings = get_settings()
    _upgrade(settings, "head")
    try:
        key = asyncio.run(_create_key(settings, args.project, args.scope, args.name))
    except ValueError as exc:  # the name's pattern
        print(f"chatmodel: error: {exc}", file=sys.stderr)
        return 2
    print(key)  # alone on the last line, for scripts
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    settings = get_settings()
    _upgrade(settings, "head")
    try:
        lines = asyncio.run(_list_keys(settings, args.project))
    except LookupError as exc:
        print(f"chatmodel: error: {exc}", file=sys.stderr)
        return 1
    for line in lines or ["no keys"]:
        print(line)
    return 0


async def _collect_garbage(settings: Settings, dry_run: bool, batch_size: int) -> list[str]:
    from chatmodel_service.db import Database, create_engine
    from chatmodel_service.sessions.gc import collect_garbage

    database = Database(create_engine(settings))
    try:
        sweeps = await collect_garbage(database, dry_run=dry_run, batch_size=batch_size)
    finally:
        await database.dispose()
    return [sweep.describe(dry_run=dry_run) for sweep in sweeps]


def cmd_gc(args: argparse.Namespace) -> int:
    settings = get_settings()
    _upgrade(settings, "head")
    lines = asyncio.run(_collect_garbage(settings, args.dry_run, args.batch_size))
    for line in lines or ["no chat model has retention_days set: nothing to delete"]:
        print(line)
    return 0


def _batch_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"must be 1 to 10000, not {value}")
    return value


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = get_settings()
    _upgrade(settings, args.revision)
    print(f"database {_safe_url(settings.database_url)} upgraded to {args.revision}")
    return 0


def cmd_db_downgrade(args: argparse.Namespace) -> int:
    from chatmodel_service.migrate import downgrade

    settings = get_settings()
    try:
        downgrade(settings.database_url, args.revision)
    except RuntimeError as exc:  # a migration that refuses to lose data says why
        print(f"chatmodel: cannot downgrade to {args.revision}: {exc}", file=sys.stderr)
        return 1
    print(f"database {_safe_url(settings.database_url)} downgraded to {args.revision}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatmodel", description="Self-hosted chat sessions.")
    parser.add_argument("--version", action="version", version=f"chatmodel {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate the database and start the server")
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

    db = commands.add_parser("db", help="database migrations")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="migrate to the newest schema")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(handler=cmd_db_upgrade)
    downgrade = db_commands.add_parser("downgrade", help="migrate back to a revision")
    downgrade.add_argument("revision")
    downgrade.set_defaults(handler=cmd_db_downgrade)

    keys = commands.add_parser("keys", help="API keys, written to the database directly")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser(
        "create", help="create a key (and its project if new); prints the key last"
    )
    create.add_argument("--project", default="default", help="project name (default: default)")
    create.add_argument("--scope", choices=["admin", "client"], default="admin")
    create.add_argument("--name", required=True, help="what the key is for, e.g. ops")
    create.set_defaults(handler=cmd_keys_create)
    listing = key_commands.add_parser("list", help="a project's keys (prefixes only)")
    listing.add_argument("--project", default="default", help="project name (default: default)")
    listing.set_defaults(handler=cmd_keys_list)

    gc = commands.add_parser(
        "gc",
        help="delete sessions idle longer than their chat model's retention_days",
        description="Per chat model with retention_days: delete the sessions whose newest "
        "message (or creation, without messages) is older, with their messages and runs. "
        "Sessions a run holds are skipped. Prints what was deleted per chat model.",
    )
    gc.add_argument("--dry-run", action="store_true", help="print what would go; delete nothing")
    gc.add_argument(
        "--batch-size",
        type=_batch_size,
        default=500,
        help="sessions deleted per transaction (default 500)",
    )
    gc.set_defaults(handler=cmd_gc)
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
    args = build_parser().parse_args(argv)
    refused = _refuse_bad_settings()
    if refused is not None:
        return refused
    try:
        return int(args.handler(args))
    except Exception as exc:
        problem = _database_problem(exc)
        if problem is None:
            raise
        print(f"chatmodel: {problem}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

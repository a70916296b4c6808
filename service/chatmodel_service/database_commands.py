"""The ``chatmodel`` commands that work on a database directly, with no server running:
``keys create|list|revoke`` (to bootstrap and manage keys), ``gc`` (retention) and
``db upgrade|downgrade|current`` (migrations). ``cli`` parses them and calls these.

Each says first, on stderr, which database it uses (``chatmodel: database URL``, the
password hidden and a relative SQLite path resolved), since the default is
``./chatmodel.db`` of the current folder. Only ``db upgrade``, ``keys create`` (a new
install's first key) and ``serve`` may create a SQLite file, and say so: every other
command refuses with exit status 1 when the file is not there, rather than answer "no
keys" from an empty database it made in the wrong folder.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from chatmodel_service.config import Settings, get_settings

if TYPE_CHECKING:
    from chatmodel_service.auth.schemas import KeyOut
    from chatmodel_service.sessions.gc import RetentionSweep


def safe_url(url: str) -> str:
    """``url`` with its password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database or an in-memory one."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database)).expanduser()


def describe_database(url: str) -> str:
    """``url`` without its password, and where a relative SQLite path points."""
    shown = safe_url(url)
    file = sqlite_file(url)
    if file is not None and not file.is_absolute():
        shown += f" (the file {file.resolve()})"
    return shown


def command_settings(args: argparse.Namespace) -> Settings:
    """The settings, with the command's ``--database-url`` if it has one."""
    settings = get_settings()
    url = getattr(args, "database_url", None)
    return settings if url is None else settings.model_copy(update={"database_url": url})


def _where_the_url_came_from(args: argparse.Namespace, settings: Settings) -> str:
    if getattr(args, "database_url", None) is not None:
        return "given with --database-url"
    if "database_url" in settings.model_fields_set:
        return "from CHATMODEL_DATABASE_URL"
    return "the default: ./chatmodel.db of the current folder"


def existing_database(args: argparse.Namespace) -> Settings | None:
    """The command's settings, once it has said which database it uses; None, after
    saying why on stderr, when that is a SQLite file that does not exist."""
    settings = command_settings(args)
    print(f"chatmodel: database {describe_database(settings.database_url)}", file=sys.stderr)
    file = sqlite_file(settings.database_url)
    if file is None or file.exists():
        return settings
    print(
        f"chatmodel: error: there is no database at {file.resolve()} "
        f"({_where_the_url_came_from(args, settings)}); point --database-url or "
        "CHATMODEL_DATABASE_URL at the server's database, or create one there with "
        "'chatmodel db upgrade'",
        file=sys.stderr,
    )
    return None


def announce_upgrade(settings: Settings) -> None:
    """Say on stderr which database a command that may create it uses, and that it is
    being created when it is a SQLite file that does not exist yet."""
    url = describe_database(settings.database_url)
    file = sqlite_file(settings.database_url)
    if file is not None and not file.exists():
        print(f"chatmodel: database {url}: no file there yet, creating it", file=sys.stderr)
    else:
        print(f"chatmodel: database {url}", file=sys.stderr)


def upgrade_database(settings: Settings, revision: str) -> None:
    """Migrate to ``revision``, making a SQLite file (and its folder) if there is none."""
    from chatmodel_service.migrate import upgrade

    file = sqlite_file(settings.database_url)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    upgrade(settings.database_url, revision)


def _print_json(document: Any) -> None:
    print(json.dumps(document, indent=2, ensure_ascii=False))


def _when(moment: datetime | None, missing: str = "-") -> str:
    return moment.isoformat(sep=" ", timespec="seconds") if moment else missing


def _table(rows: list[list[str]]) -> list[str]:
    """``rows`` (the first one the header) as lines of left-aligned columns."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


# -- keys ----------------------------------------------------------------------------


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
        print(
            f"created {scope} key '{name}' (cm_{created.prefix}_…, id {created.id}) "
            f"of project '{project}'"
        )
        print("the key is shown this once; store it now:")
        return created.key
    finally:
        await database.dispose()


async def _list_keys(settings: Settings, project: str) -> list[KeyOut]:
    from chatmodel_service.auth.repository import ProjectRepository
    from chatmodel_service.auth.service import list_keys
    from chatmodel_service.db import Database, create_engine

    database = Database(create_engine(settings))
    try:
        async with database.transaction(write=False) as db:
            found = await ProjectRepository(db).get_by_name(project)
            if found is None:
                raise LookupError(f"no project named '{project}'")
            return (await list_keys(db, found.id)).data
    finally:
        await database.dispose()


def _pick_key(keys: list[KeyOut], wanted: str, project: str) -> KeyOut:
    """The key ``wanted`` names: its id, or its name (an active key before revoked
    ones of the same name). LookupError when none or several match."""
    try:
        key_id = uuid.UUID(wanted)
    except ValueError:
        key_id = None
    if key_id is not None:
        matches = [key for key in keys if key.id == key_id]
    else:
        named = [key for key in keys if key.name == wanted]
        matches = [key for key in named if key.revoked_at is None] or named
    if not matches:
        raise LookupError(
            f"project '{project}' has no API key with the id or name '{wanted}' "
            "(chatmodel keys list shows them)"
        )
    if len(matches) > 1:
        ids = ", ".join(str(key.id) for key in matches)
        active = "active " if matches[0].revoked_at is None else ""
        raise LookupError(
            f"{len(matches)} {active}keys of project '{project}' are named '{wanted}': "
            f"revoke one by its id ({ids})"
        )
    return matches[0]


async def _revoke_key(settings: Settings, project: str, wanted: str) -> tuple[KeyOut, bool]:
    """The key ``wanted`` names, revoked now, and whether it was revoked already."""
    from chatmodel_service.auth.repository import ProjectRepository
    from chatmodel_service.auth.service import list_keys, revoke_key
    from chatmodel_service.db import Database, create_engine

    database = Database(create_engine(settings))
    try:
        async with database.transaction() as db:
            found = await ProjectRepository(db).get_by_name(project)
            if found is None:
                raise LookupError(f"no project named '{project}'")
            key = _pick_key((await list_keys(db, found.id)).data, wanted, project)
            if key.revoked_at is not None:
                return key, True
            return await revoke_key(db, found.id, key.id), False
    finally:
        await database.dispose()


def _key_rows(keys: list[KeyOut]) -> list[str]:
    header = ["ID", "NAME", "SCOPE", "PROJECT", "PREFIX", "CREATED", "REVOKED", "LAST USED"]
    rows = [
        [
            str(key.id),
            key.name,
            key.scope,
            key.project,
            f"cm_{key.prefix}_…",
            _when(key.created_at),
            _when(key.revoked_at),
            _when(key.last_used_at, "never"),
        ]
        for key in keys
    ]
    return _table([header, *rows])


def keys_create(args: argparse.Namespace) -> int:
    # The one command besides db upgrade that makes a missing SQLite file: the first key
    # of a new install (serve refuses a public address without one) is made before any
    # serve. It says so, naming the file, so a key is never put somewhere unnoticed.
    settings = command_settings(args)
    announce_upgrade(settings)
    upgrade_database(settings, "head")
    try:
        key = asyncio.run(_create_key(settings, args.project, args.scope, args.name))
    except ValueError as exc:  # the name's pattern
        print(f"chatmodel: error: {exc}", file=sys.stderr)
        return 2
    print(key)  # alone on the last line, for scripts
    return 0


def keys_list(args: argparse.Namespace) -> int:
    settings = existing_database(args)
    if settings is None:
        return 1
    upgrade_database(settings, "head")
    try:
        keys = asyncio.run(_list_keys(settings, args.project))
    except LookupError as exc:
        print(f"chatmodel: error: {exc}", file=sys.stderr)
        return 1
    if args.json:  # as GET /v1/keys answers
        _print_json({"data": [key.model_dump(mode="json") for key in keys]})
        return 0
    for line in _key_rows(keys) if keys else [f"project '{args.project}' has no keys"]:
        print(line)
    return 0


def keys_revoke(args: argparse.Namespace) -> int:
    settings = existing_database(args)
    if settings is None:
        return 1
    upgrade_database(settings, "head")
    try:
        key, already = asyncio.run(_revoke_key(settings, args.project, args.key))
    except LookupError as exc:
        print(f"chatmodel: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        _print_json(key.model_dump(mode="json"))
        return 0
    named = f"{key.scope} key '{key.name}' (cm_{key.prefix}_…, id {key.id})"
    if already:
        print(f"{named} was already revoked, at {_when(key.revoked_at)}")
    else:
        print(f"revoked {named} of project '{key.project}'")
    return 0


# -- gc ------------------------------------------------------------------------------


async def _collect_garbage(
    settings: Settings, dry_run: bool, batch_size: int
) -> list[RetentionSweep]:
    from chatmodel_service.db import Database, create_engine
    from chatmodel_service.sessions.gc import collect_garbage

    database = Database(create_engine(settings))
    try:
        return await collect_garbage(database, dry_run=dry_run, batch_size=batch_size)
    finally:
        await database.dispose()


def _sweep_document(sweep: RetentionSweep) -> dict[str, Any]:
    return {
        "project": sweep.project,
        "chat_model": sweep.chat_model,
        "retention_days": sweep.retention_days,
        "sessions": sweep.deleted.sessions,
        "messages": sweep.deleted.messages,
        "runs": sweep.deleted.runs,
        "skipped_held_by_run": sweep.busy,
    }


def gc(args: argparse.Namespace) -> int:
    settings = existing_database(args)
    if settings is None:
        return 1
    upgrade_database(settings, "head")
    sweeps = asyncio.run(_collect_garbage(settings, args.dry_run, args.batch_size))
    if args.json:
        _print_json({"dry_run": args.dry_run, "data": [_sweep_document(s) for s in sweeps]})
        return 0
    lines = [sweep.describe(dry_run=args.dry_run) for sweep in sweeps]
    for line in lines or ["no chat model has retention_days set: nothing to delete"]:
        print(line)
    return 0


# -- db ------------------------------------------------------------------------------


def db_upgrade(args: argparse.Namespace) -> int:
    settings = command_settings(args)
    announce_upgrade(settings)
    upgrade_database(settings, args.revision)
    print(f"database {safe_url(settings.database_url)} upgraded to {args.revision}")
    return 0


def db_downgrade(args: argparse.Namespace) -> int:
    from chatmodel_service.migrate import downgrade

    settings = existing_database(args)
    if settings is None:
        return 1
    try:
        downgrade(settings.database_url, args.revision)
    except RuntimeError as exc:  # a migration that refuses to lose data says why
        print(f"chatmodel: cannot downgrade to {args.revision}: {exc}", file=sys.stderr)
        return 1
    print(f"database {safe_url(settings.database_url)} downgraded to {args.revision}")
    return 0


def db_current(args: argparse.Namespace) -> int:
    from chatmodel_service.migrate import current_revisions, head_revisions

    settings = existing_database(args)
    if settings is None:
        return 1
    current = asyncio.run(current_revisions(settings.database_url))
    heads = head_revisions()
    if not current:
        print("no schema yet: 'chatmodel db upgrade' creates it")
    elif set(current) == set(heads):
        print(f"at revision {', '.join(current)}, the newest")
    else:
        print(
            f"at revision {', '.join(current)}; the newest is {', '.join(heads)} "
            "('chatmodel db upgrade' migrates to it)"
        )
    return 0

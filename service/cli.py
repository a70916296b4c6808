"""The server half of the ``chatmodel`` command: ``serve`` and ``db upgrade|downgrade``.

The ``chatmodel`` console script is ``chatmodel._cli:main`` (the client package); it runs
the admin commands itself and hands ``serve`` and ``db ...`` to :func:`main` here.
``python -m chatmodel_service.cli serve`` works too. Importing this module is cheap: the
app (and LiteLLM) load only for ``serve``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from chatmodel_service import __version__
from chatmodel_service.config import Settings, get_settings


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


def cmd_serve(args: argparse.Namespace) -> int:
    overrides = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    settings = get_settings().model_copy(update=overrides)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    print(f"chatmodel {__version__}: database {_safe_url(settings.database_url)}", file=sys.stderr)
    _upgrade(settings, "head")
    import uvicorn

    from chatmodel_service.app import create_app

    print(f"chatmodel: serving on http://{settings.host}:{settings.port}", file=sys.stderr)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
    )
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = get_settings()
    _upgrade(settings, args.revision)
    print(f"database {_safe_url(settings.database_url)} upgraded to {args.revision}")
    return 0


def cmd_db_downgrade(args: argparse.Namespace) -> int:
    from chatmodel_service.migrate import downgrade

    settings = get_settings()
    downgrade(settings.database_url, args.revision)
    print(f"database {_safe_url(settings.database_url)} downgraded to {args.revision}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatmodel", description="Self-hosted chat sessions.")
    parser.add_argument("--version", action="version", version=f"chatmodel {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate the database and start the server")
    serve.add_argument("--host", help="bind address (default 127.0.0.1, or CHATMODEL_HOST)")
    serve.add_argument("--port", type=int, help="port (default 8000, or CHATMODEL_PORT)")
    serve.set_defaults(handler=cmd_serve)

    db = commands.add_parser("db", help="database migrations")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="migrate to the newest schema")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(handler=cmd_db_upgrade)
    downgrade = db_commands.add_parser("downgrade", help="migrate back to a revision")
    downgrade.add_argument("revision")
    downgrade.set_defaults(handler=cmd_db_downgrade)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())

"""Run Alembic migrations from code (used by the CLI, `serve` and the tests), and tell
which revision a database is at."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool


def alembic_config(database_url: str) -> Config:
    """An Alembic config for the packaged migrations, bound to ``database_url``."""
    config = Config()
    config.set_main_option("script_location", str(files("chatmodel_migrations")))
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate to ``revision``. Runs its own event loop: call it outside a running one."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


def head_revisions() -> tuple[str, ...]:
    """The newest revisions of the packaged migrations (one, unless they branch)."""
    return tuple(ScriptDirectory.from_config(alembic_config("")).get_heads())


async def current_revisions(database_url: str) -> tuple[str, ...]:
    """The revisions the database is at; empty when it has no schema yet."""

    def read(connection: Connection) -> tuple[str, ...]:
        return tuple(MigrationContext.configure(connection).get_current_heads())

    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(read)
    finally:
        await engine.dispose()

"""Migrations are code: reversible, and in step with the ORM models, on every database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from chatmodel_service.migrate import downgrade, upgrade
from chatmodel_service.models import DEFAULT_PROJECT_ID, Base, Project
from tests.support.databases import run_async, run_sync_on, table_names


def test_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    url = empty_database_url

    upgrade(url)
    assert set(Base.metadata.tables) <= table_names(url)

    downgrade(url, "base")
    assert table_names(url) == {"alembic_version"}

    upgrade(url)

    def project_names(connection: Connection) -> list[str]:
        return list(connection.execute(text("SELECT name FROM project")).scalars())

    assert run_async(lambda: run_sync_on(url, project_names)) == ["default"]


def test_default_project_has_the_id_the_service_uses(database_url: str) -> None:
    def name_by_id(connection: Connection) -> str:
        # Bound as the service binds it (hex on SQLite, a native uuid on PostgreSQL).
        query = select(Project.name).where(Project.id == DEFAULT_PROJECT_ID)
        return str(connection.execute(query).scalar_one())

    assert run_async(lambda: run_sync_on(database_url, name_by_id)) == "default"


def test_autogenerate_finds_no_drift(database_url: str) -> None:
    def drift(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    assert run_async(lambda: run_sync_on(database_url, drift)) == []

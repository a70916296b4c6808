"""Migrations are code: reversible, and in step with the ORM models."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from chatmodel_service.migrate import downgrade, upgrade
from chatmodel_service.models import DEFAULT_PROJECT_ID, Base


def _sync_url(path: Path) -> str:
    return f"sqlite:///{path}"


def test_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "cycle.db"
    url = f"sqlite+aiosqlite:///{path}"

    upgrade(url)
    engine = create_engine(_sync_url(path))
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    engine.dispose()

    downgrade(url, "base")
    engine = create_engine(_sync_url(path))
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    engine.dispose()

    upgrade(url)
    engine = create_engine(_sync_url(path))
    with engine.connect() as connection:
        projects = connection.execute(text("SELECT name FROM project")).scalars().all()
    engine.dispose()
    assert projects == ["default"]


def test_default_project_has_the_id_the_service_uses(tmp_path: Path) -> None:
    path = tmp_path / "project.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    engine = create_engine(_sync_url(path))
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT id FROM project")).scalar_one()
    engine.dispose()
    assert stored == DEFAULT_PROJECT_ID.hex


def test_autogenerate_finds_no_drift(tmp_path: Path) -> None:
    path = tmp_path / "drift.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    engine = create_engine(_sync_url(path))
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == []

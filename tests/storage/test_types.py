"""Column types behave the same on SQLite and PostgreSQL: timestamps are instants in UTC."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from chatmodel_service.config import Settings
from chatmodel_service.db import Database, create_engine
from chatmodel_service.models import ChatModel, Project

BERLIN_SUMMER = timezone(timedelta(hours=2))


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(create_engine(Settings(database_url=database_url)))
    try:
        yield database
    finally:
        await database.dispose()


@pytest.mark.parametrize(
    "written",
    [
        datetime(2026, 7, 1, 14, 30, 15, 123456, tzinfo=BERLIN_SUMMER),
        datetime(2026, 7, 1, 12, 30, 15, 123456, tzinfo=UTC),
        datetime(2026, 7, 1, 12, 30, 15, 123456),  # naive: taken as UTC
    ],
    ids=["offset", "utc", "naive"],
)
async def test_timestamps_come_back_as_the_same_instant_in_utc(
    database: Database, written: datetime
) -> None:
    async with database.transaction() as db:
        project = Project(name="timed", created_at=written)
        db.add(project)
    async with database.transaction(write=False) as db:
        stored = await db.execute(select(Project.created_at).where(Project.name == "timed"))
        read = stored.scalar_one()
    assert read == datetime(2026, 7, 1, 12, 30, 15, 123456, tzinfo=UTC)
    assert read.tzinfo is not None and read.utcoffset() == timedelta(0)


async def test_timestamps_compare_as_instants_whatever_offset_they_were_written_with(
    database: Database,
) -> None:
    noon_utc = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    async with database.transaction() as db:
        project = Project(name="timed")
        db.add(project)
        await db.flush()
        for name, minutes in (("before", -1), ("after", 1)):
            at = (noon_utc + timedelta(minutes=minutes)).astimezone(BERLIN_SUMMER)
            db.add(ChatModel(project_id=project.id, name=name, description="", updated_at=at))
    async with database.transaction(write=False) as db:
        later = await db.execute(select(ChatModel.name).where(ChatModel.updated_at > noon_utc))
        assert later.scalars().all() == ["after"]

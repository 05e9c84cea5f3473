"""Fixtures shared by the whole suite: the database backends the store runs on."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

POSTGRES_URL = os.environ.get("CARAVAN_TEST_POSTGRES_URL")


def _worker_database(url: str, worker: str) -> str:
    """A database of this test worker's own (xdist runs workers in parallel)."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = f"caravan_test_{worker}"
    admin = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    return parsed.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url(worker_id: str) -> str | None:
    if not POSTGRES_URL:
        return None
    return _worker_database(POSTGRES_URL, worker_id)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, postgres_url: str | None) -> Iterator[str | None]:
    """None (SQLite in the test's data directory), or a clean PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    if postgres_url is None:
        pytest.skip("set CARAVAN_TEST_POSTGRES_URL to run the store tests on PostgreSQL")
    from caravan.store import Database

    db = Database(postgres_url)
    db.drop_everything()
    db.close()
    yield postgres_url

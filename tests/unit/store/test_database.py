"""The store on SQLite and PostgreSQL: atomic transactions, ordering, queries the engine uses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from caravan.model.records import ActionRecord, ExecutionRecord, JobRecord, StageRecord
from caravan.store import Database


@pytest.fixture
def db(tmp_path: Path, database_url: str | None) -> Iterator[Database]:
    database = Database(database_url) if database_url else Database.in_directory(tmp_path)
    yield database
    database.close()


def execution(i: int, pipeline: str = "p", status: str = "InProgress") -> ExecutionRecord:
    return ExecutionRecord(
        id=f"e{i}",
        pipeline=pipeline,
        pipeline_version=1,
        status=status,
        started=float(i),
        updated=float(i),
    )


def test_a_failed_transaction_leaves_nothing_behind(db: Database) -> None:
    with db.transaction() as tx:
        tx.pipelines.insert("p", 1, {"pipeline": {"name": "p"}}, 1.0)
    with pytest.raises(RuntimeError), db.transaction() as tx:
        tx.executions.insert(execution(1))
        tx.pipelines.put_flow("p", {"mode": "SUPERSEDED"})
        raise RuntimeError("crash between two writes")
    with db.transaction() as tx:
        assert tx.executions.get("e1") is None
        assert tx.pipelines.get_flow("p") is None
        assert tx.pipelines.get("p") is not None


def test_executions_list_newest_first_and_live_ones_are_found(db: Database) -> None:
    with db.transaction() as tx:
        for i in range(5):
            tx.executions.insert(execution(i, status="Succeeded" if i % 2 else "InProgress"))
        tx.executions.insert(execution(9, pipeline="other"))
    with db.transaction() as tx:
        assert [r.id for r in tx.executions.recent("p", limit=3)] == ["e4", "e3", "e2"]
        assert [r.id for r in tx.executions.live("p")] == ["e0", "e2", "e4"]
        assert {r.id for r in tx.executions.live()} == {"e0", "e2", "e4", "e9"}


def test_records_round_trip_with_every_field(db: Database) -> None:
    record = execution(1)
    record.namespaces = {"Build": {"Image": "app:1"}}
    record.artifacts = {"Src": {"name": "Src", "bucket": "b", "key": "k", "revision": "abc"}}
    stage = StageRecord("e1", "p", "Build", attempt=2, carried={"A": "a1"})
    action = ActionRecord(
        id="a1",
        pipeline="p",
        pipeline_version=1,
        execution_id="e1",
        stage="Build",
        action="A",
        attempt=2,
        run_order=1,
        action_type={"category": "Build", "owner": "Custom", "provider": "X", "version": "1"},
        resolved_configuration={"K": "v"},
    )
    with db.transaction() as tx:
        tx.executions.insert(record)
        tx.executions.save_stage(stage)
        tx.executions.insert_action(action)
    with db.transaction() as tx:
        assert tx.executions.get("e1") == record
        assert tx.executions.get_stage("e1", "Build") == stage
        assert tx.executions.actions_of("e1", "Build") == [action]


def test_job_workers_see_only_due_queued_jobs_of_their_type(db: Database) -> None:
    kind = {"category": "Build", "owner": "Custom", "provider": "Mine", "version": "1"}
    other = {**kind, "provider": "Theirs"}
    with db.transaction() as tx:
        tx.jobs.insert(JobRecord("j1", "n", "a1", "p", "e1", kind, due_at=1.0))
        tx.jobs.insert(JobRecord("j2", "n", "a2", "p", "e1", kind, due_at=100.0))
        tx.jobs.insert(JobRecord("j3", "n", "a3", "p", "e1", other, due_at=1.0))
        tx.jobs.insert(JobRecord("j4", "n", "a4", "p", "e1", kind, status="Succeeded"))
    with db.transaction() as tx:
        found = tx.jobs.queued_for("Build", "Custom", "Mine", "1", now=10.0, limit=10)
        assert [j.id for j in found] == ["j1"]
        assert {j.id for j in tx.jobs.open_jobs()} == {"j1", "j2", "j3"}


def test_state_survives_reopening_the_database(tmp_path: Path, database_url: str | None) -> None:
    first = Database(database_url) if database_url else Database.in_directory(tmp_path)
    with first.transaction() as tx:
        stored = tx.executions.insert(execution(1))
    first.close()
    second = Database(database_url) if database_url else Database.in_directory(tmp_path)
    with second.transaction() as tx:
        assert tx.executions.get("e1") == stored
    second.close()

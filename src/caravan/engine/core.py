"""The engine's core: transactions per pipeline, carrying out committed changes, recovery.

``EngineCore.mutate(pipeline)`` serialises the changes of one pipeline, runs them in one store
transaction, and performs what they decided (dispatch jobs, cancel work, publish events) only
after the commit. Operations (``caravan.engine.ops_*``) are functions of an ``EngineCore``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from caravan.actions.base import Job, JobFailed, JobResult
from caravan.actions.registry import ProviderKind, ProviderRegistry
from caravan.artifacts.store import ArtifactStore
from caravan.engine.changes import Changes
from caravan.engine.declarations import DeclarationCache
from caravan.engine.dispatch import Dispatcher, build_job
from caravan.engine.driver import Driver
from caravan.engine.events import EventBus
from caravan.engine.leftovers import kill_leftovers
from caravan.engine.logs import ActionLogs
from caravan.engine.settings import EngineSettings
from caravan.model.records import ActionRecord, JobRecord
from caravan.model.statuses import FailureType, JobStatus, StageExecutionStatus
from caravan.store import Database, Tx

log = logging.getLogger(__name__)


class EngineCore:
    def __init__(
        self,
        *,
        db: Database,
        artifacts: ArtifactStore,
        registry: ProviderRegistry,
        data_dir: Path,
        settings: EngineSettings,
        clock: Callable[[], float] = time.time,
        services: Mapping[str, Any] | None = None,
    ) -> None:
        self.db = db
        self.artifacts = artifacts
        self.registry = registry
        self.data_dir = data_dir
        self.settings = settings
        self.clock = clock
        self.bus = EventBus()
        self.logs = ActionLogs(data_dir / "logs")
        self.declarations = DeclarationCache()
        self.driver = Driver(
            self.declarations,
            clock=clock,
            continuation_delay=settings.continuation_delay,
            queue_limit=settings.queue_limit,
            default_bucket=settings.default_artifact_bucket,
            region=settings.region,
            account_id=settings.account_id,
        )
        provider_settings: dict[str, Any] = {
            "git_repositories": dict(settings.git_repositories),
            "git_url_template": settings.git_url_template,
            "cache_dir": data_dir / "cache",
            "aws_endpoint_url": settings.aws_endpoint_url,
            **(services or {}),
        }
        self.dispatcher = Dispatcher(
            registry=registry,
            artifacts=artifacts,
            logs=self.logs,
            work_root=data_dir / "work",
            settings=provider_settings,
            on_result=self.job_result,
            on_timeout=self.action_timeout,
            clock=clock,
        )
        self._locks: dict[str, asyncio.Lock] = {}

    # Transactions -------------------------------------------------------------------------
    @asynccontextmanager
    async def mutate(self, pipeline: str) -> AsyncIterator[tuple[Tx, Changes]]:
        lock = self._locks.setdefault(pipeline, asyncio.Lock())
        async with lock:
            changes = Changes()
            with self.db.transaction() as tx:
                yield tx, changes
                # What the jobs to dispatch need is read now, in the same transaction.
                starts = self._job_starts(tx, changes.dispatch)
            self.perform(changes, starts)

    def read(self) -> AbstractContextManager[Tx]:
        """A transaction for reading (no lock: readers see the last commit)."""
        return self.db.transaction()

    def perform(self, ch: Changes, starts: list[tuple[Job, JobRecord, dict[str, Any]]]) -> None:
        for job_id in ch.cancel:
            self.dispatcher.cancel(job_id)
        for action_id in ch.ended_actions:
            self.dispatcher.disarm_timeout(action_id)
            self.logs.touch(action_id)
        for action_id, deadline in ch.timers:
            self.dispatcher.arm_timeout(action_id, deadline)
        for job, record, context in starts:
            self.dispatcher.start(job, record, context)
        for event in ch.events:
            self.bus.publish(event)

    def _job_starts(
        self, tx: Tx, jobs: list[tuple[JobRecord, ActionRecord]]
    ) -> list[tuple[Job, JobRecord, dict[str, Any]]]:
        starts = []
        for job, action in jobs:
            if not job.open:
                continue
            entry = self.dispatcher.entry(action.action_type)
            if entry is not None and entry.kind is not ProviderKind.RUN:
                continue  # approvals and job workers wait for the API
            context = self.job_context(tx, action)
            starts.append((build_job(job, action, context), job, context))
        return starts

    def job_context(self, tx: Tx, action: ActionRecord) -> dict[str, Any]:
        """What a job needs beyond its records: the action's declaration fields and settings."""
        pdoc = self.declarations.get(tx, action.pipeline, action.pipeline_version)
        record = tx.executions.get(action.execution_id)
        assert record is not None  # the action's execution is in the same store
        decl = self.driver.declared_action(tx, record, action)
        commands, env = self.driver.resolve_commands(record, decl)
        return {
            "commands": commands,
            "environment_variables": env,
            "output_variables": tuple(decl.output_variables or ()),
            "source_revision": record.source_revisions.get(action.action)
            if action.stage == pdoc.declaration.stages[0].name
            else None,
            "region": self.settings.region,
            "account_id": self.settings.account_id,
            "declaration_dir": pdoc.declaration_dir,
            "build_projects": pdoc.build_projects,
        }

    # Results coming back ------------------------------------------------------------------
    async def job_result(self, job_id: str, result: JobResult, pipeline: str | None = None) -> None:
        """A provider or a job worker reported; results for jobs that already ended are
        dropped."""
        if pipeline is None:
            with self.read() as tx:
                found = tx.jobs.get(job_id)
            if found is None:
                return
            pipeline = found.pipeline
        async with self.mutate(pipeline) as (tx, ch):
            job = tx.jobs.get(job_id)
            if job is not None:
                self.driver.apply_result(tx, ch, job, result)

    async def action_timeout(self, action_id: str) -> None:
        with self.read() as tx:
            action = tx.executions.get_action(action_id)
        if action is None:
            return
        async with self.mutate(action.pipeline) as (tx, ch):
            action = tx.executions.get_action(action_id)
            if action is None or not action.live or action.timeout_at is None:
                return
            if action.timeout_at > self.clock() + 0.001:
                ch.timers.append((action.id, action.timeout_at))  # deadline moved
                return
            seconds = action.timeout_at - action.started
            what = "Approval" if action.action_type["category"] == "Approval" else "Action"
            self.driver.fail_action(
                tx,
                ch,
                action,
                FailureType.JOB_FAILED,
                f"{what} timed out after {_duration(seconds)} (the action's timeout).",
            )

    # Start-up and recovery ----------------------------------------------------------------
    async def start(self) -> None:
        """Pick up where a previous process left off (it may have been killed at any point)."""
        pipelines = set()
        with self.read() as tx:
            pipelines = {r.pipeline for r in tx.executions.live()}
            pipelines |= {j.pipeline for j in tx.jobs.open_jobs()}
        for pipeline in sorted(pipelines):
            async with self.mutate(pipeline) as (tx, ch):
                self._recover_pipeline(tx, ch, pipeline)

    def _recover_pipeline(self, tx: Tx, ch: Changes, pipeline: str) -> None:
        for job in tx.jobs.open_jobs():
            if job.pipeline == pipeline:
                self._recover_job(tx, ch, job)
        for action in tx.executions.live_actions():
            if action.pipeline == pipeline and action.timeout_at is not None:
                ch.timers.append((action.id, action.timeout_at))
        for record in tx.executions.live(pipeline):
            for stage in tx.executions.stages_of(record.id):
                if stage.status in (
                    StageExecutionStatus.IN_PROGRESS,
                    StageExecutionStatus.STOPPING,
                ):
                    self.driver.advance_stage(tx, ch, record, stage)

    def _recover_job(self, tx: Tx, ch: Changes, job: JobRecord) -> None:
        action = tx.executions.get_action(job.action_execution_id)
        if action is None or not action.live or action.job_id != job.id:
            job.status = JobStatus.FAILED
            tx.jobs.save(job)
            return
        entry = self.dispatcher.entry(action.action_type)
        if entry is None or entry.kind is not ProviderKind.RUN:
            return  # job workers and approvals keep waiting for the API
        if not entry.resumable:
            self.driver.apply_result(
                tx,
                ch,
                job,
                JobFailed(
                    f"caravan restarted while this action was running, and its provider "
                    f"({'/'.join(action.action_type.values())}) cannot safely run it again.",
                    FailureType.SYSTEM_UNAVAILABLE,
                ),
            )
            return
        leftovers = kill_leftovers(self.data_dir / "work" / job.id)
        note = f" (stopped {len(leftovers)} leftover process(es) of the interrupted run)"
        self.logs.writer(action.id)(
            "caravan: restarted; running the interrupted action again"
            + (note if leftovers else ".")
        )
        job.dispatches += 1
        job.status = JobStatus.QUEUED
        tx.jobs.save(job)
        ch.dispatch.append((job, action))

    async def close(self) -> None:
        await self.dispatcher.close()
        self.db.close()


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:g} seconds"
    if seconds < 7200:
        return f"{seconds / 60:g} minutes"
    return f"{seconds / 3600:g} hours"

"""Runs jobs: hands each to its provider, arms timeouts, and cancels work that was abandoned.

The dispatcher owns the asyncio tasks of running providers and the timers of continuations
and timeouts. Results go back through the callbacks the engine gives it, which commit them.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from caravan.actions.base import (
    ActionTypeKey,
    Job,
    JobArtifact,
    JobContext,
    JobFailed,
    JobResult,
)
from caravan.actions.registry import ProviderEntry, ProviderKind, ProviderRegistry
from caravan.artifacts.store import ArtifactStore
from caravan.engine.logs import ActionLogs
from caravan.errors import CaravanError
from caravan.model.records import ActionRecord, JobRecord
from caravan.model.statuses import FailureType

log = logging.getLogger(__name__)

ResultSink = Callable[[str, JobResult, str], Awaitable[None]]
TimeoutSink = Callable[[str], Awaitable[None]]


class Dispatcher:
    def __init__(
        self,
        *,
        registry: ProviderRegistry,
        artifacts: ArtifactStore,
        logs: ActionLogs,
        work_root: Path,
        settings: dict[str, Any],
        on_result: ResultSink,
        on_timeout: TimeoutSink,
        clock: Callable[[], float],
    ) -> None:
        self.registry = registry
        self.artifacts = artifacts
        self.logs = logs
        self.work_root = work_root
        self.settings = settings
        self.on_result = on_result
        self.on_timeout = on_timeout
        self.clock = clock
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._closing = False

    def entry(self, action_type: dict[str, str]) -> ProviderEntry | None:
        return self.registry.lookup(ActionTypeKey(**action_type))

    def start(self, job: Job, record: JobRecord, context: dict[str, Any]) -> None:
        """Run ``job`` now, or when it is due (continuations wait ``continuation_delay``)."""
        delay = record.due_at - self.clock()
        if delay > 0:
            loop = asyncio.get_running_loop()
            self._timers[f"job:{job.id}"] = loop.call_later(
                delay, lambda: self._spawn(job, context)
            )
        else:
            self._spawn(job, context)

    def _spawn(self, job: Job, context: dict[str, Any]) -> None:
        if self._closing:
            return
        self._timers.pop(f"job:{job.id}", None)
        task = asyncio.create_task(self._run(job, context), name=f"job {job.id}")
        self._tasks[job.id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(job.id, None))

    async def _run(self, job: Job, context: dict[str, Any]) -> None:
        entry = self.entry(job.action_type.to_dict())
        write = self.logs.writer(job.action_execution_id)
        if entry is None:
            known = ", ".join(str(k) for k in self.registry.action_types())
            await self.on_result(
                job.id,
                JobFailed(
                    f"no action provider for actionTypeId {job.action_type}; installed: {known}",
                    FailureType.CONFIGURATION_ERROR,
                ),
                job.pipeline_name,
            )
            return
        if entry.kind is not ProviderKind.RUN or entry.run is None:
            return
        workdir = self.work_root / job.id
        workdir.mkdir(parents=True, exist_ok=True)
        ctx = JobContext(
            artifacts=self.artifacts,
            workdir=workdir,
            log=write,
            settings=self.settings,
            declaration_dir=context.get("declaration_dir"),
            build_projects=context.get("build_projects", {}),
        )
        try:
            result = await entry.run(job, ctx)
        except asyncio.CancelledError:
            write("caravan: the action was abandoned; its work was stopped.")
            raise
        except CaravanError as error:
            result = JobFailed(
                error.message,
                FailureType.CONFIGURATION_ERROR if error.exit_code == 2 else FailureType.JOB_FAILED,
            )
        except Exception as error:  # a provider bug fails its action, not the engine
            write("caravan: the provider raised an unexpected error:\n" + traceback.format_exc())
            result = JobFailed(f"internal error in provider {job.action_type}: {error!r}")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        await self.on_result(job.id, result, job.pipeline_name)

    def arm_timeout(self, action_id: str, deadline: float) -> None:
        if self._closing:
            return
        loop = asyncio.get_running_loop()
        old = self._timers.pop(f"timeout:{action_id}", None)
        if old is not None:
            old.cancel()
        delay = max(0.0, deadline - self.clock())
        self._timers[f"timeout:{action_id}"] = loop.call_later(
            delay, lambda: asyncio.ensure_future(self.on_timeout(action_id))
        )

    def disarm_timeout(self, action_id: str) -> None:
        timer = self._timers.pop(f"timeout:{action_id}", None)
        if timer is not None:
            timer.cancel()

    def cancel(self, job_id: str) -> None:
        """Stop the local work of a job (abandon, timeout, cancellation)."""
        timer = self._timers.pop(f"job:{job_id}", None)
        if timer is not None:
            timer.cancel()
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel()

    def running(self, job_id: str) -> bool:
        return job_id in self._tasks

    async def close(self) -> None:
        self._closing = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def build_job(record: JobRecord, action: ActionRecord, extra: dict[str, Any]) -> Job:
    """The provider's view of a job, from its stored records."""
    return Job(
        id=record.id,
        nonce=record.nonce,
        action_type=ActionTypeKey(**action.action_type),
        configuration=dict(action.resolved_configuration),
        pipeline_name=action.pipeline,
        stage_name=action.stage,
        action_name=action.action,
        action_execution_id=action.id,
        pipeline_execution_id=action.execution_id,
        input_artifacts=tuple(_artifact(a) for a in action.input_artifacts),
        output_artifacts=tuple(_artifact(a) for a in action.output_artifacts),
        continuation_token=record.data.get("continuation_token"),
        commands=tuple(extra.get("commands", ())),
        environment_variables=dict(extra.get("environment_variables", {})),
        output_variables=tuple(extra.get("output_variables", ())),
        source_revision=extra.get("source_revision"),
        region=extra.get("region", "local"),
        account_id=extra.get("account_id", "000000000000"),
    )


def _artifact(doc: dict[str, Any]) -> JobArtifact:
    return JobArtifact(
        name=doc["name"],
        bucket=doc["bucket"],
        key=doc["key"],
        revision=doc.get("revision"),
        files=tuple(doc.get("files") or ()),
    )

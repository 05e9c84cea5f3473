"""An in-memory EngineAPI for server and CLI tests.

It answers CodePipeline operations from dicts in CodePipeline's shapes (botocore's model). It
does not run anything: tests shape executions and actions with the ``add_*`` helpers, push
events with ``publish`` and can script changes that happen once a client subscribes
(``on_subscribe``), all on the event loop that serves the engine.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from caravan.engine.api import OPERATIONS, LogChunk
from caravan.errors import (
    ActionNotFoundError,
    DeclarationError,
    InvalidApprovalTokenError,
    InvalidInputError,
    Issue,
    PipelineExecutionNotFoundError,
    PipelineExecutionNotStoppableError,
    PipelineNameInUseError,
    PipelineNotFoundError,
    PipelineVersionNotFoundError,
    StageNotFoundError,
    StageNotRetryableError,
)

TERMINAL = {"Succeeded", "Failed", "Stopped", "Superseded", "Cancelled"}


def new_id() -> str:
    return str(uuid.uuid4())


def declaration(name: str = "demo", stages: Mapping[str, list[str]] | None = None) -> dict:
    """A small pipeline declaration: stage name -> action names (run orders 1, 2, ...)."""
    stages = stages or {"Source": ["Checkout"], "Build": ["Compile", "Test"]}
    return {
        "name": name,
        "roleArn": "arn:aws:iam::000000000000:role/caravan",
        "artifactStore": {"type": "S3", "location": "caravan-artifacts"},
        "stages": [
            {
                "name": stage,
                "actions": [
                    {
                        "name": action,
                        "runOrder": order,
                        "actionTypeId": {
                            "category": "Build",
                            "owner": "AWS",
                            "provider": "CodeBuild",
                            "version": "1",
                        },
                    }
                    for order, action in enumerate(actions, start=1)
                ],
            }
            for stage, actions in stages.items()
        ],
        "executionMode": "SUPERSEDED",
        "pipelineType": "V2",
    }


@dataclass
class FakeLog:
    text: str = ""
    complete: bool = True
    pending: list[str] = field(default_factory=list)  # appended, one by one, while followed


class FakeEngine:
    def __init__(self) -> None:
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.executions: dict[str, list[dict[str, Any]]] = {}  # newest first
        self.actions: list[dict[str, Any]] = []  # ActionExecutionDetail, newest first
        self.tokens: dict[str, str] = {}  # actionExecutionId -> approval token
        self.logs: dict[str, FakeLog] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.on_subscribe: Callable[[FakeEngine], Awaitable[None]] | None = None
        self.subscribers: list[tuple[str | None, asyncio.Queue[dict[str, Any]]]] = []
        self.explode: Exception | None = None  # raised by the next call, then cleared
        self.closed = False

    # Shaping state ------------------------------------------------------------------------
    def add_pipeline(self, decl: dict[str, Any]) -> None:
        now = time.time()
        self.pipelines[decl["name"]] = {
            "versions": {1: {**decl, "version": 1}},
            "created": now,
            "updated": now,
            "transitions": {},
            "inbound": {},
        }
        self.executions.setdefault(decl["name"], [])

    def add_execution(
        self,
        pipeline: str,
        *,
        status: str = "InProgress",
        trigger: str = "StartPipelineExecution",
        variables: list[dict[str, str]] | None = None,
        started: float | None = None,
    ) -> str:
        started = time.time() if started is None else started
        execution = {
            "pipelineExecutionId": new_id(),
            "pipelineName": pipeline,
            "pipelineVersion": self._latest(pipeline)["version"],
            "status": status,
            "startTime": started,
            "lastUpdateTime": started,
            "trigger": {"triggerType": trigger, "triggerDetail": "test"},
            "executionMode": "SUPERSEDED",
            "executionType": "STANDARD",
            "variables": [
                {"name": v["name"], "resolvedValue": v["value"]} for v in variables or []
            ],
            "stages": {},
        }
        self.executions[pipeline].insert(0, execution)
        return execution["pipelineExecutionId"]

    def execution(self, pipeline: str, execution_id: str) -> dict[str, Any]:
        for execution in self.executions.get(pipeline, []):
            if execution["pipelineExecutionId"] == execution_id:
                return execution
        raise PipelineExecutionNotFoundError(
            f"pipeline {pipeline!r} has no execution {execution_id!r}"
        )

    def set_status(self, pipeline: str, execution_id: str, status: str) -> None:
        execution = self.execution(pipeline, execution_id)
        execution["status"] = status
        execution["lastUpdateTime"] = time.time()

    def set_stage(self, pipeline: str, execution_id: str, stage: str, status: str) -> None:
        self.execution(pipeline, execution_id)["stages"][stage] = status

    def add_action(
        self,
        pipeline: str,
        execution_id: str,
        stage: str,
        action: str,
        *,
        status: str = "Succeeded",
        summary: str | None = None,
        error: str | None = None,
        started: float | None = None,
        duration: float = 1.5,
        log: str = "",
        log_pending: list[str] | None = None,
        token: str | None = None,
    ) -> str:
        started = time.time() - duration if started is None else started
        result: dict[str, Any] = {}
        if summary:
            result["externalExecutionSummary"] = summary
        if error:
            result["errorDetails"] = {"code": "JobFailed", "message": error}
        action_execution_id = new_id()
        self.actions.insert(
            0,
            {
                "pipelineExecutionId": execution_id,
                "actionExecutionId": action_execution_id,
                "pipelineVersion": self._latest(pipeline)["version"],
                "stageName": stage,
                "actionName": action,
                "startTime": started,
                "lastUpdateTime": started + duration,
                "status": status,
                "input": {"actionTypeId": self._action_type(pipeline, stage, action)},
                "output": {"executionResult": result, "outputArtifacts": []},
                "_pipeline": pipeline,
            },
        )
        if token:
            self.tokens[action_execution_id] = token
        self.logs[action_execution_id] = FakeLog(
            text=log, complete=not log_pending, pending=list(log_pending or [])
        )
        self.execution(pipeline, execution_id)["stages"].setdefault(stage, status)
        return action_execution_id

    def set_action(self, action_execution_id: str, status: str, **result: str) -> None:
        detail = self._detail(action_execution_id)
        detail["status"] = status
        detail["lastUpdateTime"] = time.time()
        if "error" in result:
            detail["output"]["executionResult"]["errorDetails"] = {
                "code": "JobFailed",
                "message": result["error"],
            }

    def add_inbound(self, pipeline: str, stage: str, execution_id: str, status: str) -> None:
        inbound = self._pipeline(pipeline)["inbound"].setdefault(stage, [])
        inbound.append({"pipelineExecutionId": execution_id, "status": status})

    def publish(self, event: dict[str, Any]) -> None:
        for wanted, queue in list(self.subscribers):
            if wanted is None or event.get("pipeline") == wanted:
                queue.put_nowait(event)

    # EngineAPI ----------------------------------------------------------------------------
    async def call(self, operation: str, request: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append((operation, dict(request)))
        if self.explode is not None:
            error, self.explode = self.explode, None
            raise error
        if operation not in OPERATIONS:
            raise InvalidInputError(f"unknown operation {operation!r}")
        handler = getattr(self, f"_op_{operation}", None)
        if handler is None:
            raise InvalidInputError(f"the fake engine does not answer {operation}")
        result: dict[str, Any] = handler(dict(request))
        return result

    async def read_log(self, action_execution_id: str, offset: int = 0) -> LogChunk:
        log = self._log(action_execution_id)
        data = log.text.encode()[offset:]
        return LogChunk(data.decode(errors="replace"), offset + len(data), log.complete)

    async def follow_log(self, action_execution_id: str, offset: int = 0) -> AsyncIterator[str]:
        log = self._log(action_execution_id)
        rest = log.text.encode()[offset:].decode(errors="replace")
        if rest:
            yield rest
        while log.pending:
            await asyncio.sleep(0.02)
            chunk = log.pending.pop(0)
            log.text += chunk
            yield chunk
        log.complete = True

    async def subscribe(self, pipeline: str | None = None) -> AsyncIterator[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        entry = (pipeline, queue)
        self.subscribers.append(entry)
        script = None
        if self.on_subscribe is not None:
            script = asyncio.create_task(self.on_subscribe(self))
        try:
            while True:
                yield await queue.get()
        finally:
            self.subscribers.remove(entry)
            if script is not None:
                script.cancel()

    # Operations ---------------------------------------------------------------------------
    def _op_CreatePipeline(self, request: dict[str, Any]) -> dict[str, Any]:
        decl = request.get("pipeline")
        if not isinstance(decl, dict):
            raise InvalidInputError("'pipeline' is required")
        issues = []
        if not decl.get("name"):
            issues.append(Issue("pipeline.name", "is required"))
        if len(decl.get("stages") or []) < 2:
            issues.append(Issue("pipeline.stages", "a pipeline needs at least 2 stages"))
        if issues:
            raise DeclarationError(issues, source="the request")
        if decl["name"] in self.pipelines:
            raise PipelineNameInUseError(f"a pipeline named {decl['name']!r} already exists")
        self.add_pipeline(decl)
        self.add_execution(decl["name"], trigger="CreatePipeline")
        return {"pipeline": self._latest(decl["name"]), "tags": request.get("tags", [])}

    def _op_UpdatePipeline(self, request: dict[str, Any]) -> dict[str, Any]:
        decl = request["pipeline"]
        record = self._pipeline(decl["name"])
        version = max(record["versions"]) + 1
        record["versions"][version] = {**decl, "version": version}
        record["updated"] = time.time()
        return {"pipeline": record["versions"][version]}

    def _op_GetPipeline(self, request: dict[str, Any]) -> dict[str, Any]:
        record = self._pipeline(request["name"])
        version = request.get("version", max(record["versions"]))
        if version not in record["versions"]:
            raise PipelineVersionNotFoundError(
                f"pipeline {request['name']!r} has no version {version}"
            )
        metadata = {
            "pipelineArn": f"arn:aws:codepipeline:us-east-1:000000000000:{request['name']}",
            "created": record["created"],
            "updated": record["updated"],
        }
        return {"pipeline": record["versions"][version], "metadata": metadata}

    def _op_ListPipelines(self, request: dict[str, Any]) -> dict[str, Any]:
        summaries = []
        for name in sorted(self.pipelines):
            latest = self._latest(name)
            summaries.append(
                {
                    "name": name,
                    "version": latest["version"],
                    "pipelineType": latest.get("pipelineType", "V1"),
                    "executionMode": latest.get("executionMode", "SUPERSEDED"),
                    "created": self.pipelines[name]["created"],
                    "updated": self.pipelines[name]["updated"],
                }
            )
        return {"pipelines": summaries}

    def _op_DeletePipeline(self, request: dict[str, Any]) -> dict[str, Any]:
        self.pipelines.pop(request["name"], None)
        self.executions.pop(request["name"], None)
        return {}

    def _op_StartPipelineExecution(self, request: dict[str, Any]) -> dict[str, Any]:
        self._pipeline(request["name"])
        execution_id = self.add_execution(request["name"], variables=request.get("variables"))
        return {"pipelineExecutionId": execution_id}

    def _op_StopPipelineExecution(self, request: dict[str, Any]) -> dict[str, Any]:
        execution = self.execution(request["pipelineName"], request["pipelineExecutionId"])
        if execution["status"] in TERMINAL:
            raise PipelineExecutionNotStoppableError(
                f"execution {execution['pipelineExecutionId']} is {execution['status']}"
            )
        execution["status"] = "Stopped" if request.get("abandon") else "Stopping"
        execution["stopTrigger"] = {"reason": request.get("reason", "")}
        return {"pipelineExecutionId": execution["pipelineExecutionId"]}

    def _op_GetPipelineExecution(self, request: dict[str, Any]) -> dict[str, Any]:
        execution = self.execution(request["pipelineName"], request["pipelineExecutionId"])
        keys = [
            "pipelineName",
            "pipelineVersion",
            "pipelineExecutionId",
            "status",
            "trigger",
            "variables",
            "executionMode",
            "executionType",
        ]
        body = {key: execution[key] for key in keys}
        body["artifactRevisions"] = []
        return {"pipelineExecution": body}

    def _op_ListPipelineExecutions(self, request: dict[str, Any]) -> dict[str, Any]:
        self._pipeline(request["pipelineName"])
        keys = [
            "pipelineExecutionId",
            "status",
            "startTime",
            "lastUpdateTime",
            "trigger",
            "executionMode",
            "executionType",
            "stopTrigger",
        ]
        summaries = [
            {key: e[key] for key in keys if key in e}
            for e in self.executions[request["pipelineName"]][: request.get("maxResults", 100)]
        ]
        return {"pipelineExecutionSummaries": summaries}

    def _op_GetPipelineState(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["name"]
        record = self._pipeline(name)
        latest = self._latest(name)
        stage_states = [self._stage_state(name, stage) for stage in latest["stages"]]
        return {
            "pipelineName": name,
            "pipelineVersion": latest["version"],
            "stageStates": stage_states,
            "created": record["created"],
            "updated": record["updated"],
        }

    def _op_ListActionExecutions(self, request: dict[str, Any]) -> dict[str, Any]:
        self._pipeline(request["pipelineName"])
        wanted = (request.get("filter") or {}).get("pipelineExecutionId")
        details = [
            {k: v for k, v in d.items() if not k.startswith("_")}
            for d in self.actions
            if d["_pipeline"] == request["pipelineName"]
            and (wanted is None or d["pipelineExecutionId"] == wanted)
        ]
        return {"actionExecutionDetails": details[: request.get("maxResults", 100)]}

    def _op_RetryStageExecution(self, request: dict[str, Any]) -> dict[str, Any]:
        execution = self.execution(request["pipelineName"], request["pipelineExecutionId"])
        stage = request["stageName"]
        self._stage(request["pipelineName"], stage)
        if execution["stages"].get(stage) not in ("Failed", "Stopped"):
            raise StageNotRetryableError(f"stage {stage!r} has no failed actions to retry")
        execution["stages"][stage] = "InProgress"
        execution["status"] = "InProgress"
        return {"pipelineExecutionId": execution["pipelineExecutionId"]}

    def _op_PutApprovalResult(self, request: dict[str, Any]) -> dict[str, Any]:
        for action_execution_id, token in self.tokens.items():
            if token == request["token"]:
                detail = self._detail(action_execution_id)
                detail["status"] = (
                    "Succeeded" if request["result"]["status"] == "Approved" else "Failed"
                )
                detail["output"]["executionResult"]["externalExecutionSummary"] = request["result"][
                    "summary"
                ]
                del self.tokens[action_execution_id]
                return {"approvedAt": time.time()}
        raise InvalidApprovalTokenError("the approval token is invalid or already used")

    def _op_DisableStageTransition(self, request: dict[str, Any]) -> dict[str, Any]:
        self._stage(request["pipelineName"], request["stageName"])
        self._pipeline(request["pipelineName"])["transitions"][request["stageName"]] = {
            "enabled": False,
            "disabledReason": request["reason"],
            "lastChangedBy": "tester",
            "lastChangedAt": time.time(),
        }
        return {}

    def _op_EnableStageTransition(self, request: dict[str, Any]) -> dict[str, Any]:
        self._stage(request["pipelineName"], request["stageName"])
        self._pipeline(request["pipelineName"])["transitions"].pop(request["stageName"], None)
        return {}

    # Lookups ------------------------------------------------------------------------------
    def _pipeline(self, name: str) -> dict[str, Any]:
        if name not in self.pipelines:
            raise PipelineNotFoundError(f"pipeline {name!r} does not exist")
        return self.pipelines[name]

    def _latest(self, name: str) -> dict[str, Any]:
        versions = self._pipeline(name)["versions"]
        latest: dict[str, Any] = versions[max(versions)]
        return latest

    def _stage(self, pipeline: str, stage: str) -> dict[str, Any]:
        for declared in self._latest(pipeline)["stages"]:
            if declared["name"] == stage:
                found: dict[str, Any] = declared
                return found
        raise StageNotFoundError(f"pipeline {pipeline!r} has no stage {stage!r}")

    def _action_type(self, pipeline: str, stage: str, action: str) -> dict[str, Any]:
        for declared in self._stage(pipeline, stage)["actions"]:
            if declared["name"] == action:
                action_type: dict[str, Any] = declared["actionTypeId"]
                return action_type
        raise ActionNotFoundError(f"stage {stage!r} has no action {action!r}")

    def _detail(self, action_execution_id: str) -> dict[str, Any]:
        for detail in self.actions:
            if detail["actionExecutionId"] == action_execution_id:
                return detail
        raise ActionNotFoundError(f"no action execution {action_execution_id!r}")

    def _log(self, action_execution_id: str) -> FakeLog:
        if action_execution_id not in self.logs:
            raise ActionNotFoundError(f"no action execution {action_execution_id!r}")
        return self.logs[action_execution_id]

    def _stage_state(self, pipeline: str, stage: dict[str, Any]) -> dict[str, Any]:
        record = self.pipelines[pipeline]
        name = stage["name"]
        state: dict[str, Any] = {
            "stageName": name,
            "inboundTransitionState": record["transitions"].get(name, {"enabled": True}),
            "actionStates": [],
        }
        inbound = record["inbound"].get(name)
        if inbound:
            state["inboundExecution"] = inbound[-1]
            state["inboundExecutions"] = list(inbound)
        for execution in self.executions[pipeline]:
            if name in execution["stages"]:
                state["latestExecution"] = {
                    "pipelineExecutionId": execution["pipelineExecutionId"],
                    "status": execution["stages"][name],
                }
                break
        latest_id = state.get("latestExecution", {}).get("pipelineExecutionId")
        for action in stage["actions"]:
            action_state: dict[str, Any] = {"actionName": action["name"]}
            for detail in self.actions:
                if (
                    detail["pipelineExecutionId"] == latest_id
                    and detail["stageName"] == name
                    and detail["actionName"] == action["name"]
                ):
                    action_state["latestExecution"] = self._action_latest(detail)
                    break
            state["actionStates"].append(action_state)
        return state

    def _action_latest(self, detail: dict[str, Any]) -> dict[str, Any]:
        result = detail["output"]["executionResult"]
        latest: dict[str, Any] = {
            "actionExecutionId": detail["actionExecutionId"],
            "status": detail["status"],
            "lastStatusChange": detail["lastUpdateTime"],
        }
        if "externalExecutionSummary" in result:
            latest["summary"] = result["externalExecutionSummary"]
        if "errorDetails" in result:
            latest["errorDetails"] = result["errorDetails"]
        token = self.tokens.get(detail["actionExecutionId"])
        if token and detail["status"] == "InProgress":
            latest["token"] = token
        return latest


def fake_open_engine(engine: FakeEngine) -> Callable[..., Any]:
    """An ``open_engine`` replacement handing out ``engine`` (and marking it closed after)."""

    @asynccontextmanager
    async def open_engine(**_: Any) -> AsyncIterator[FakeEngine]:
        engine.closed = False
        try:
            yield engine
        finally:
            engine.closed = True

    return open_engine

"""The Invoke operation, with Lambda's semantics.

``Invoker.invoke`` resolves the function and qualifier (a version, ``$LATEST``, an alias routed by
its weights, ``name:qualifier`` or an ARN), then:

* ``RequestResponse`` runs the event on a warm worker and answers 200 with the function's result,
  or with its error payload and ``function_error="Unhandled"`` (a function error is not an API
  error: the status stays 200, as on Lambda);
* ``Event`` answers 202 at once and runs the event in the background, retrying a function error
  twice (``event_retry_delays``; Lambda waits 1 and 2 minutes, caravan 1 and 2 seconds by
  default) before dropping it with a log line; throttled events wait for a free slot;
* ``DryRun`` only validates the function and qualifier (204).

Every run is logged in Lambda's format (logs.py), counted per executed version (metrics.py) and
reports the executed version. Error payloads for platform-detected failures follow Lambda:

    timeout       {"errorMessage": "<ISO time> <id> Task timed out after 3.00 seconds",
                   "errorType": "Sandbox.Timedout"}   (worker killed, replaced on next request)
    out of memory {"errorMessage": "RequestId: <id> Error: Runtime exited with error: out of
                   memory (Memory Size: 128 MB)", "errorType": "Runtime.OutOfMemory"}
    worker exit   {"errorMessage": "RequestId: <id> Error: Runtime exited with error: exit
                   status 3", "errorType": "Runtime.ExitError"}
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from caravan.errors import CaravanError
from caravan.platform.functions import routing, rules
from caravan.platform.functions.errors import (
    InvalidParameterValueException,
    InvalidRequestContentException,
    RequestTooLargeException,
    TooManyRequestsException,
)
from caravan.platform.functions.logs import FunctionLogs, InvocationLog, tail
from caravan.platform.functions.metrics import InvocationMetrics
from caravan.platform.functions.process import RawOutcome, WorkerRequest
from caravan.platform.functions.records import (
    LATEST,
    AliasRecord,
    VersionRecord,
    split_function_name,
)
from caravan.platform.functions.registry import FunctionRegistry, RegistryEvent
from caravan.platform.functions.runtime import (
    DEFAULT_CONCURRENCY,
    DEFAULT_KEEP_ALIVE_S,
    WorkerRuntime,
)

MAX_SYNC_PAYLOAD = 6 * 1024 * 1024  # 6 MB request (Invoke's documented limit)
MAX_SYNC_RESPONSE = 6291556  # the figure Lambda's ResponseSizeTooLarge message names
MAX_EVENT_PAYLOAD = 256 * 1024
MAX_CLIENT_CONTEXT = 3583
InvocationType = Literal["RequestResponse", "Event", "DryRun"]
_log = logging.getLogger("caravan.platform.functions")


@dataclass(frozen=True)
class InvokeResult:
    """The Invoke response: status, body and the X-Amz-* headers' values."""

    status_code: int  # 200 RequestResponse, 202 Event, 204 DryRun
    payload: bytes
    function_error: str | None  # X-Amz-Function-Error: "Unhandled" on a function error
    executed_version: str  # X-Amz-Executed-Version
    log_result: str | None  # X-Amz-Log-Result: base64 of the log's last 4 KB, with Tail
    request_id: str
    duration_ms: float


@dataclass(frozen=True)
class _Call:
    record: VersionRecord  # the version that runs
    invoked_arn: str  # qualified the way the caller qualified it
    client_context: Mapping[str, Any] | None


class Invoker:
    """Invoke on the functions of one registry, with its own warm worker runtime."""

    def __init__(
        self,
        registry: FunctionRegistry,
        *,
        runtime: WorkerRuntime | None = None,
        metrics: InvocationMetrics | None = None,
        logs: FunctionLogs | None = None,
        rng: random.Random | None = None,
        concurrency_limit: int = DEFAULT_CONCURRENCY,
        keep_alive: float = DEFAULT_KEEP_ALIVE_S,
        event_retry_delays: tuple[float, ...] = (1.0, 2.0),
    ) -> None:
        self.registry = registry
        self.runtime = runtime or WorkerRuntime(
            scope=registry.scope, concurrency_limit=concurrency_limit, keep_alive=keep_alive
        )
        self.metrics = metrics or InvocationMetrics()
        self.logs = logs or FunctionLogs(Path(registry.root) / "logs")
        self.rng = rng or random.Random()  # noqa: S311 - traffic splitting, not secrets
        self.event_retry_delays = event_retry_delays
        self._events: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        registry.add_listener(self._on_registry_event)

    async def invoke(
        self,
        function_name: str,
        payload: bytes = b"",
        *,
        qualifier: str | None = None,
        invocation_type: InvocationType | str = "RequestResponse",
        log_type: str | None = None,
        client_context: Mapping[str, Any] | str | None = None,
    ) -> InvokeResult:
        """Lambda's Invoke; raises the Lambda API errors (not found, throttled, bad input)."""
        self._loop = asyncio.get_running_loop()
        _check_types(invocation_type, log_type)
        call = self._resolve(function_name, qualifier, _client_context(client_context))
        request_id = str(uuid.uuid4())
        if invocation_type == "DryRun":
            return InvokeResult(204, b"", None, call.record.version, None, request_id, 0.0)
        if invocation_type == "Event":
            _check_payload(payload, MAX_EVENT_PAYLOAD)
            _parse(payload)  # an async event is refused now, not after it was queued
            self._enqueue(call, payload, request_id)
            return InvokeResult(202, b"", None, call.record.version, None, request_id, 0.0)
        _check_payload(payload, MAX_SYNC_PAYLOAD)
        _parse(payload)  # Lambda refuses a body that is not JSON before running anything
        return await self._run(call, payload, request_id, tail_log=log_type == "Tail")

    async def drain(self) -> None:
        """Wait until every queued Event invocation has finished (or was dropped)."""
        while self._events:
            await asyncio.gather(*list(self._events), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel queued events and stop every worker; no worker process survives this."""
        self.registry.remove_listener(self._on_registry_event)
        for task in list(self._events):
            task.cancel()
        await asyncio.gather(*list(self._events), return_exceptions=True)
        await self.runtime.aclose()

    # -------------------------------------------------------------------------------- running

    async def _run(
        self, call: _Call, payload: bytes, request_id: str, *, tail_log: bool = False
    ) -> InvokeResult:
        record = call.record
        request = WorkerRequest(
            request_id=request_id,
            payload=payload,
            invoked_function_arn=call.invoked_arn,
            timeout_s=float(record.timeout),
            client_context=call.client_context,
        )
        try:
            raw = await self.runtime.run(record, request)
        except TooManyRequestsException:
            self.metrics.record_throttle(record.function_name, record.version)
            raise
        if raw.status == "bad_request":
            raise InvalidRequestContentException(
                f"Could not parse request body into json: Could not parse payload into json: "
                f"{raw.detail}"
            )
        body, function_error, closing = _shape(record, raw, request_id)
        log = InvocationLog(
            request_id=request_id,
            version=record.version,
            runtime=record.runtime,
            output=raw.output,
            duration_ms=raw.duration_ms,
            memory_size=record.memory_size,
            max_memory_mb=raw.max_memory_mb,
            init_output=raw.init_output,
            init_ms=raw.init_ms,
            closing_line=closing,
        ).render()
        self.logs.append(record.function_name, log)
        self.metrics.record(
            record.function_name, record.version, raw.duration_ms, error=function_error is not None
        )
        return InvokeResult(
            status_code=200,
            payload=body,
            function_error=function_error,
            executed_version=record.version,
            log_result=tail(log) if tail_log else None,
            request_id=request_id,
            duration_ms=raw.duration_ms,
        )

    def _enqueue(self, call: _Call, payload: bytes, request_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._run_event(call, payload, request_id))
        self._events.add(task)
        task.add_done_callback(self._events.discard)

    async def _run_event(self, call: _Call, payload: bytes, request_id: str) -> None:
        attempt, backoff = 0, 0.01
        while True:
            try:
                record = self.registry.version(call.record.function_name, call.record.version)
                result = await self._run(
                    _Call(record, call.invoked_arn, call.client_context), payload, request_id
                )
            except TooManyRequestsException:
                await asyncio.sleep(backoff)  # Lambda keeps throttled events queued
                backoff = min(backoff * 2, 1.0)
                continue
            except CaravanError as exc:  # deleted meanwhile, worker could not start, ...
                self._drop(call, request_id, attempt + 1, f"{exc.aws_type}: {exc.message}")
                return
            if result.function_error is None:
                return
            if attempt >= len(self.event_retry_delays):
                self._drop(call, request_id, attempt + 1, _error_summary(result.payload))
                return
            await asyncio.sleep(self.event_retry_delays[attempt])
            attempt += 1

    def _drop(self, call: _Call, request_id: str, attempts: int, reason: str) -> None:
        name = call.record.function_name
        line = (
            f"{_timestamp()} {request_id} Event invocation dropped after {attempts} "
            f"attempt(s): {reason}\n"
        )
        self.logs.append(name, line)
        _log.warning("function %s: %s", name, line.strip())

    # ------------------------------------------------------------------------------ resolving

    def _resolve(
        self,
        function_name: str,
        qualifier: str | None,
        client_context: Mapping[str, Any] | None,
    ) -> _Call:
        name, embedded = split_function_name(function_name)
        if qualifier is not None and embedded is not None and qualifier != embedded:
            raise InvalidParameterValueException(
                "The derived qualifier from the function name does not match the specified "
                f"qualifier ({embedded!r} vs {qualifier!r})."
            )
        qualifier = qualifier if qualifier is not None else embedded
        if qualifier is not None and not (qualifier == LATEST or qualifier.isdigit()):
            rules.check_alias_name(qualifier)
        target = self.registry.target(name, qualifier)
        if isinstance(target, AliasRecord):
            target = self.registry.version(name, routing.choose_version(target, self.rng))
        arn = self.registry.scope.function_arn(name, qualifier)
        return _Call(target, arn, client_context)

    def _on_registry_event(self, event: RegistryEvent) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # nothing ever ran: no worker to stop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._apply(event)
        else:  # the registry was changed from another thread
            loop.call_soon_threadsafe(self._apply, event)

    def _apply(self, event: RegistryEvent) -> None:
        if event.kind == "deleted":
            self.runtime.retire(event.function_name)
            self.metrics.forget(event.function_name)
        else:
            self.runtime.retire(event.function_name, latest_only=True)


def _shape(
    record: VersionRecord, raw: RawOutcome, request_id: str
) -> tuple[bytes, str | None, str | None]:
    """(payload, function error, closing log line) for what happened in the worker."""
    if raw.status == "ok":
        if len(raw.payload) > MAX_SYNC_RESPONSE:
            return (
                _error_payload(
                    "Function.ResponseSizeTooLarge",
                    "Response payload size exceeded maximum allowed payload size "
                    f"({MAX_SYNC_RESPONSE} bytes).",
                ),
                "Unhandled",
                None,
            )
        return raw.payload, None, None
    if raw.status == "error":
        return raw.payload, "Unhandled", None
    if raw.status == "timeout":
        line = f"{_timestamp()} {request_id} Task timed out after {record.timeout:.2f} seconds"
        body = json.dumps({"errorMessage": line, "errorType": "Sandbox.Timedout"}).encode()
        return body, "Unhandled", line
    if raw.status == "oom":
        reason = f"out of memory (Memory Size: {record.memory_size} MB)"
        message = f"RequestId: {request_id} Error: Runtime exited with error: {reason}"
        return _error_payload("Runtime.OutOfMemory", message), "Unhandled", message
    if raw.detail == "exit status 0":
        message = f"RequestId: {request_id} Error: Runtime exited without providing a reason"
    else:
        message = f"RequestId: {request_id} Error: Runtime exited with error: {raw.detail}"
    return _error_payload("Runtime.ExitError", message), "Unhandled", message


def _error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


def _error_summary(payload: bytes) -> str:
    try:
        error = json.loads(payload)
        return f"{error.get('errorType', 'Error')}: {error.get('errorMessage', '')}"
    except (ValueError, AttributeError):
        return payload[:200].decode("utf-8", errors="replace")


def _timestamp() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _check_types(invocation_type: str, log_type: str | None) -> None:
    if invocation_type not in ("RequestResponse", "Event", "DryRun"):
        raise InvalidParameterValueException(
            f"1 validation error detected: Value '{invocation_type}' at 'invocationType' failed "
            "to satisfy constraint: Member must satisfy enum value set: "
            "[Event, RequestResponse, DryRun]"
        )
    if log_type not in (None, "None", "Tail"):
        raise InvalidParameterValueException(
            f"1 validation error detected: Value '{log_type}' at 'logType' failed to satisfy "
            "constraint: Member must satisfy enum value set: [None, Tail]"
        )


def _check_payload(payload: bytes, limit: int) -> None:
    if len(payload) > limit:
        raise RequestTooLargeException(
            f"Request must be smaller than {limit} bytes for the InvokeFunction operation "
            f"(this one is {len(payload)} bytes)"
        )


def _parse(payload: bytes) -> None:
    try:
        json.loads(payload or b"{}")
    except (ValueError, RecursionError) as exc:  # a hostile payload may nest without end
        raise InvalidRequestContentException(
            f"Could not parse request body into json: Could not parse payload into json: {exc}"
        ) from None


def _client_context(value: Mapping[str, Any] | str | None) -> Mapping[str, Any] | None:
    """ClientContext as a mapping, or as the API sends it: base64 of a JSON object."""
    if value is None or isinstance(value, Mapping):
        return value
    if len(value) > MAX_CLIENT_CONTEXT:
        raise InvalidParameterValueException(
            f"Client context must be at most {MAX_CLIENT_CONTEXT} bytes (base64)"
        )
    try:
        decoded = json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        decoded = None
    if not isinstance(decoded, dict):
        raise InvalidParameterValueException(
            "Client context must be a valid Base64-encoded JSON object."
        )
    return decoded

"""Functions on the local serverless platform: Lambda's versions, aliases and Invoke.

    registry = FunctionRegistry(data_dir)            # durable control plane (Lambda API shapes)
    registry.create_function("hello", handler="app.handler", code=zip_bytes, publish=True)
    registry.create_alias("hello", "live", "1")
    invoker = Invoker(registry)                       # warm workers, logs, metrics
    result = await invoker.invoke("hello", b'{"name": "x"}', qualifier="live")
    await invoker.aclose()                            # stops and reaps every worker

What a function can reach: each version runs in its own warm worker processes, started as
``python -I -S worker.py`` in the version's extracted (read-only) code directory, so it imports
the standard library and what its zip bundles — not caravan, not the virtualenv's packages, and
not boto3 (a later setting may add such a runtime layer). Its environment is Lambda's (reserved
variables, its own Environment.Variables, a private HOME/TMPDIR) and nothing of caravan's.
Limits: MemorySize + 64 MiB of data (RLIMIT_DATA), Timeout enforced by killing the worker.
The read-only code directory is advisory when caravan runs as root.

Usable without the pipeline engine: nothing here imports caravan.engine, server or store.
"""

from caravan.platform.functions.errors import (
    InvalidParameterValueException,
    InvalidRequestContentException,
    PreconditionFailedException,
    RequestTooLargeException,
    ResourceConflictException,
    ResourceNotFoundException,
    ServiceException,
    TooManyRequestsException,
)
from caravan.platform.functions.invoke import Invoker, InvokeResult
from caravan.platform.functions.logs import FunctionLogs
from caravan.platform.functions.metrics import InvocationMetrics, VersionStats
from caravan.platform.functions.records import (
    LATEST,
    AliasRecord,
    Scope,
    VersionRecord,
    code_sha256,
    split_function_name,
)
from caravan.platform.functions.registry import FunctionRegistry, RegistryEvent
from caravan.platform.functions.runtime import WorkerRuntime

__all__ = [
    "LATEST",
    "AliasRecord",
    "FunctionLogs",
    "FunctionRegistry",
    "InvalidParameterValueException",
    "InvalidRequestContentException",
    "InvocationMetrics",
    "InvokeResult",
    "Invoker",
    "PreconditionFailedException",
    "RegistryEvent",
    "RequestTooLargeException",
    "ResourceConflictException",
    "ResourceNotFoundException",
    "Scope",
    "ServiceException",
    "TooManyRequestsException",
    "VersionRecord",
    "VersionStats",
    "WorkerRuntime",
    "code_sha256",
    "split_function_name",
]

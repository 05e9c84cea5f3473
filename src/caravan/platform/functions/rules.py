"""Lambda's parameter rules: names, runtimes, limits, environment, aliases and weights.

Each check raises ``InvalidParameterValueException`` naming the parameter, the value and the rule,
in the wording Lambda uses ("Value '20000' at 'memorySize' failed to satisfy constraint: ...").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from caravan.platform.functions.errors import InvalidParameterValueException
from caravan.platform.functions.records import LATEST

# Every python3.x runtime runs on the interpreter caravan runs on (see runtime.py).
PYTHON_RUNTIMES = ("python3.9", "python3.10", "python3.11", "python3.12", "python3.13")
MIN_MEMORY_MB, MAX_MEMORY_MB = 128, 10240
MIN_TIMEOUT_S, MAX_TIMEOUT_S = 1, 900
MAX_ZIP_BYTES = 50 * 1024 * 1024  # direct-upload limit of CreateFunction / UpdateFunctionCode
MAX_ENVIRONMENT_BYTES = 4096

_FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ALIAS_NAME = re.compile(r"^(?!^[0-9]+$)([a-zA-Z0-9_-]+)$")
_VERSION = re.compile(r"^(\$LATEST|[0-9]+)$")
_ENV_KEY = re.compile(r"^[a-zA-Z]([a-zA-Z0-9_])+$")
# Lambda refuses to let a function override these (configuration-envvars, "reserved").
RESERVED_ENVIRONMENT = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)


def _constraint(value: object, where: str, rule: str) -> InvalidParameterValueException:
    return InvalidParameterValueException(
        f"1 validation error detected: Value '{value}' at '{where}' failed to satisfy "
        f"constraint: {rule}"
    )


def check_function_name(name: str) -> None:
    if not _FUNCTION_NAME.match(name):
        raise _constraint(name, "functionName", "Member must match pattern [a-zA-Z0-9-_]{1,64}")


def check_handler(handler: str) -> None:
    if not handler or len(handler) > 128 or any(c.isspace() for c in handler):
        raise _constraint(handler, "handler", "Member must match pattern [^\\s]+ (1-128 chars)")


def check_runtime(runtime: str) -> None:
    if runtime not in PYTHON_RUNTIMES:
        raise _constraint(
            runtime,
            "runtime",
            f"Member must satisfy enum value set: [{', '.join(PYTHON_RUNTIMES)}]",
        )


def check_memory_size(memory_size: int) -> None:
    if not MIN_MEMORY_MB <= memory_size <= MAX_MEMORY_MB:
        raise _constraint(
            memory_size,
            "memorySize",
            f"Member must have value between {MIN_MEMORY_MB} and {MAX_MEMORY_MB} (MB)",
        )


def check_timeout(timeout: int) -> None:
    if not MIN_TIMEOUT_S <= timeout <= MAX_TIMEOUT_S:
        raise _constraint(
            timeout,
            "timeout",
            f"Member must have value between {MIN_TIMEOUT_S} and {MAX_TIMEOUT_S} (seconds)",
        )


def check_description(description: str) -> None:
    if len(description) > 256:
        raise _constraint(description[:40] + "...", "description", "Member must have length <= 256")


def check_code(code: bytes) -> None:
    if not code:
        raise InvalidParameterValueException("ZipFile: the deployment package is empty")
    if len(code) > MAX_ZIP_BYTES:
        raise InvalidParameterValueException(
            f"ZipFile: the deployment package is {len(code)} bytes; the limit for a direct "
            f"upload is {MAX_ZIP_BYTES} bytes"
        )


def check_environment(variables: Mapping[str, str]) -> None:
    bad = [k for k in variables if not isinstance(k, str) or not _ENV_KEY.match(k)]
    if bad:
        raise _constraint(
            bad[0], "environment.variables", "Member must match pattern [a-zA-Z]([a-zA-Z0-9_])+"
        )
    non_strings = [k for k, v in variables.items() if not isinstance(v, str)]
    if non_strings:
        raise InvalidParameterValueException(
            f"Environment.Variables: the value of {non_strings[0]!r} must be a string"
        )
    reserved = sorted(set(variables) & RESERVED_ENVIRONMENT)
    if reserved:
        raise InvalidParameterValueException(
            "Lambda was unable to configure your environment variables because the environment "
            "variables you have provided contains reserved keys that are currently not "
            f"supported for modification. Reserved keys used in this request: {','.join(reserved)}"
        )
    size = sum(len(k.encode()) + len(v.encode()) for k, v in variables.items())
    if size > MAX_ENVIRONMENT_BYTES:
        raise InvalidParameterValueException(
            f"Lambda was unable to configure your environment variables because the environment "
            f"variables you have provided exceeded the 4KB limit. String measured: {size} bytes"
        )


def check_alias_name(name: str) -> None:
    if not 1 <= len(name) <= 128 or not _ALIAS_NAME.match(name):
        raise _constraint(
            name, "name", "Member must match pattern (?!^[0-9]+$)([a-zA-Z0-9-_]+) (1-128 chars)"
        )


def check_version(version: str, where: str = "functionVersion") -> None:
    if not _VERSION.match(version):
        raise _constraint(version, where, "Member must match pattern (\\$LATEST|[0-9]+)")


def check_weights(primary: str, weights: Mapping[str, float]) -> None:
    """AdditionalVersionWeights: one published version other than the primary, weight 0..1."""
    if len(weights) > 1:
        raise InvalidParameterValueException(
            "RoutingConfig.AdditionalVersionWeights: an alias routes to at most two versions; "
            f"got {len(weights)} additional versions ({', '.join(sorted(weights))})"
        )
    for version, weight in weights.items():
        if not re.fullmatch(r"[0-9]+", str(version)):
            raise _constraint(
                version,
                "routingConfig.additionalVersionWeights",
                "Map keys must match pattern [0-9]+ (a published version)",
            )
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise _constraint(
                weight, "routingConfig.additionalVersionWeights", "Map value must be a number"
            )
        if not 0.0 <= float(weight) <= 1.0:
            raise _constraint(
                weight,
                "routingConfig.additionalVersionWeights",
                "Map value must be between 0.0 and 1.0",
            )
        if version == primary:
            raise InvalidParameterValueException(
                f"RoutingConfig.AdditionalVersionWeights: version {version} is already the "
                "alias's FunctionVersion; the additional version must be a different one"
            )
    if weights and primary == LATEST:
        raise InvalidParameterValueException(
            "RoutingConfig: an alias with an additional version must point at a published "
            "version, not $LATEST"
        )


def routing_weights(routing_config: Mapping[str, Any] | None) -> dict[str, float]:
    """RoutingConfig ``{"AdditionalVersionWeights": {"2": 0.1}}`` -> ``{"2": 0.1}``."""
    if not routing_config:
        return {}
    unknown = set(routing_config) - {"AdditionalVersionWeights"}
    if unknown:
        raise InvalidParameterValueException(
            f"RoutingConfig: unknown field(s) {', '.join(sorted(unknown))}; "
            "expected AdditionalVersionWeights"
        )
    weights = routing_config.get("AdditionalVersionWeights") or {}
    if not isinstance(weights, Mapping):
        raise InvalidParameterValueException(
            "RoutingConfig.AdditionalVersionWeights must be a map of version to weight"
        )
    check_weights("", weights)  # shape and ranges; the primary version is checked later
    return {str(k): float(v) for k, v in weights.items()}


def _check_role(role: str) -> None:
    if not role:
        raise _constraint(role, "role", "Member must have length >= 1")


_SETTING_CHECKS: dict[str, Callable[[Any], None]] = {
    "handler": check_handler,
    "runtime": check_runtime,
    "memory_size": check_memory_size,
    "timeout": check_timeout,
    "environment": check_environment,
    "description": check_description,
    "role": _check_role,
}


def check_settings(settings: Mapping[str, Any]) -> None:
    """Check every function setting given (handler, runtime, memory_size, ...)."""
    for key, value in settings.items():
        _SETTING_CHECKS[key](value)

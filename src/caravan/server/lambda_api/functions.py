"""The function and version operations of the Lambda API, over the platform's registry.

CreateFunction, GetFunction, GetFunctionConfiguration, UpdateFunctionCode,
UpdateFunctionConfiguration, PublishVersion, ListVersionsByFunction, ListFunctions and
DeleteFunction. The registry applies Lambda's rules and answers Lambda's shapes; this module reads
the wire (members, query, status codes) and decides what the local platform cannot honour:
settings that only change how AWS hosts a function (VPC, tracing, tags, KMS, ...) are accepted and
ignored, while settings whose absence would change what the code sees (layers, file systems,
container images) are refused by name rather than silently dropped.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from caravan.platform.functions import (
    LATEST,
    InvalidParameterValueException,
    ResourceNotFoundException,
    split_function_name,
)
from caravan.server.lambda_api import paging
from caravan.server.lambda_api.code import load_code
from caravan.server.lambda_api.requests import MAX_CODE_BODY, Call, Fields, json_reply

ARCHITECTURES = ("x86_64", "arm64")  # Python code runs the same on either
_REFUSED = {
    "Layers": "layers are not supported on the local platform; bundle their packages in the zip",
    "FileSystemConfigs": "file systems (EFS) are not supported on the local platform",
    "ImageConfig": "container images are not supported on the local platform; use a zip",
}


async def create_function(call: Call) -> Response:
    body = await call.fields("CreateFunction", MAX_CODE_BODY)
    _refuse_unsupported(body)
    name = body.required_string("FunctionName")
    settings = _settings(body, create=True)
    code = await load_code(call, body.required_struct("Code"))
    publish = bool(body.boolean("Publish"))
    config = await call.run(
        call.registry.create_function, name, code=code, publish=publish, **settings
    )
    return json_reply(config, 201)


async def get_function(call: Call) -> Response:
    name, qualifier = call.params["FunctionName"], call.qualifier()
    return json_reply(await call.run(call.registry.get_function, name, qualifier))


async def get_function_configuration(call: Call) -> Response:
    name, qualifier = call.params["FunctionName"], call.qualifier()
    return json_reply(await call.run(call.registry.get_function_configuration, name, qualifier))


async def update_function_code(call: Call) -> Response:
    body = await call.fields("UpdateFunctionCode", MAX_CODE_BODY)
    _check_architectures(body)
    name = call.params["FunctionName"]
    code = await load_code(call, body)
    revision_id = body.string("RevisionId")
    if body.boolean("DryRun"):
        # Validated, nothing changed: the answer is the function as it stands.
        return json_reply(await call.run(call.registry.get_function_configuration, name))
    config = await call.run(
        call.registry.update_function_code,
        name,
        code,
        publish=bool(body.boolean("Publish")),
        revision_id=revision_id,
    )
    return json_reply(config)


async def update_function_configuration(call: Call) -> Response:
    body = await call.fields("UpdateFunctionConfiguration")
    _refuse_unsupported(body)
    settings = _settings(body, create=False)
    config = await call.run(
        call.registry.update_function_configuration,
        call.params["FunctionName"],
        revision_id=body.string("RevisionId"),
        **settings,
    )
    return json_reply(config)


async def publish_version(call: Call) -> Response:
    body = await call.fields("PublishVersion")
    config = await call.run(
        call.registry.publish_version,
        call.params["FunctionName"],
        code_sha256=body.string("CodeSha256"),
        revision_id=body.string("RevisionId"),
        description=body.string("Description"),
    )
    return json_reply(config, 201)


async def list_versions_by_function(call: Call) -> Response:
    versions = await call.run(call.registry.list_versions_by_function, call.params["FunctionName"])
    chosen, marker = paging.page(
        versions, lambda v: (paging.version_order(v["Version"]),), call.query
    )
    return json_reply(paging.listing("Versions", chosen, marker))


async def list_functions(call: Call) -> Response:
    which = call.query.get("FunctionVersion")
    if which not in (None, "ALL"):
        raise InvalidParameterValueException(
            f"1 validation error detected: Value '{which[:40]}' at 'functionVersion' failed to "
            "satisfy constraint: Member must satisfy enum value set: [ALL]"
        )
    functions = await call.run(_all_functions, call, every_version=which == "ALL")
    chosen, marker = paging.page(
        functions,
        lambda f: (f["FunctionName"], paging.version_order(f["Version"])),
        call.query,
    )
    return json_reply(paging.listing("Functions", chosen, marker))


async def delete_function(call: Call) -> Response:
    name, qualifier = call.params["FunctionName"], call.qualifier()
    embedded = split_function_name(name)[1]
    if qualifier is not None or embedded is not None:
        await call.run(call.registry.get_function_configuration, name, qualifier)  # 404 first
        _refuse_version_delete(qualifier or embedded or "")
    await call.run(call.registry.delete_function, name)
    return Response(status_code=204)


# ------------------------------------------------------------------------------------ helpers


def _settings(body: Fields, *, create: bool) -> dict[str, Any]:
    """The registry's keyword arguments for the configuration members present in ``body``."""
    _check_architectures(body)
    if create:
        handler: str | None = body.required_string("Handler")
        runtime: str | None = body.required_string("Runtime")
    else:
        handler, runtime = body.string("Handler"), body.string("Runtime")
    given: dict[str, Any] = {
        "handler": handler,
        "runtime": runtime,
        "memory_size": body.integer("MemorySize"),
        "timeout": body.integer("Timeout"),
        "environment": _environment(body),
        "description": body.string("Description"),
        "role": body.string("Role"),
    }
    return {key: value for key, value in given.items() if value is not None}


def _environment(body: Fields) -> dict[str, str] | None:
    environment = body.struct("Environment")
    if environment is None:
        return None
    return environment.string_map("Variables") or {}  # {} clears the variables, as on Lambda


def _refuse_unsupported(body: Fields) -> None:
    for name, why in _REFUSED.items():
        if body.raw(name) not in (None, [], {}):
            raise InvalidParameterValueException(f"{name}: {why}")
    package_type = body.string("PackageType")
    if package_type not in (None, "Zip"):
        raise InvalidParameterValueException(
            f"PackageType {package_type[:40]!r}: only Zip packages run on the local platform"
        )


def _check_architectures(body: Fields) -> None:
    architectures = body.string_list("Architectures")
    if architectures is None:
        return
    if len(architectures) != 1 or architectures[0] not in ARCHITECTURES:
        raise InvalidParameterValueException(
            f"Architectures {architectures[:3]!r}: give exactly one of {', '.join(ARCHITECTURES)}"
        )


def _refuse_version_delete(qualifier: str) -> None:
    if qualifier == LATEST:
        raise InvalidParameterValueException(
            "$LATEST version cannot be deleted without deleting the function."
        )
    if not qualifier.isdigit():
        raise InvalidParameterValueException(
            f"Qualifier {qualifier!r} names an alias: DeleteFunction deletes a function or a "
            "version; use DeleteAlias to delete an alias"
        )
    raise InvalidParameterValueException(
        f"Deleting one version ({qualifier}) is not supported by the local platform yet; versions "
        "are immutable and kept until the function is deleted (DeleteFunction without Qualifier)"
    )


def _all_functions(call: Call, *, every_version: bool) -> list[dict[str, Any]]:
    latest = call.registry.list_functions()
    if not every_version:
        return latest
    found: list[dict[str, Any]] = []
    for function in latest:
        try:
            found.extend(call.registry.list_versions_by_function(function["FunctionName"]))
        except ResourceNotFoundException:
            continue  # deleted while we were listing
    return found

"""Action types: ListActionTypes, CreateCustomActionType, DeleteCustomActionType, GetActionType,
UpdateActionType.

The installed providers (``core.registry``) are listed as they are; the types users create are
documents of kind "action-type" named ``Owner/Category/Provider/Version``:
{"actionType": <ActionType shape>, "tags": [...], "deleted": bool, "executor"?, "description"?}.
A deleted custom type stays as a tombstone, because AWS refuses to create a deleted type's
version again. Jobs of Custom types without a provider wait for PollForJobs (the registry does
that by itself); ThirdParty types declared with UpdateActionType and a JobWorker executor are
registered so that their jobs wait for PollForThirdPartyJobs.
"""

from __future__ import annotations

import re
from typing import Any

from caravan.actions.base import ActionTypeKey
from caravan.actions.registry import ProviderKind
from caravan.engine.core import EngineCore
from caravan.engine.fields import obj
from caravan.engine.ops_tags import LimitExceededError, valid_tags
from caravan.engine.paging import page
from caravan.errors import ActionTypeNotFoundError, ConflictError, InvalidInputError
from caravan.model.statuses import ActionCategory, ActionOwner
from caravan.store import Tx

MAX_CUSTOM_ACTION_TYPES = 50
_PROVIDER = re.compile(r"[0-9A-Za-z_-]{1,35}\Z")
_VERSION = re.compile(r"[0-9A-Za-z_-]{1,9}\Z")


class ActionTypeAlreadyExistsError(ConflictError):
    reference = "action-type-exists"
    aws_type = "ActionTypeAlreadyExistsException"


class RequestFailedError(ConflictError):
    reference = "request-failed"
    aws_type = "RequestFailedException"


_Counts = tuple[tuple[int, int], tuple[int, int]]  # (inputs min, max), (outputs min, max)
_Property = tuple[str, bool, bool, bool]  # name, required, key, secret
_SOURCE: _Counts = ((0, 0), (1, 1))
_ANY: _Counts = ((0, 5), (0, 5))
# What ListActionTypes/GetActionType say of the built-in providers.
_BUILTIN: dict[str, tuple[_Counts, tuple[_Property, ...]]] = {
    "Git": (_SOURCE, (("Repository", True, True, False), ("Branch", False, False, False))),
    "GitHub": (
        _SOURCE,
        (
            ("Owner", True, True, False),
            ("Repo", True, True, False),
            ("Branch", True, True, False),
            ("OAuthToken", True, False, True),
            ("PollForSourceChanges", False, False, False),
        ),
    ),
    "CodeStarSourceConnection": (
        _SOURCE,
        (
            ("ConnectionArn", True, False, False),
            ("FullRepositoryId", True, True, False),
            ("BranchName", True, True, False),
            ("OutputArtifactFormat", False, False, False),
            ("DetectChanges", False, False, False),
        ),
    ),
    "CodeCommit": (
        _SOURCE,
        (
            ("RepositoryName", True, True, False),
            ("BranchName", True, True, False),
            ("PollForSourceChanges", False, False, False),
            ("OutputArtifactFormat", False, False, False),
        ),
    ),
    "CodeBuild": (
        ((1, 5), (0, 5)),
        (
            ("ProjectName", True, True, False),
            ("PrimarySource", False, False, False),
            ("EnvironmentVariables", False, False, False),
            ("BatchEnabled", False, False, False),
        ),
    ),
    "Commands": (((1, 5), (0, 1)), ()),
    "Lambda": (
        _ANY,
        (("FunctionName", True, True, False), ("UserParameters", False, False, False)),
    ),
    "Manual": (
        ((0, 0), (0, 0)),
        (
            ("NotificationArn", False, False, False),
            ("CustomData", False, False, False),
            ("ExternalEntityLink", False, False, False),
        ),
    ),
}
_URL_KEYS = (
    "thirdPartyConfigurationUrl",
    "entityUrlTemplate",
    "executionUrlTemplate",
    "revisionUrlTemplate",
)


def type_name(type_id: dict[str, str]) -> str:
    """The document name of an action type: ``Owner/Category/Provider/Version``."""
    return "/".join(type_id[k] for k in ("owner", "category", "provider", "version"))


def parse_type_id(body: dict[str, Any], where: str = "") -> dict[str, str]:
    """The ActionTypeId in ``body`` (category, owner, provider, version), checked against the
    model's enums and patterns; ``where`` prefixes the field names in messages."""
    category, owner = body.get("category"), body.get("owner")
    if category not in {c.value for c in ActionCategory}:
        raise InvalidInputError(
            f"{where}category {category!r} must be one of "
            + ", ".join(c.value for c in ActionCategory)
        )
    if owner not in {o.value for o in ActionOwner}:
        raise InvalidInputError(f"{where}owner {owner!r} must be AWS, ThirdParty or Custom")
    provider, version = body.get("provider"), body.get("version")
    if not isinstance(provider, str) or not _PROVIDER.match(provider):
        raise InvalidInputError(f"{where}provider {provider!r}: 1-35 of A-Z a-z 0-9 _ -")
    if not isinstance(version, str) or not _VERSION.match(version):
        raise InvalidInputError(f"{where}version {version!r}: 1-9 of A-Z a-z 0-9 _ -")
    return {"category": category, "owner": owner, "provider": provider, "version": version}


def _is_builtin(core: EngineCore, type_id: dict[str, str]) -> bool:
    entry = core.registry.lookup(ActionTypeKey(**type_id))
    return entry is not None and entry.kind is not ProviderKind.JOB_WORKER


def _builtin_type(key: ActionTypeKey) -> dict[str, Any]:
    (inputs, outputs), properties = _BUILTIN.get(key.provider, (_ANY, ()))
    return {
        "id": key.to_dict(),
        "actionConfigurationProperties": [
            {"name": n, "required": r, "key": k, "secret": s} for n, r, k, s in properties
        ],
        "inputArtifactDetails": {"minimumCount": inputs[0], "maximumCount": inputs[1]},
        "outputArtifactDetails": {"minimumCount": outputs[0], "maximumCount": outputs[1]},
    }


def _stored_types(tx: Tx) -> dict[str, dict[str, Any]]:
    docs = tx.pipelines.list_documents("action-type")
    return {type_name(d["actionType"]["id"]): d for d in docs if not d.get("deleted")}


def _artifact_details(body: dict[str, Any], key: str, limit: int = 5) -> dict[str, int]:
    details = obj(body, key)
    low, high = details.get("minimumCount"), details.get("maximumCount")
    if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high <= limit):
        raise InvalidInputError(
            f"{key} needs minimumCount <= maximumCount, both from 0 to {limit} (got {details})"
        )
    return {"minimumCount": low, "maximumCount": high}


def _configuration_properties(value: object) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 10:
        raise InvalidInputError("configurationProperties must be a list of at most 10 properties")
    props: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        where = f"configurationProperties[{i}]"
        if not isinstance(item, dict):
            raise InvalidInputError(f"{where} must be an object")
        name = item.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 50:
            raise InvalidInputError(f"{where}.name must be 1 to 50 characters")
        prop: dict[str, Any] = {"name": name}
        flags = ("required", "key", "secret", *(("queryable",) if "queryable" in item else ()))
        for flag in flags:
            if not isinstance(item.get(flag), bool):
                raise InvalidInputError(f"{where}.{flag} must be true or false")
            prop[flag] = item[flag]
        description = item.get("description")
        if description is not None:
            if not isinstance(description, str) or not 1 <= len(description) <= 160:
                raise InvalidInputError(f"{where}.description must be 1 to 160 characters")
            prop["description"] = description
        if "type" in item:
            if item["type"] not in ("String", "Number", "Boolean"):
                raise InvalidInputError(f"{where}.type must be String, Number or Boolean")
            prop["type"] = item["type"]
        if prop.get("queryable") and (not prop["required"] or prop["secret"]):
            raise InvalidInputError(
                f"{where}: a queryable property must be required and not secret"
            )
        props.append(prop)
    names = [p["name"] for p in props]
    if len(set(names)) != len(names):
        raise InvalidInputError("configurationProperties: property names must be unique")
    if sum(1 for p in props if p.get("queryable")) > 1:
        raise InvalidInputError("configurationProperties: at most one property may be queryable")
    return props


def _settings(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or set(value) - set(_URL_KEYS):
        raise InvalidInputError(f"settings may hold only {', '.join(_URL_KEYS)}")
    for key, url in value.items():
        if not isinstance(url, str) or not 1 <= len(url) <= 2048:
            raise InvalidInputError(f"settings.{key} must be 1 to 2048 characters")
    return dict(value)


def _to_declaration(doc: dict[str, Any]) -> dict[str, Any]:
    """An ActionType (and what is stored beside it) as GetActionType's ActionTypeDeclaration."""
    action_type = doc["actionType"]
    settings = action_type.get("settings") or {}
    urls = {("configurationUrl" if k == _URL_KEYS[0] else k): v for k, v in settings.items()}
    properties = []
    for prop in action_type.get("actionConfigurationProperties", []):
        item = {
            "name": prop["name"],
            "optional": not prop["required"],
            "key": prop["key"],
            "noEcho": prop["secret"],
        }
        item.update({k: prop[k] for k in ("queryable", "description") if k in prop})
        properties.append(item)
    declaration: dict[str, Any] = {
        "id": action_type["id"],
        "executor": doc.get("executor")
        or {"type": "JobWorker", "configuration": {"jobWorkerExecutorConfiguration": {}}},
        "inputArtifactDetails": action_type["inputArtifactDetails"],
        "outputArtifactDetails": action_type["outputArtifactDetails"],
        "properties": properties,
    }
    if urls:
        declaration["urls"] = urls
    if doc.get("description"):
        declaration["description"] = doc["description"]
    return declaration


def _from_declaration(decl: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """UpdateActionType's ActionTypeDeclaration as a stored ActionType, and its executor."""
    type_id = parse_type_id(obj(decl, "id"), "actionType.id.")
    executor = obj(decl, "executor")
    if executor.get("type") not in ("JobWorker", "Lambda"):
        raise InvalidInputError("actionType.executor.type must be JobWorker or Lambda")
    props = []
    for item in decl.get("properties") or []:
        if not isinstance(item, dict):
            raise InvalidInputError("actionType.properties must be a list of objects")
        props.append(
            {
                "name": item.get("name"),
                "required": not item.get("optional", False),
                "key": bool(item.get("key", False)),
                "secret": bool(item.get("noEcho", False)),
                **({"queryable": item["queryable"]} if "queryable" in item else {}),
                **(
                    {"description": str(item["description"])[:160]}
                    if item.get("description")
                    else {}
                ),
            }
        )
    urls = obj(decl, "urls", required=False)
    settings = {(_URL_KEYS[0] if k == "configurationUrl" else k): v for k, v in urls.items()}
    action_type = {
        "id": type_id,
        **({"settings": _settings(settings)} if settings else {}),
        "actionConfigurationProperties": _configuration_properties(props),
        "inputArtifactDetails": _artifact_details(decl, "inputArtifactDetails", 10),
        "outputArtifactDetails": _artifact_details(decl, "outputArtifactDetails", 10),
    }
    return action_type, executor


def register_worker(core: EngineCore, type_id: dict[str, str]) -> None:
    """Jobs of a ThirdParty job-worker type wait for PollForThirdPartyJobs instead of failing
    for want of a provider (the registry serves unknown Custom types that way by itself)."""
    key = ActionTypeKey(**type_id)
    if core.registry.lookup(key) is None:
        core.registry.add(
            key.category, key.owner, key.provider, key.version, kind=ProviderKind.JOB_WORKER
        )


def register_declared_workers(core: EngineCore) -> None:
    """Register every declared ThirdParty job-worker type; meant to run as an engine opens,
    before recovery dispatches jobs (the registry itself only remembers built-ins)."""
    with core.read() as tx:
        declared = _stored_types(tx)
    for doc in declared.values():
        type_id = doc["actionType"]["id"]
        if type_id["owner"] == "ThirdParty" and (doc.get("executor") or {}).get("type") == (
            "JobWorker"
        ):
            register_worker(core, type_id)


async def list_action_types(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    owner = request.get("actionOwnerFilter")
    if owner is not None and owner not in {o.value for o in ActionOwner}:
        raise InvalidInputError("actionOwnerFilter must be AWS, ThirdParty or Custom")
    with core.read() as tx:
        types = {name: doc["actionType"] for name, doc in _stored_types(tx).items()}
    for key in core.registry.action_types():
        types.setdefault(type_name(key.to_dict()), _builtin_type(key))
    items = [t for _, t in sorted(types.items()) if owner in (None, t["id"]["owner"])]
    chunk, token = page(items, request, default_size=1000)
    return {"actionTypes": chunk, **({"nextToken": token} if token else {})}


async def create_custom_action_type(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    type_id = parse_type_id({**request, "owner": "Custom"})
    name = type_name(type_id)
    action_type: dict[str, Any] = {"id": type_id}
    if settings := _settings(request.get("settings")):
        action_type["settings"] = settings
    action_type["actionConfigurationProperties"] = _configuration_properties(
        request.get("configurationProperties")
    )
    for key in ("inputArtifactDetails", "outputArtifactDetails"):
        action_type[key] = _artifact_details(request, key)
    tags = valid_tags(request.get("tags") or [])
    if _is_builtin(core, type_id):
        raise ActionTypeAlreadyExistsError(f"{name} is one of caravan's built-in action types")
    async with core.mutate("action-types") as (tx, _ch):
        existing = tx.pipelines.get_document("action-type", name)
        if existing is not None and existing.get("deleted"):
            raise InvalidInputError(
                f"custom action type {name} was deleted, and a deleted type's version cannot "
                "be used again: create it with a new version"
            )
        if existing is not None:
            if existing["actionType"] != action_type:
                raise ActionTypeAlreadyExistsError(
                    f"custom action type {name} already exists with a different definition"
                )
            return {"actionType": existing["actionType"], "tags": existing.get("tags") or []}
        custom = [n for n in _stored_types(tx) if n.startswith("Custom/")]
        if len(custom) >= MAX_CUSTOM_ACTION_TYPES:
            raise LimitExceededError(
                f"there are already {len(custom)} custom action types (at most "
                f"{MAX_CUSTOM_ACTION_TYPES}); delete one first"
            )
        doc = {"actionType": action_type, "tags": tags, "deleted": False}
        tx.pipelines.put_document("action-type", name, doc, core.clock())
    return {"actionType": action_type, "tags": tags}


async def delete_custom_action_type(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    name = type_name(parse_type_id({**request, "owner": "Custom"}))
    async with core.mutate("action-types") as (tx, _ch):
        doc = tx.pipelines.get_document("action-type", name)
        if doc is None or doc.get("deleted"):
            raise InvalidInputError(f"there is no custom action type {name} to delete")
        doc["deleted"] = True
        tx.pipelines.put_document("action-type", name, doc, core.clock())
    return {}


async def get_action_type(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    type_id = parse_type_id(request)
    name = type_name(type_id)
    with core.read() as tx:
        doc = tx.pipelines.get_document("action-type", name)
    if doc is not None and not doc.get("deleted"):
        return {"actionType": _to_declaration(doc)}
    if _is_builtin(core, type_id):
        builtin = {
            "actionType": _builtin_type(ActionTypeKey(**type_id)),
            "description": f"caravan's built-in {type_id['provider']} action provider",
        }
        return {"actionType": _to_declaration(builtin)}
    raise ActionTypeNotFoundError(
        f"there is no action type {name}; ListActionTypes lists the ones this server knows"
    )


async def update_action_type(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    """Replace a stored action type's declaration. caravan extension: declaring a ThirdParty
    type that does not exist yet registers it (there is no public CreateActionType on AWS);
    with a JobWorker executor its jobs are served by PollForThirdPartyJobs."""
    decl = obj(request, "actionType")
    action_type, executor = _from_declaration(decl)
    type_id = action_type["id"]
    name = type_name(type_id)
    description = decl.get("description")
    async with core.mutate("action-types") as (tx, _ch):
        doc = tx.pipelines.get_document("action-type", name)
        if doc is None or doc.get("deleted"):
            if _is_builtin(core, type_id):
                raise RequestFailedError(f"{name} is built into caravan and cannot be updated")
            if type_id["owner"] != "ThirdParty":
                raise ActionTypeNotFoundError(f"there is no action type {name} to update")
            doc = {"tags": [], "deleted": False}
        doc.update(actionType=action_type, executor=executor)
        if isinstance(description, str) and description:
            doc["description"] = description[:1024]
        tx.pipelines.put_document("action-type", name, doc, core.clock())
    if type_id["owner"] == "ThirdParty" and executor["type"] == "JobWorker":
        register_worker(core, type_id)
    return {}

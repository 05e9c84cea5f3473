"""The rest of CodePipeline's API: tags, action types, V1 webhooks, the third-party job plane,
PutActionRevision, RollbackStage, and the condition, rule and deploy-target operations (answered
honestly: caravan does not evaluate stage conditions yet).

What these operations keep lives in the store's documents table, by kind and name:

    "tags"         pipeline name         {"created": <the pipeline's created>, "tags": [...]}
    "action-type"  Owner/Cat/Prov/Ver    {"actionType": ActionType, "tags", "deleted",
                                          "executor"?, "description"?}
    "webhook"      webhook name          the WebhookDefinition's keys, plus "url", "arn",
                                          "tags" and, once delivered, "lastTriggered"
    "rollback"     execution id          {"rollbackTargetPipelineExecutionId": ...}

A pipeline's tags start as the ones CreatePipeline stored in its first version; the "tags"
document takes over at the first TagResource/UntagResource (and is ignored if the pipeline was
deleted and created again since). A deleted custom action type stays as a tombstone, because AWS
refuses to create a deleted type's version again.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import uuid
from dataclasses import dataclass, replace
from typing import Any

from caravan.actions.base import ActionTypeKey
from caravan.actions.registry import ProviderKind
from caravan.engine import ops_jobs, views
from caravan.engine.core import EngineCore
from caravan.engine.declarations import PipelineDoc
from caravan.engine.ops_executions import start_execution
from caravan.engine.paging import page
from caravan.errors import (
    ActionNotFoundError,
    ActionTypeNotFoundError,
    ConflictError,
    InvalidInputError,
    JobNotFoundError,
    NotFoundError,
    PipelineExecutionNotFoundError,
    StageNotFoundError,
)
from caravan.model import flow
from caravan.model.records import ExecutionRecord, JobRecord
from caravan.model.statuses import (
    ActionCategory,
    ActionOwner,
    ExecutionMode,
    JobStatus,
    StageExecutionStatus,
    TriggerType,
)
from caravan.store import Tx


# Errors (AWS exception shapes this module raises beyond caravan.errors) ---------------------
class InvalidArnError(InvalidInputError):
    reference = "invalid-arn"
    aws_type = "InvalidArnException"


class InvalidTagsError(InvalidInputError):
    reference = "invalid-tags"
    aws_type = "InvalidTagsException"


class TooManyTagsError(InvalidInputError):
    reference = "too-many-tags"
    aws_type = "TooManyTagsException"


class LimitExceededError(ConflictError):
    reference = "limit-exceeded"
    aws_type = "LimitExceededException"


class ActionTypeAlreadyExistsError(ConflictError):
    reference = "action-type-exists"
    aws_type = "ActionTypeAlreadyExistsException"


class RequestFailedError(ConflictError):
    reference = "request-failed"
    aws_type = "RequestFailedException"


class WebhookNotFoundError(NotFoundError):
    reference = "webhook-not-found"
    aws_type = "WebhookNotFoundException"


class InvalidWebhookFilterPatternError(InvalidInputError):
    reference = "invalid-webhook-filter"
    aws_type = "InvalidWebhookFilterPatternException"


class InvalidWebhookAuthenticationError(InvalidInputError):
    reference = "invalid-webhook-authentication"
    aws_type = "InvalidWebhookAuthenticationParametersException"


class UnableToRollbackStageError(ConflictError):
    reference = "unable-to-roll-back"
    aws_type = "UnableToRollbackStageException"


class ConditionNotOverridableError(ConflictError):
    reference = "condition-not-overridable"
    aws_type = "ConditionNotOverridableException"


class ActionExecutionNotFoundError(NotFoundError):
    reference = "action-execution-not-found"
    aws_type = "ActionExecutionNotFoundException"


class InvalidClientTokenError(ConflictError):
    reference = "invalid-client-token"
    aws_type = "InvalidClientTokenException"


class InvalidJobError(InvalidInputError):
    reference = "invalid-job"
    aws_type = "InvalidJobException"


MAX_TAGS = 50
MAX_CUSTOM_ACTION_TYPES = 50
MAX_WEBHOOKS = 300
_NAME = re.compile(r"[A-Za-z0-9.@\-_]{1,100}\Z")
_NAME_RULE = "1 to 100 of A-Z a-z 0-9 . @ - _"
_PROVIDER = re.compile(r"[0-9A-Za-z_-]{1,35}\Z")
_VERSION = re.compile(r"[0-9A-Za-z_-]{1,9}\Z")
_ARN = re.compile(r"arn:aws(-[\w]+)*:codepipeline:([^:]+):([0-9]{12}):(.+)\Z")


def _text(body: dict[str, Any], key: str, name_rule: bool = False) -> str:
    """A required string; ``name_rule``: a CodePipeline name (pipelines, stages, webhooks)."""
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{key!r} is required (a non-empty string)")
    if name_rule and not _NAME.match(value):
        raise InvalidInputError(f"{key} {value!r} must be {_NAME_RULE}")
    return value


def _object(body: dict[str, Any], key: str, *, required: bool = True) -> dict[str, Any]:
    value = body.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise InvalidInputError(f"{key!r} is required (an object)")
    return value


def _paged(
    key: str, items: list[Any], request: dict[str, Any], *, capitalised: bool = False
) -> dict[str, Any]:
    """One page of ``items``; ListWebhooks spells its token ``NextToken``."""
    chunk, token = page(items, request, default_size=100, max_size=100)
    return {key: chunk, **({"NextToken" if capitalised else "nextToken": token} if token else {})}


# Tags ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Resource:
    kind: str  # "pipeline", "webhook" or "action-type" (the document kind)
    name: str
    arn: str

    @property
    def lock(self) -> str:
        return self.name if self.kind == "pipeline" else f"{self.kind}s"


def _resource(core: EngineCore, arn: object) -> _Resource:
    if not isinstance(arn, str) or not (match := _ARN.match(arn)):
        raise InvalidArnError(
            f"resourceArn {arn!r} is not a CodePipeline ARN "
            "(arn:aws:codepipeline:<region>:<account>:<resource>)"
        )
    region, account, rest = match.group(2), match.group(3), match.group(4)
    if (region, account) != (core.settings.region, core.settings.account_id):
        raise NotFoundError(
            f"{arn} is not a resource of this server (its resources are "
            f"arn:aws:codepipeline:{core.settings.region}:{core.settings.account_id}:...)"
        )
    kind, _, name = rest.partition(":")
    if kind == "webhook" and name:
        return _Resource("webhook", name, arn)
    if kind == "actiontype" and name:
        return _Resource("action-type", name, arn)
    if ":" in rest:
        raise InvalidArnError(f"resourceArn {arn!r} names no pipeline, webhook or action type")
    return _Resource("pipeline", rest, arn)


def _valid_tags(value: object, where: str = "tags") -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise InvalidTagsError(f"{where} must be a list of {{key, value}} objects")
    tags: dict[str, str] = {}
    for i, item in enumerate(value):
        key = item.get("key") if isinstance(item, dict) else None
        text = item.get("value", "") if isinstance(item, dict) else None
        if not isinstance(key, str) or not 1 <= len(key) <= 128:
            raise InvalidTagsError(f"{where}[{i}].key must be 1 to 128 characters")
        _check_tag_key(key, f"{where}[{i}].key")
        if not isinstance(text, str) or len(text) > 256:
            raise InvalidTagsError(f"{where}[{i}].value must be at most 256 characters")
        if key in tags:
            raise InvalidTagsError(f"{where}[{i}].key {key!r} is given twice")
        tags[key] = text
    if len(tags) > MAX_TAGS:
        raise TooManyTagsError(f"{where} has {len(tags)} tags; a resource has at most {MAX_TAGS}")
    return [{"key": k, "value": v} for k, v in tags.items()]


def _check_tag_key(key: str, where: str) -> None:
    if key.lower().startswith("aws:"):
        raise InvalidTagsError(f"{where} {key!r}: the prefix aws: is reserved for AWS")


def _read_tags(tx: Tx, res: _Resource) -> list[dict[str, str]]:
    if res.kind != "pipeline":
        return list(_live_document(tx, res).get("tags") or [])
    row = tx.pipelines.get(res.name)
    if row is None:
        raise NotFoundError(f"there is no pipeline {res.name!r} ({res.arn})")
    doc = tx.pipelines.get_document("tags", res.name)
    if doc is not None and doc.get("created") == row["created"]:
        return list(doc["tags"])
    first = tx.pipelines.get_version(res.name, 1) or row["doc"]
    return list(first.get("tags") or [])


def _write_tags(core: EngineCore, tx: Tx, res: _Resource, tags: list[dict[str, str]]) -> None:
    if res.kind == "pipeline":
        row = tx.pipelines.get(res.name)
        assert row is not None  # _read_tags checked it in this transaction
        doc = {"created": row["created"], "tags": tags}
        tx.pipelines.put_document("tags", res.name, doc, core.clock())
        return
    doc = _live_document(tx, res)
    doc["tags"] = tags
    tx.pipelines.put_document(res.kind, res.name, doc, core.clock())


def _live_document(tx: Tx, res: _Resource) -> dict[str, Any]:
    doc = tx.pipelines.get_document(res.kind, res.name)
    if doc is None or doc.get("deleted"):
        noun = "webhook" if res.kind == "webhook" else "custom action type"
        raise NotFoundError(f"there is no {noun} {res.name!r} ({res.arn})")
    return doc


async def tag_resource(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    res = _resource(core, request.get("resourceArn"))
    new = _valid_tags(request.get("tags"))
    async with core.mutate(res.lock) as (tx, _ch):
        merged = {t["key"]: t["value"] for t in _read_tags(tx, res)}
        merged.update({t["key"]: t["value"] for t in new})
        if len(merged) > MAX_TAGS:
            raise TooManyTagsError(
                f"{res.arn} would have {len(merged)} tags; a resource has at most {MAX_TAGS}"
            )
        _write_tags(core, tx, res, [{"key": k, "value": v} for k, v in merged.items()])
    return {}


async def untag_resource(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    res = _resource(core, request.get("resourceArn"))
    keys = request.get("tagKeys")
    if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
        raise InvalidTagsError("tagKeys must be a list of tag keys")
    for i, key in enumerate(keys):
        _check_tag_key(key, f"tagKeys[{i}]")
    async with core.mutate(res.lock) as (tx, _ch):
        kept = [t for t in _read_tags(tx, res) if t["key"] not in set(keys)]
        _write_tags(core, tx, res, kept)
    return {}


async def list_tags_for_resource(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    res = _resource(core, request.get("resourceArn"))
    with core.read() as tx:
        tags = _read_tags(tx, res)
    return _paged("tags", tags, request)


# Action types -------------------------------------------------------------------------------
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


def _type_name(type_id: dict[str, str]) -> str:
    return "/".join(type_id[k] for k in ("owner", "category", "provider", "version"))


def _type_id(body: dict[str, Any], where: str = "") -> dict[str, str]:
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
    return {_type_name(d["actionType"]["id"]): d for d in docs if not d.get("deleted")}


def _artifact_details(body: dict[str, Any], key: str, limit: int = 5) -> dict[str, int]:
    details = _object(body, key)
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
    type_id = _type_id(_object(decl, "id"), "actionType.id.")
    executor = _object(decl, "executor")
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
                **({"description": item["description"][:160]} if item.get("description") else {}),
            }
        )
    urls = _object(decl, "urls", required=False)
    settings = {(_URL_KEYS[0] if k == "configurationUrl" else k): v for k, v in urls.items()}
    action_type = {
        "id": type_id,
        **({"settings": _settings(settings)} if settings else {}),
        "actionConfigurationProperties": _configuration_properties(props),
        "inputArtifactDetails": _artifact_details(decl, "inputArtifactDetails", 10),
        "outputArtifactDetails": _artifact_details(decl, "outputArtifactDetails", 10),
    }
    return action_type, executor


def _register_worker(core: EngineCore, type_id: dict[str, str]) -> None:
    """Jobs of a ThirdParty job-worker type wait for PollForThirdPartyJobs instead of failing
    for want of a provider (the registry serves unknown Custom types that way by itself)."""
    if core.registry.lookup(ActionTypeKey(**type_id)) is None:
        key = ActionTypeKey(**type_id)
        core.registry.add(
            key.category, key.owner, key.provider, key.version, kind=ProviderKind.JOB_WORKER
        )


async def list_action_types(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    owner = request.get("actionOwnerFilter")
    if owner is not None and owner not in {o.value for o in ActionOwner}:
        raise InvalidInputError("actionOwnerFilter must be AWS, ThirdParty or Custom")
    with core.read() as tx:
        types = {name: doc["actionType"] for name, doc in _stored_types(tx).items()}
    for key in core.registry.action_types():
        types.setdefault(_type_name(key.to_dict()), _builtin_type(key))
    items = [t for _, t in sorted(types.items()) if owner in (None, t["id"]["owner"])]
    chunk, token = page(items, request, default_size=1000)
    return {"actionTypes": chunk, **({"nextToken": token} if token else {})}


async def create_custom_action_type(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    type_id = _type_id({**request, "owner": "Custom"})
    name = _type_name(type_id)
    action_type: dict[str, Any] = {"id": type_id}
    if settings := _settings(request.get("settings")):
        action_type["settings"] = settings
    action_type["actionConfigurationProperties"] = _configuration_properties(
        request.get("configurationProperties")
    )
    for key in ("inputArtifactDetails", "outputArtifactDetails"):
        action_type[key] = _artifact_details(request, key)
    tags = _valid_tags(request.get("tags") or [])
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
    name = _type_name(_type_id({**request, "owner": "Custom"}))
    async with core.mutate("action-types") as (tx, _ch):
        doc = tx.pipelines.get_document("action-type", name)
        if doc is None or doc.get("deleted"):
            raise InvalidInputError(f"there is no custom action type {name} to delete")
        doc["deleted"] = True
        tx.pipelines.put_document("action-type", name, doc, core.clock())
    return {}


async def get_action_type(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    type_id = _type_id(request)
    name = _type_name(type_id)
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
    decl = _object(request, "actionType")
    action_type, executor = _from_declaration(decl)
    type_id = action_type["id"]
    name = _type_name(type_id)
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
        _register_worker(core, type_id)
    return {}


# Webhooks (V1) ------------------------------------------------------------------------------
_DEFINITION_KEYS = (
    "name",
    "targetPipeline",
    "targetAction",
    "filters",
    "authentication",
    "authenticationConfiguration",
)


def _webhook_definition(body: dict[str, Any]) -> dict[str, Any]:
    definition: dict[str, Any] = {k: _text(body, k, name_rule=True) for k in _DEFINITION_KEYS[:3]}
    filters = body.get("filters")
    if not isinstance(filters, list) or len(filters) > 5:
        raise InvalidWebhookFilterPatternError("webhook.filters must be a list of at most 5 rules")
    rules = []
    for i, rule in enumerate(filters):
        path = rule.get("jsonPath") if isinstance(rule, dict) else None
        if not isinstance(path, str) or not 1 <= len(path) <= 150 or not path.startswith("$"):
            raise InvalidWebhookFilterPatternError(
                f"webhook.filters[{i}].jsonPath must be a JsonPath of 1 to 150 characters "
                "starting with $ (e.g. $.ref)"
            )
        item = {"jsonPath": path}
        match = rule.get("matchEquals")
        if match is not None:
            if not isinstance(match, str) or not 1 <= len(match) <= 150:
                raise InvalidWebhookFilterPatternError(
                    f"webhook.filters[{i}].matchEquals must be 1 to 150 characters"
                )
            item["matchEquals"] = match
        rules.append(item)
    definition["filters"] = rules
    definition["authentication"], definition["authenticationConfiguration"] = _authentication(body)
    return definition


def _authentication(body: dict[str, Any]) -> tuple[str, dict[str, str]]:
    kind = body.get("authentication")
    config = body.get("authenticationConfiguration")
    if not isinstance(config, dict):
        raise InvalidWebhookAuthenticationError("webhook.authenticationConfiguration is required")
    if kind == "GITHUB_HMAC":
        token = config.get("SecretToken")
        if not isinstance(token, str) or not 1 <= len(token) <= 100:
            raise InvalidWebhookAuthenticationError(
                "GITHUB_HMAC authentication needs authenticationConfiguration.SecretToken "
                "(1 to 100 characters)"
            )
        return kind, {"SecretToken": token}
    if kind == "IP":
        cidr = config.get("AllowedIPRange")
        try:
            ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            raise InvalidWebhookAuthenticationError(
                f"IP authentication needs authenticationConfiguration.AllowedIPRange as a CIDR "
                f"range (e.g. 10.0.0.0/8), got {cidr!r}"
            ) from None
        return kind, {"AllowedIPRange": str(cidr)}
    if kind == "UNAUTHENTICATED":
        return kind, {}
    raise InvalidWebhookAuthenticationError(
        f"webhook.authentication {kind!r} must be GITHUB_HMAC, IP or UNAUTHENTICATED"
    )


def _webhook_item(doc: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "definition": {k: doc[k] for k in _DEFINITION_KEYS},
        "url": doc["url"],
        "arn": doc["arn"],
    }
    for key in ("lastTriggered", "errorMessage", "errorCode"):
        if doc.get(key) is not None:
            item[key] = doc[key]
    if doc.get("tags"):
        item["tags"] = doc["tags"]
    return item


def find_webhook(core: EngineCore, name: str) -> dict[str, Any] | None:
    """The stored webhook named ``name`` (its WebhookDefinition keys plus url, arn, tags,
    lastTriggered), for the route that receives V1 webhook deliveries."""
    with core.read() as tx:
        return tx.pipelines.get_document("webhook", name)


async def webhook_triggered(
    core: EngineCore, name: str, *, error_code: str | None = None, error_message: str | None = None
) -> None:
    """Record a delivery to webhook ``name`` (lastTriggered, and the error if it was refused)."""
    async with core.mutate("webhooks") as (tx, _ch):
        doc = tx.pipelines.get_document("webhook", name)
        if doc is None:
            return
        doc.update(lastTriggered=core.clock(), errorCode=error_code, errorMessage=error_message)
        tx.pipelines.put_document("webhook", name, doc, core.clock())


async def put_webhook(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    definition = _webhook_definition(_object(request, "webhook"))
    name, pipeline = definition["name"], definition["targetPipeline"]
    tags = _valid_tags(request["tags"]) if "tags" in request else None
    with core.read() as tx:
        sources = [
            a.name for a in core.declarations.get(tx, pipeline).declaration.stages[0].actions
        ]
    if definition["targetAction"] not in sources:
        raise InvalidInputError(
            f"webhook.targetAction {definition['targetAction']!r} is not a source action of "
            f"pipeline {pipeline!r} (its source actions: {', '.join(sources)})"
        )
    region, account = core.settings.region, core.settings.account_id
    async with core.mutate("webhooks") as (tx, _ch):
        existing = tx.pipelines.get_document("webhook", name)
        if existing is None and len(tx.pipelines.list_documents("webhook")) >= MAX_WEBHOOKS:
            raise LimitExceededError(f"there are already {MAX_WEBHOOKS} webhooks; delete one first")
        doc = {**(existing or {}), **definition}
        doc["url"] = f"{core.settings.public_url.rstrip('/')}/webhooks/v1/{name}"
        doc["arn"] = f"arn:aws:codepipeline:{region}:{account}:webhook:{name}"
        doc["tags"] = tags if tags is not None else doc.get("tags") or []
        tx.pipelines.put_document("webhook", name, doc, core.clock())
    return {"webhook": _webhook_item(doc)}


async def list_webhooks(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    with core.read() as tx:
        items = [_webhook_item(d) for d in tx.pipelines.list_documents("webhook")]
    return _paged("webhooks", items, request, capitalised=True)


async def delete_webhook(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    name = _text(request, "name", name_rule=True)
    async with core.mutate("webhooks") as (tx, _ch):
        tx.pipelines.delete_document("webhook", name)  # like AWS: deleting twice is no error
    return {}


async def webhook_with_third_party(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    """Register/DeregisterWebhookWithThirdParty: nothing to tell a third party locally (the
    repository host is configured by hand); the webhook must exist."""
    name = _text(request, "webhookName", name_rule=True)
    if find_webhook(core, name) is None:
        raise WebhookNotFoundError(f"there is no webhook {name!r}")
    return {}


# Third-party job plane ----------------------------------------------------------------------
async def poll_for_third_party_jobs(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    type_id = _type_id(_object(request, "actionTypeId"), "actionTypeId.")
    if type_id["owner"] != "ThirdParty":
        raise InvalidInputError(
            "PollForThirdPartyJobs serves ThirdParty action types; poll Custom ones with "
            "PollForJobs"
        )
    size = request.get("maxBatchSize", 1)
    if not isinstance(size, int) or not 1 <= size <= 100:
        raise InvalidInputError("maxBatchSize must be from 1 to 100")
    with core.read() as tx:
        doc = tx.pipelines.get_document("action-type", _type_name(type_id))
    executor = (doc or {}).get("executor") or {}
    if doc is not None and not doc.get("deleted") and executor.get("type") == "JobWorker":
        _register_worker(core, type_id)  # again, after a restart
    entry = core.registry.lookup(ActionTypeKey(**type_id))
    if entry is None:
        raise ActionTypeNotFoundError(
            f"there is no action type {_type_name(type_id)}; declare it with UpdateActionType"
        )
    if entry.kind is not ProviderKind.JOB_WORKER:
        return {"jobs": []}  # caravan runs the jobs of its built-in providers itself
    return {"jobs": await _claim(core, type_id, size)}


async def _claim(core: EngineCore, type_id: dict[str, str], size: int) -> list[dict[str, str]]:
    with core.read() as tx:
        queued = tx.jobs.queued_for(**type_id, now=core.clock(), limit=size)
    claimed = []
    for candidate in queued:
        async with core.mutate(candidate.pipeline) as (tx, _ch):
            job = tx.jobs.get(candidate.id)
            if job is None or job.status != JobStatus.QUEUED:
                continue  # another poller took it
            client_id = str(uuid.uuid4())
            job.status = JobStatus.DISPATCHED
            job.nonce = secrets.token_hex(8)
            job.dispatches += 1
            job.updated = core.clock()
            job.data = {**job.data, "client_id": client_id}
            tx.jobs.save(job)
            claimed.append({"clientId": client_id, "jobId": job.id})
    return claimed


def _third_party_job(core: EngineCore, request: dict[str, Any]) -> JobRecord:
    job_id = _text(request, "jobId")
    token = _text(request, "clientToken")
    with core.read() as tx:
        job = tx.jobs.get(job_id)
    if job is None:
        raise JobNotFoundError(f"job {job_id!r} does not exist")
    if job.action_type.get("owner") != "ThirdParty":
        raise InvalidJobError(f"job {job_id} is not a third-party job; use the job API for it")
    if job.data.get("client_id") != token:
        raise InvalidClientTokenError(
            f"clientToken does not match job {job_id}: give the clientId PollForThirdPartyJobs "
            "returned with it"
        )
    return job


async def get_third_party_job_details(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    job = _third_party_job(core, request)
    with core.read() as tx:
        data = ops_jobs.job_data(core, tx, job)
    # AWS does not give third parties the pipeline's ARN or execution id.
    data["pipelineContext"].pop("pipelineArn", None)
    data["pipelineContext"].pop("pipelineExecutionId", None)
    return {"jobDetails": {"id": job.id, "data": data, "nonce": job.nonce}}


async def acknowledge_third_party_job(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    job = _third_party_job(core, request)
    return await ops_jobs.acknowledge_job(core, {"jobId": job.id, "nonce": request.get("nonce")})


async def put_third_party_job_success_result(
    core: EngineCore, request: dict[str, Any]
) -> dict[str, Any]:
    job = _third_party_job(core, request)
    keys = ("currentRevision", "continuationToken", "executionDetails")
    body = {"jobId": job.id, **{k: request[k] for k in keys if k in request}}
    return await ops_jobs.put_job_success_result(core, body)


async def put_third_party_job_failure_result(
    core: EngineCore, request: dict[str, Any]
) -> dict[str, Any]:
    job = _third_party_job(core, request)
    body = {"jobId": job.id, "failureDetails": request.get("failureDetails")}
    return await ops_jobs.put_job_failure_result(core, body)


# Conditions, rules, deploy targets ----------------------------------------------------------
def _stage_of(pdoc: PipelineDoc, stage_name: str) -> int:
    names = [s.name for s in pdoc.declaration.stages]
    if stage_name not in names:
        raise StageNotFoundError(
            f"pipeline {pdoc.name!r} has no stage {stage_name!r} (stages: {', '.join(names)})"
        )
    return names.index(stage_name)


def _execution(tx: Tx, pipeline: str, execution_id: str) -> ExecutionRecord:
    record = tx.executions.get(execution_id)
    if record is None or record.pipeline != pipeline:
        raise PipelineExecutionNotFoundError(
            f"pipeline {pipeline!r} has no execution {execution_id!r}"
        )
    return record


async def list_rule_types(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    if request.get("ruleOwnerFilter") not in (None, "AWS"):
        raise InvalidInputError("ruleOwnerFilter must be AWS")
    return {"ruleTypes": []}  # no rule provider yet: caravan does not evaluate conditions


async def list_rule_executions(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    name = _text(request, "pipelineName", name_rule=True)
    wanted = _object(request, "filter", required=False)
    execution_id = wanted.get("pipelineExecutionId") or (
        wanted.get("latestInPipelineExecution") or {}
    ).get("pipelineExecutionId")
    with core.read() as tx:
        core.declarations.get(tx, name)
        if execution_id:
            _execution(tx, name, str(execution_id))
    return _paged("ruleExecutionDetails", [], request)


async def list_deploy_action_execution_targets(
    core: EngineCore, request: dict[str, Any]
) -> dict[str, Any]:
    action_id = _text(request, "actionExecutionId")
    pipeline = request.get("pipelineName")
    with core.read() as tx:
        if pipeline is not None:
            core.declarations.get(tx, str(pipeline))
        action = tx.executions.get_action(action_id)
    if action is None or pipeline not in (None, action.pipeline):
        raise ActionExecutionNotFoundError(f"there is no action execution {action_id!r}")
    # caravan's deploy providers do not report per-target progress (CodeDeploy/ECS do on AWS).
    return _paged("targets", [], request)


async def override_stage_condition(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    name = _text(request, "pipelineName", name_rule=True)
    stage_name = _text(request, "stageName", name_rule=True)
    execution_id = _text(request, "pipelineExecutionId")
    kind = request.get("conditionType")
    if kind not in ("BEFORE_ENTRY", "ON_SUCCESS"):
        raise InvalidInputError("conditionType must be BEFORE_ENTRY or ON_SUCCESS")
    with core.read() as tx:
        pdoc = core.declarations.get(tx, name)
        stage = pdoc.declaration.stages[_stage_of(pdoc, stage_name)]
        _execution(tx, name, execution_id)
    declared = stage.before_entry if kind == "BEFORE_ENTRY" else stage.on_success
    what = "beforeEntry" if kind == "BEFORE_ENTRY" else "onSuccess"
    if declared is None:
        raise ConditionNotOverridableError(f"stage {stage_name} declares no {what} condition")
    raise ConditionNotOverridableError(
        f"the {what} condition of stage {stage_name} is not being evaluated: caravan does not "
        "evaluate stage conditions yet, so there is no condition result to override"
    )


# Sources and rollback -----------------------------------------------------------------------
async def put_action_revision(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    """Start an execution with the source action pinned to the given revision, unless an
    execution of the pipeline already used that revision (then ``newRevision`` is false)."""
    name = _text(request, "pipelineName", name_rule=True)
    stage_name = _text(request, "stageName", name_rule=True)
    action_name = _text(request, "actionName", name_rule=True)
    revision = _object(request, "actionRevision")
    revision_id = _text(revision, "revisionId")
    _text(revision, "revisionChangeId")
    if revision.get("created") is None:
        raise InvalidInputError("actionRevision.created is required")
    with core.read() as tx:
        pdoc = core.declarations.get(tx, name)
        index = _stage_of(pdoc, stage_name)
        if action_name not in {a.name for a in pdoc.declaration.stages[index].actions}:
            raise ActionNotFoundError(f"stage {stage_name!r} has no action {action_name!r}")
        if index != 0:
            raise InvalidInputError(
                f"{stage_name}.{action_name} is not a source action: PutActionRevision "
                "gives a revision to an action of the first stage"
            )
        for record in tx.executions.recent(name, limit=10_000):
            if record.source_revisions.get(action_name) == revision_id:
                return {"newRevision": False, "pipelineExecutionId": record.id}
    execution_id = await start_execution(
        core,
        name,
        trigger_type=TriggerType.PUT_ACTION_REVISION,
        trigger_detail=action_name,
        variables={},
        source_revisions={action_name: revision_id},
        strict_variables=False,
    )
    return {"newRevision": True, "pipelineExecutionId": execution_id}


async def rollback_stage(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    """A new ROLLBACK execution that enters ``stageName`` directly, with the target execution's
    source revisions, variables and the artifacts of the stages before it, and carries on
    through the stages after it."""
    name = _text(request, "pipelineName", name_rule=True)
    stage_name = _text(request, "stageName", name_rule=True)
    target_id = _text(request, "targetPipelineExecutionId")
    async with core.mutate(name) as (tx, ch):
        pdoc = core.declarations.get(tx, name)
        index = _stage_of(pdoc, stage_name)
        target = _execution(tx, name, target_id)
        state, transitions = core.driver.load_flow(tx, name)
        _check_rollback(tx, pdoc, state, target, stage_name, index)
        record = _rollback_record(core, pdoc, target, index)
        tx.executions.insert(record)
        tx.pipelines.put_document(
            "rollback", record.id, {"rollbackTargetPipelineExecutionId": target.id}, core.clock()
        )
        ch.event("execution", name, pipelineExecutionId=record.id, status=record.status)
        # The rollback execution takes the stage's lock (and becomes its latest) as it enters.
        gate = replace(state.gate(stage_name), occupant=record.id, latest=record.id)
        entered = replace(state, gates={**state.gates, stage_name: gate})
        core.driver.save_flow(tx, name, entered, transitions)
        core.driver.enter_stage(tx, ch, record.id, stage_name)
    return {"pipelineExecutionId": record.id}


def _check_rollback(
    tx: Tx,
    pdoc: PipelineDoc,
    state: flow.FlowState,
    target: ExecutionRecord,
    stage_name: str,
    index: int,
) -> None:
    why = None
    stage = tx.executions.get_stage(target.id, stage_name)
    occupant = state.gate(stage_name).occupant
    if state.mode is ExecutionMode.PARALLEL:
        why = "rollback is not available in PARALLEL mode"
    elif index == 0:
        why = f"{stage_name} is the source stage, and a source stage cannot be rolled back"
    elif target.execution_type == "ROLLBACK":
        why = f"execution {target.id} is itself a rollback; choose a STANDARD execution"
    elif target.pipeline_version != pdoc.version:
        why = (
            f"execution {target.id} ran version {target.pipeline_version} of the pipeline, which "
            f"is now at version {pdoc.version}; a target must have started in the current version"
        )
    elif stage is None or stage.status != StageExecutionStatus.SUCCEEDED:
        how = f"it ended {stage.status}" if stage is not None else "it never ran there"
        why = (
            f"execution {target.id} did not succeed in stage {stage_name} ({how}); "
            "ListPipelineExecutions with filter succeededInStage lists the executions that did"
        )
    elif occupant is not None:
        why = f"stage {stage_name} is running execution {occupant}; wait for it to end or stop it"
    if why is not None:
        raise UnableToRollbackStageError(f"cannot roll back stage {stage_name}: {why}")


def _rollback_record(
    core: EngineCore, pdoc: PipelineDoc, target: ExecutionRecord, index: int
) -> ExecutionRecord:
    earlier = [a for s in pdoc.declaration.stages[:index] for a in s.actions]
    outputs = {o.name for a in earlier for o in a.output_artifacts}
    namespaces = {a.namespace for a in earlier if a.namespace}
    now = core.clock()
    return ExecutionRecord(
        id=str(uuid.uuid4()),
        pipeline=pdoc.name,
        pipeline_version=pdoc.version,
        trigger_type=str(TriggerType.MANUAL_ROLLBACK),
        trigger_detail=target.id,
        execution_mode=str(pdoc.declaration.execution_mode),
        execution_type="ROLLBACK",
        variables=dict(target.variables),
        source_revisions=dict(target.source_revisions),
        namespaces={k: dict(v) for k, v in target.namespaces.items() if k in namespaces},
        artifacts={k: dict(v) for k, v in target.artifacts.items() if k in outputs},
        started=now,
        updated=now,
    )


def _add_rollback_metadata(core: EngineCore, executions: list[dict[str, Any]]) -> None:
    rollbacks = [e for e in executions if e.get("executionType") == "ROLLBACK"]
    if not rollbacks:
        return
    with core.read() as tx:
        for execution in rollbacks:
            doc = tx.pipelines.get_document("rollback", execution["pipelineExecutionId"])
            if doc is not None:
                execution["rollbackMetadata"] = doc


async def get_pipeline_execution(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    """views.get_pipeline_execution, with the rollbackMetadata of rollback executions."""
    body = await views.get_pipeline_execution(core, request)
    _add_rollback_metadata(core, [body["pipelineExecution"]])
    return body


async def list_pipeline_executions(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    """views.list_pipeline_executions, with the rollbackMetadata of rollback executions."""
    body = await views.list_pipeline_executions(core, request)
    _add_rollback_metadata(core, body["pipelineExecutionSummaries"])
    return body

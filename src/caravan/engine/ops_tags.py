"""Tags of CodePipeline resources: TagResource, UntagResource, ListTagsForResource.

A resource is named by its ARN: a pipeline ``arn:aws:codepipeline:<region>:<account>:<name>``,
a webhook ``...:webhook:<name>``, an action type ``...:actiontype:<Owner>/<Category>/<Provider>/
<Version>``. Webhooks and action types keep their tags in their own documents. A pipeline's tags
start as the ones CreatePipeline stored with its first version; a document of kind "tags"
({"created": <the pipeline's created>, "tags": [...]}) takes over at the first change, and is
ignored once the pipeline was deleted and created again (its ``created`` differs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from caravan.engine.core import EngineCore
from caravan.engine.fields import paged
from caravan.errors import ConflictError, InvalidInputError, NotFoundError
from caravan.store import Tx

MAX_TAGS = 50
_ARN = re.compile(r"arn:aws(-[\w]+)*:codepipeline:([^:]+):([0-9]{12}):(.+)\Z")


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
    """A resource quota (custom action types, webhooks) is used up."""

    reference = "limit-exceeded"
    aws_type = "LimitExceededException"


def valid_tags(value: object, where: str = "tags") -> list[dict[str, str]]:
    """``value`` as a list of {key, value}; InvalidTagsError / TooManyTagsError name the
    offending entry."""
    if not isinstance(value, list):
        raise InvalidTagsError(f"{where} must be a list of {{key, value}} objects")
    tags: dict[str, str] = {}
    for i, item in enumerate(value):
        key = item.get("key") if isinstance(item, dict) else None
        text = item.get("value", "") if isinstance(item, dict) else None
        if not isinstance(key, str) or not 1 <= len(key) <= 128:
            raise InvalidTagsError(f"{where}[{i}].key must be 1 to 128 characters")
        _check_key(key, f"{where}[{i}].key")
        if not isinstance(text, str) or len(text) > 256:
            raise InvalidTagsError(f"{where}[{i}].value must be at most 256 characters")
        if key in tags:
            raise InvalidTagsError(f"{where}[{i}].key {key!r} is given twice")
        tags[key] = text
    if len(tags) > MAX_TAGS:
        raise TooManyTagsError(f"{where} has {len(tags)} tags; a resource has at most {MAX_TAGS}")
    return [{"key": k, "value": v} for k, v in tags.items()]


def _check_key(key: str, where: str) -> None:
    if key.lower().startswith("aws:"):
        raise InvalidTagsError(f"{where} {key!r}: the prefix aws: is reserved for AWS")


@dataclass(frozen=True)
class Resource:
    """A taggable resource: its document kind, its name and its ARN."""

    kind: str  # "pipeline", "webhook" or "action-type" (the document kind)
    name: str
    arn: str

    @property
    def lock(self) -> str:
        """The key of ``EngineCore.mutate`` that serialises writes to this resource."""
        return self.name if self.kind == "pipeline" else f"{self.kind}s"


def resource(core: EngineCore, arn: object) -> Resource:
    """The resource ``arn`` names (InvalidArnError if it is no CodePipeline ARN)."""
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
        return Resource("webhook", name, arn)
    if kind == "actiontype" and name:
        return Resource("action-type", name, arn)
    if ":" in rest:
        raise InvalidArnError(f"resourceArn {arn!r} names no pipeline, webhook or action type")
    return Resource("pipeline", rest, arn)


def _read_tags(tx: Tx, res: Resource) -> list[dict[str, str]]:
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


def _write_tags(core: EngineCore, tx: Tx, res: Resource, tags: list[dict[str, str]]) -> None:
    if res.kind == "pipeline":
        row = tx.pipelines.get(res.name)
        assert row is not None  # _read_tags checked it in this transaction
        doc = {"created": row["created"], "tags": tags}
        tx.pipelines.put_document("tags", res.name, doc, core.clock())
        return
    doc = _live_document(tx, res)
    doc["tags"] = tags
    tx.pipelines.put_document(res.kind, res.name, doc, core.clock())


def _live_document(tx: Tx, res: Resource) -> dict[str, Any]:
    doc = tx.pipelines.get_document(res.kind, res.name)
    if doc is None or doc.get("deleted"):
        noun = "webhook" if res.kind == "webhook" else "custom action type"
        raise NotFoundError(f"there is no {noun} {res.name!r} ({res.arn})")
    return doc


async def tag_resource(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    res = resource(core, request.get("resourceArn"))
    new = valid_tags(request.get("tags"))
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
    res = resource(core, request.get("resourceArn"))
    keys = request.get("tagKeys")
    if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
        raise InvalidTagsError("tagKeys must be a list of tag keys")
    for i, key in enumerate(keys):
        _check_key(key, f"tagKeys[{i}]")
    async with core.mutate(res.lock) as (tx, _ch):
        kept = [t for t in _read_tags(tx, res) if t["key"] not in set(keys)]
        _write_tags(core, tx, res, kept)
    return {}


async def list_tags_for_resource(core: EngineCore, request: dict[str, Any]) -> dict[str, Any]:
    res = resource(core, request.get("resourceArn"))
    with core.read() as tx:
        tags = _read_tags(tx, res)
    return paged("tags", tags, request)

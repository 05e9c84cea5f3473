"""Reading the fields of an API request: required strings and objects, CodePipeline names, and
one page of a listed collection (used by the operations of ``ops_*`` modules)."""

from __future__ import annotations

import re
from typing import Any

from caravan.engine.paging import page
from caravan.errors import InvalidInputError

NAME = re.compile(r"[A-Za-z0-9.@\-_]{1,100}\Z")  # pipelines, stages, actions, webhooks
NAME_RULE = "1 to 100 of A-Z a-z 0-9 . @ - _"


def text(body: dict[str, Any], key: str, *, name: bool = False) -> str:
    """The required string ``body[key]``; with ``name``, it must be a CodePipeline name."""
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{key!r} is required (a non-empty string)")
    if name and not NAME.match(value):
        raise InvalidInputError(f"{key} {value!r} must be {NAME_RULE}")
    return value


def obj(body: dict[str, Any], key: str, *, required: bool = True) -> dict[str, Any]:
    """The object ``body[key]`` ({} when it is optional and absent)."""
    value = body.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise InvalidInputError(f"{key!r} is required (an object)")
    return value


def paged(
    key: str, items: list[Any], request: dict[str, Any], *, capitalised: bool = False
) -> dict[str, Any]:
    """One page of ``items`` (at most 100) under ``key``, with the token of the next page;
    ListWebhooks spells its token ``NextToken``."""
    chunk, token = page(items, request, default_size=100, max_size=100)
    if not token:
        return {key: chunk}
    return {key: chunk, "NextToken" if capitalised else "nextToken": token}

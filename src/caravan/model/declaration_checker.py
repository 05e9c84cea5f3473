"""Checking a document's parts against the declaration model, collecting every issue.

``Checker`` replaces CloudFormation intrinsics by their literals (or reports them), validates
each part with pydantic and turns its errors into ``Issue``s at camelCase paths relative to the
pipeline; issues that only repeat an unresolved intrinsic's own issue are dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel, to_pascal

from caravan.errors import Issue
from caravan.model.cloudformation import (
    PLACEHOLDER,
    RESOLVABLE,
    evaluate_intrinsic,
    intrinsic_name,
)
from caravan.model.declaration import DeclarationModel

_Loc = tuple[str | int, ...]
T = TypeVar("T")


# Issue paths -----------------------------------------------------------------------------------


def _camel_names() -> dict[str, str]:
    """Every spelling of every declaration field -> its camelCase key."""
    names: dict[str, str] = {}
    pending: list[type[BaseModel]] = [DeclarationModel]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        for name in model.model_fields:
            names[name] = names[to_pascal(name)] = names[to_camel(name)] = to_camel(name)
    return names


_CAMEL = _camel_names()
_FREE_FORM = frozenset({"configuration"})  # maps whose keys are the user's own


def _path(loc: Iterable[str | int], prefix: str = "") -> str:
    """A pydantic location as a camelCase path: ``stages[1].actions[0].runOrder``."""
    path, free = prefix, False
    for part in loc:
        if isinstance(part, int):
            path, free = f"{path}[{part}]", False
            continue
        if part == "[key]":
            continue
        name = part if free else _CAMEL.get(part, part)
        path = f"{path}.{name}" if path else name
        free = not free and name in _FREE_FORM
    return path


_PLAIN_RULES = {
    "missing": "is required",
    "extra_forbidden": "unknown field",
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
}


def _rule(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind in _PLAIN_RULES:
        return _PLAIN_RULES[kind]
    if kind in ("literal_error", "enum"):
        return f"must be {error.get('ctx', {}).get('expected', 'one of the allowed values')}"
    return str(error["msg"]).removeprefix("Value error, ")


def covers(outer: str, path: str) -> bool:
    return path == outer or path.startswith((f"{outer}.", f"{outer}["))


# Checking --------------------------------------------------------------------------------------


# A pipeline at AWS's limits (500 actions, 50 commands each, ...) has some 50,000 values; far
# more is a YAML alias bomb, refused before it takes time or memory.
MAX_NODES = 200_000


class TooLarge(Exception):
    pass


class Checker:
    """Validates the parts of one document, collecting every issue on the way."""

    def __init__(self, refs: Mapping[str, str]) -> None:
        self.refs = refs
        self.issues: list[Issue] = []
        self.intrinsic_paths: list[str] = []
        self.intrinsic_issues: list[Issue] = []
        self.nodes = 0

    def resolve(self, value: Any, loc: _Loc, prefix: str) -> Any:
        """``value`` with CloudFormation intrinsics replaced by their literal (or a placeholder,
        recording an issue, when they have none)."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise TooLarge
        if isinstance(value, dict):
            function = intrinsic_name(value)
            if function is None:
                return {k: self.resolve(v, (*loc, k), prefix) for k, v in value.items()}
            literal = evaluate_intrinsic(function, value[function], self.refs)
            if literal is not None:
                return literal
            path = _path(loc, prefix)
            self.intrinsic_paths.append(path)
            rule = f"CloudFormation intrinsic {function} is not supported here; use a literal value"
            if function in ("Ref", "Fn::Sub", "Fn::Join"):
                rule += f" ({RESOLVABLE})"
            self.intrinsic_issues.append(Issue(path, rule))
            self.issues.append(self.intrinsic_issues[-1])
            return PLACEHOLDER
        if isinstance(value, list):
            return [self.resolve(item, (*loc, i), prefix) for i, item in enumerate(value)]
        return value

    def check(self, adapter: TypeAdapter[T], data: Any, prefix: str) -> T | None:
        """Validate ``data``; on shape errors record them and, when they are only unknown keys
        or leftovers of intrinsics, validate again without those keys so the semantic rules
        can still run."""
        data = self.resolve(data, (), prefix)
        try:
            return adapter.validate_python(data)
        except ValidationError as error:
            errors = error.errors(include_url=False)
        self.issues.extend(Issue(_path(e["loc"], prefix), _rule(e)) for e in errors)
        removable = [
            e["loc"]
            for e in errors
            if e["loc"]
            and isinstance(e["loc"][-1], str)
            and (e["type"] == "extra_forbidden" or self.suppressed(_path(e["loc"], prefix)))
        ]
        if len(removable) < len(errors):
            return None
        try:
            return adapter.validate_python(_without(data, removable))
        except ValidationError:
            return None

    def suppressed(self, path: str) -> bool:
        """An issue caused by an intrinsic's placeholder repeats the intrinsic's own issue."""
        return any(covers(outer, path) for outer in self.intrinsic_paths)

    def final(self, issues: Iterable[Issue]) -> list[Issue]:
        result: list[Issue] = []
        for issue in issues:
            keep = issue in self.intrinsic_issues or not self.suppressed(issue.path)
            if keep and issue not in result:
                result.append(issue)
        return result


def _without(data: Any, locations: Sequence[_Loc]) -> Any:
    """A copy of ``data`` without the keys at ``locations``."""
    copy = json.loads(json.dumps(data, default=str))
    for loc in locations:
        parent = copy
        try:
            for part in loc[:-1]:
                parent = parent[part]
            del parent[loc[-1]]
        except (KeyError, IndexError, TypeError):
            continue
    return copy

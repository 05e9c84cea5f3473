"""Checking one section of an app manifest on its own: pydantic errors as issues at their
manifest path (``functions.api.memorySize``), mappings of named entries checked entry by entry,
and the ``pipeline`` section through the declaration loader, its issues under ``pipeline.``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from caravan.errors import DeclarationError, Issue
from caravan.model.declaration import PipelineDocument
from caravan.model.loader import load_data

BESIDE_PIPELINE = ("buildProjects", "tags", "disabledInboundTransitions")

T = TypeVar("T")


_RULES = {
    "missing": "is required",
    "extra_forbidden": "unknown field",
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
}


def _rule(error: Mapping[str, Any]) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind in _RULES:
        return _RULES[kind]
    if kind in ("literal_error", "enum"):
        return f"must be {ctx.get('expected', 'one of the allowed values')}"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')}"
    if kind in ("greater_than_equal", "less_than_equal"):
        bound = "at least" if kind == "greater_than_equal" else "at most"
        return f"must be {bound} {ctx.get('ge', ctx.get('le'))}"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    return str(error["msg"]).removeprefix("Value error, ")


def check_value(adapter: TypeAdapter[T], value: Any, prefix: str, issues: list[Issue]) -> T | None:
    try:
        return adapter.validate_python(value)
    except ValidationError as error:
        for e in error.errors(include_url=False):
            path = prefix
            for part in e["loc"]:
                path = f"{path}[{part}]" if isinstance(part, int) else f"{path}.{part}"
            issues.append(Issue(path, _rule(e)))
        return None


def check_optional(
    adapter: TypeAdapter[T], value: Any, prefix: str, issues: list[Issue]
) -> T | None:
    return None if value is None else check_value(adapter, value, prefix, issues)


def entry_names(value: Any) -> set[str]:
    return {str(name) for name in value} if isinstance(value, dict) else set()


def check_entries(
    value: Any, prefix: str, pattern: str, adapter: TypeAdapter[T], issues: list[Issue]
) -> dict[str, T]:
    """The valid entries of a mapping, each checked on its own so one bad entry hides nothing."""
    if not isinstance(value, dict) or not value:
        issues.append(Issue(prefix, "must be a mapping with at least one entry"))
        return {}
    result: dict[str, T] = {}
    for name, body in value.items():
        if not isinstance(name, str) or not re.fullmatch(pattern, name):
            issues.append(Issue(f"{prefix}.{name}", f"the name must match {pattern}"))
        checked = check_value(adapter, {} if body is None else body, f"{prefix}.{name}", issues)
        if checked is not None:
            result[str(name)] = checked
    return result


def check_pipeline(
    data: Mapping[str, Any], app: str | None, source: str | None, issues: list[Issue]
) -> PipelineDocument | None:
    pipeline = data.get("pipeline")
    if pipeline is None:
        return None
    if not isinstance(pipeline, dict):
        issues.append(Issue("pipeline", "must be a mapping (a CodePipeline declaration)"))
        return None
    if "name" not in pipeline and "Name" not in pipeline:
        # A broken app name is its own issue; a stand-in keeps it from repeating here.
        pipeline = {"name": app or "app", **pipeline}
    request = {"pipeline": pipeline, **{k: data[k] for k in BESIDE_PIPELINE if k in data}}
    try:
        return load_data(request, source=source)
    except DeclarationError as error:
        issues.extend(_in_pipeline(issue) for issue in error.issues)
        return None


def _in_pipeline(issue: Issue) -> Issue:
    """Pipeline-relative issue paths get the ``pipeline.`` prefix; its siblings keep theirs."""
    if any(issue.path == k or issue.path.startswith((f"{k}.", f"{k}[")) for k in BESIDE_PIPELINE):
        return issue
    return Issue(f"pipeline.{issue.path}" if issue.path else "pipeline", issue.rule)

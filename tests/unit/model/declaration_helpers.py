"""Small builders of pipeline declarations (camelCase dicts) for the model tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from caravan.errors import DeclarationError, Issue
from caravan.model.declaration import PipelineDocument
from caravan.model.loader import load_data

FIXTURES = Path(__file__).parent / "fixtures"


def action(
    name: str,
    category: str = "Invoke",
    owner: str = "AWS",
    provider: str = "Lambda",
    *,
    inputs: tuple[str, ...] = (),
    outputs: tuple[str, ...] = (),
    **fields: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "actionTypeId": {
            "category": category,
            "owner": owner,
            "provider": provider,
            "version": "1",
        },
    }
    if inputs:
        body["inputArtifacts"] = [{"name": n} for n in inputs]
    if outputs:
        body["outputArtifacts"] = [{"name": n} for n in outputs]
    body.update(fields)
    return body


def git_source(name: str = "Checkout", output: str = "Src", **fields: Any) -> dict[str, Any]:
    fields.setdefault("configuration", {"Repository": ".", "Branch": "main"})
    return action(name, "Source", "Custom", "Git", outputs=(output,), **fields)


def commands(name: str, lines: list[str], **fields: Any) -> dict[str, Any]:
    return action(name, "Compute", "AWS", "Commands", commands=lines, **fields)


_VALID: dict[str, Any] = {
    "name": "demo",
    "stages": [
        {"name": "Source", "actions": [git_source(namespace="SourceVariables")]},
        {
            "name": "Build",
            "actions": [
                action(
                    "Package",
                    inputs=("Src",),
                    outputs=("Dist",),
                    configuration={
                        "FunctionName": "package",
                        "UserParameters": "commit=#{SourceVariables.CommitId}",
                    },
                    namespace="PackageVariables",
                ),
                action("Check", "Test", inputs=("Dist",), runOrder=2),
            ],
        },
        {"name": "Deploy", "actions": [action("Ship", "Deploy", inputs=("Dist",))]},
    ],
}


def valid_pipeline() -> dict[str, Any]:
    """A fresh valid three-stage pipeline: git source, package + check, deploy."""
    return copy.deepcopy(_VALID)


def issues_of(data: Any, **options: Any) -> list[Issue]:
    """Every issue the loader reports for ``data`` (empty when it loads)."""
    try:
        load_data(data, **options)
    except DeclarationError as error:
        return error.issues
    return []


def load_ok(data: Any, **options: Any) -> PipelineDocument:
    return load_data(data, **options)

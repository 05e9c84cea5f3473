"""Providers are found by actionTypeId; packages add their own through entry points."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from caravan.actions.base import ActionTypeKey
from caravan.actions.registry import ProviderKind, ProviderRegistry

PLUGIN = """
from caravan.actions.base import JobSucceeded

async def deploy(job, ctx):
    return JobSucceeded(summary="deployed by a plugin")

def register(registry):
    registry.add("Deploy", "Custom", "Catapult", "2", deploy)
"""


def test_built_in_providers_register_through_the_entry_point() -> None:
    registry = ProviderRegistry.from_entry_points()
    keys = {str(k) for k in registry.action_types()}
    assert {
        "Source/Custom/Git/1",
        "Build/AWS/CodeBuild/1",
        "Compute/AWS/Commands/1",
        "Invoke/AWS/Lambda/1",
        "Approval/AWS/Manual/1",
    } <= keys


def test_a_third_party_package_adds_a_provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "catapult_plugin.py").write_text(PLUGIN)
    dist = tmp_path / "catapult_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: catapult-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[caravan.actions]\ncatapult = catapult_plugin:register\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = ProviderRegistry.from_entry_points()
    entry = registry.lookup(ActionTypeKey("Deploy", "Custom", "Catapult", "2"))
    assert entry is not None and entry.kind is ProviderKind.RUN
    sys.modules.pop("catapult_plugin", None)


def test_a_custom_type_without_a_provider_waits_for_a_job_worker() -> None:
    entry = ProviderRegistry().lookup(ActionTypeKey("Build", "Custom", "Anything", "1"))
    assert entry is not None and entry.kind is ProviderKind.JOB_WORKER
    assert ProviderRegistry().lookup(ActionTypeKey("Build", "AWS", "Unknown", "1")) is None

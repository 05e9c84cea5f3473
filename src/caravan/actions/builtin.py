"""caravan's built-in action providers, registered through the ``caravan.actions`` entry point
like any third-party provider."""

from __future__ import annotations

from caravan.actions.registry import ProviderKind, ProviderRegistry


def register(registry: ProviderRegistry) -> None:
    from caravan.actions.codebuild import codebuild_provider
    from caravan.actions.commands import commands_provider
    from caravan.actions.git_source import ACTION_TYPES as GIT_SOURCES
    from caravan.actions.git_source import git_source_provider
    from caravan.actions.lambda_invoke import lambda_invoke_provider

    for category, owner, provider, version in GIT_SOURCES:
        registry.add(category, owner, provider, version, git_source_provider)
    registry.add("Build", "AWS", "CodeBuild", "1", codebuild_provider)
    registry.add("Test", "AWS", "CodeBuild", "1", codebuild_provider)
    registry.add("Compute", "AWS", "Commands", "1", commands_provider)
    registry.add("Invoke", "AWS", "Lambda", "1", lambda_invoke_provider)
    registry.add("Approval", "AWS", "Manual", "1", kind=ProviderKind.APPROVAL)
    from caravan.actions.platform_deploy import PROVIDERS as PLATFORM_PROVIDERS

    for (category, owner, provider, version), run in PLATFORM_PROVIDERS.items():
        registry.add(category, owner, provider, version, run)

"""The app manifest's rules across sections: environments' hosts and aliases, artifacts named
by functions, the API and the site, and caravan's deploy and test actions in the pipeline
naming what the manifest declares.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from caravan.errors import Issue
from caravan.model.declaration import ActionDeclaration, PipelineDocument

if TYPE_CHECKING:  # the manifest module imports these rules
    from caravan.model.manifest import Environment, Sections

# Deploy action types of the manifest's pipeline (category, owner, provider, version).
FUNCTION_ACTION = ("Deploy", "Custom", "CaravanFunction", "1")
API_ACTION = ("Deploy", "Custom", "CaravanApi", "1")
SITE_ACTION = ("Deploy", "Custom", "CaravanSite", "1")
TEST_ACTION = ("Test", "Custom", "CaravanTest", "1")
ACTION_TYPES = (FUNCTION_ACTION, API_ACTION, SITE_ACTION, TEST_ACTION)


def environment_rules(environments: Mapping[str, Environment]) -> Iterator[Issue]:
    owners: dict[str, str] = {}
    for name, environment in environments.items():
        path = f"environments.{name}"
        for h, host in enumerate(environment.hosts or ()):
            owner = owners.setdefault(host, name)
            if owner != name:
                yield Issue(f"{path}.hosts[{h}]", f"{host!r} is also a host of {owner!r}")
        if environment.stage_variables.get("alias") != name:
            yield Issue(
                f"{path}.stageVariables.alias",
                f"must be {name!r}: an environment's traffic goes through the alias named after "
                "it (leave it out to get that default)",
            )
        if environment.release.percent is not None and not environment.release.gradual:
            rule = "applies only to the Canary and Linear strategies"
            yield Issue(f"{path}.release.percent", rule)


def _raw_outputs(pipeline: Any) -> set[str]:
    """Output artifact names in the raw pipeline, so artifact references are checked even when
    the pipeline itself has problems."""

    def items(value: Any, key: str) -> list[Any]:
        if not isinstance(value, dict):
            return []
        found = value.get(key, value.get(key[:1].upper() + key[1:]))
        return found if isinstance(found, list) else []

    return {
        name
        for stage in items(pipeline, "stages")
        for action in items(stage, "actions")
        for output in items(action, "outputArtifacts")
        if isinstance(output, dict)
        and isinstance(name := output.get("name", output.get("Name")), str)
    }


def artifact_rules(data: Mapping[str, Any]) -> Iterator[Issue]:
    """Read from the raw data, so that an entry broken in other ways is still checked."""
    outputs = _raw_outputs(data.get("pipeline"))
    functions = data.get("functions")
    parts = (
        [(f"functions.{n}", f) for n, f in functions.items()] if isinstance(functions, dict) else []
    )
    parts += [(part, data.get(part)) for part in ("api", "site")]
    for path, part in parts:
        artifact = part.get("artifact") if isinstance(part, dict) else None
        if isinstance(artifact, str) and artifact not in outputs:
            known = ", ".join(sorted(outputs)) or "none"
            rule = (
                f"{artifact!r} is not an output artifact of any pipeline action (outputs: {known})"
            )
            yield Issue(f"{path}.artifact", rule)


_CONFIG_KEYS = {
    "CaravanFunction": ("Function", "Environment"),
    "CaravanApi": ("Environment",),
    "CaravanSite": ("Environment", "Version"),
    "CaravanTest": ("Environment", "Commands", "BuildSpec"),
}


def action_rules(document: PipelineDocument, sections: Sections) -> Iterator[Issue]:
    """caravan's deploy and test actions must name what the manifest declares."""
    by_provider = {key[2]: key for key in ACTION_TYPES}
    for s, stage in enumerate(document.pipeline.stages):
        for a, action in enumerate(stage.actions):
            key = action.action_type_id.key()
            if key[1] != "Custom" or key[2] not in by_provider:
                continue
            path = f"pipeline.stages[{s}].actions[{a}]"
            if key != by_provider[key[2]]:
                expected = "/".join(by_provider[key[2]])
                yield Issue(f"{path}.actionTypeId", f"{key[2]} is the action type {expected}")
            else:
                yield from _deploy_rules(path, action, sections)


def _deploy_rules(path: str, action: ActionDeclaration, sections: Sections) -> Iterator[Issue]:
    provider, config = action.action_type_id.provider, action.configuration
    allowed = _CONFIG_KEYS[provider]
    for key in config:
        if key not in allowed:
            rule = f"unknown key (expected {', '.join(allowed)})"
            yield Issue(f"{path}.configuration.{key}", rule)
    where = f"{path}.configuration"
    environment = config.get("Environment")
    yield from _named_in(f"{where}.Environment", environment, sections.environment_names)
    artifact: str | None = None
    if provider == "CaravanFunction":
        function = config.get("Function")
        yield from _named_in(f"{where}.Function", function, sections.function_names)
        spec = sections.functions.get(function or "")
        artifact = spec.artifact if spec else None
    elif provider == "CaravanTest":
        yield from _test_rules(where, config)
    else:
        part = "api" if provider == "CaravanApi" else "site"
        if part not in sections.declared:
            rule = f"{provider} deploys the {part}, but the manifest declares no {part}"
            yield Issue(f"{path}.actionTypeId", rule)
        part_spec = sections.api if part == "api" else sections.site
        artifact = part_spec.artifact if part_spec else None
    inputs = [i.name for i in action.input_artifacts]
    if len(inputs) != 1:
        yield Issue(f"{path}.inputArtifacts", f"{provider} takes exactly one input artifact")
    elif artifact is not None and inputs[0] != artifact:
        rule = f"must be {artifact!r}, the artifact the manifest names for it"
        yield Issue(f"{path}.inputArtifacts[0].name", rule)


def _named_in(path: str, value: str | None, known: set[str]) -> Iterator[Issue]:
    if value is None:
        yield Issue(path, "is required")
    elif value not in known:
        yield Issue(
            path, f"{value!r} is not declared (declared: {', '.join(sorted(known)) or 'none'})"
        )


def _test_rules(where: str, config: Mapping[str, str]) -> Iterator[Issue]:
    if ("Commands" in config) == ("BuildSpec" in config):
        yield Issue(where, "CaravanTest needs exactly one of Commands and BuildSpec")
    if "Commands" in config:
        try:
            commands = json.loads(config["Commands"])
        except json.JSONDecodeError:
            commands = None
        valid = (
            isinstance(commands, list)
            and commands
            and all(isinstance(c, str) and c for c in commands)
        )
        if not valid:
            yield Issue(f"{where}.Commands", "must be a JSON list of command strings")

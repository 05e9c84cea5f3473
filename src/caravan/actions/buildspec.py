"""The CodeBuild buildspec (version 0.2): parse YAML text into a frozen model.

Supported: ``version``; ``env.variables``, ``env.exported-variables``, ``env.shell``;
``phases.{install,pre_build,build,post_build}`` with ``commands``, ``finally`` and
``on-failure``; ``artifacts`` (``files``, ``base-directory``, ``discard-paths``,
``exclude-paths``, ``name``) and ``secondary-artifacts``. Keys CodeBuild knows but caravan does
not need (``cache``, ``reports``, ``runtime-versions``, ...) are accepted and reported as
warnings; any other key is an error naming its path. All problems are reported at once.

Plain YAML scalars are read as text, never as numbers or booleans: ``version: 0.2`` stays
"0.2", ``VERSION: 1.10`` stays "1.10", and ``- yes`` is the command ``yes`` (as CodeBuild,
which decodes the buildspec into string fields, does).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import yaml

from caravan.errors import InvalidInputError

PHASE_NAMES = ("install", "pre_build", "build", "post_build")
SHELLS = ("sh", "bash")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ARTIFACT_ID = re.compile(r"[A-Za-z0-9_]+\Z")

# Known to CodeBuild, meaningless or not yet needed locally: accepted with a warning.
_IGNORED_TOP = ("run-as", "proxy", "reports", "cache")
_IGNORED_ENV = ("git-credential-helper",)
_IGNORED_PHASE = ("run-as", "runtime-versions")
_IGNORED_ARTIFACT = ("s3-prefix", "enable-symlinks")
# Known to CodeBuild, but ignoring them would silently change what the build sees.
_UNSUPPORTED = {
    "batch": "batch builds are not supported",
    "env.parameter-store": "Parameter Store variables are not supported; use env.variables",
    "env.secrets-manager": "Secrets Manager variables are not supported; use env.variables",
}


class OnFailure(StrEnum):
    ABORT = "ABORT"
    CONTINUE = "CONTINUE"


@dataclass(frozen=True)
class Phase:
    commands: tuple[str, ...] = ()
    finally_: tuple[str, ...] = ()
    on_failure: OnFailure = OnFailure.ABORT


@dataclass(frozen=True)
class ArtifactSpec:
    """What to collect into one output artifact, relative to the primary source directory."""

    files: tuple[str, ...]
    base_directory: str | None = None
    discard_paths: bool = False
    exclude_paths: tuple[str, ...] = ()
    name: str | None = None  # accepted, unused: CodePipeline names the artifact


@dataclass(frozen=True)
class Buildspec:
    version: str = "0.2"
    variables: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    exported_variables: tuple[str, ...] = ()
    shell: str = "sh"
    phases: Mapping[str, Phase] = field(default_factory=lambda: MappingProxyType({}))
    artifacts: ArtifactSpec | None = None
    secondary_artifacts: Mapping[str, ArtifactSpec] = field(
        default_factory=lambda: MappingProxyType({})
    )
    warnings: tuple[str, ...] = ()  # ignored keys, for the build log


class _TextLoader(yaml.SafeLoader):
    """A safe loader whose plain scalars all stay strings."""


_TextLoader.yaml_implicit_resolvers = {}


def parse_buildspec(text: str, *, source: str = "buildspec") -> Buildspec:
    """Parse buildspec YAML. Raises InvalidInputError listing every problem with its path."""
    try:
        document = yaml.load(text, Loader=_TextLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidInputError(f"{source}: invalid YAML{where}: {problem}") from None
    parser = _Parser()
    spec = parser.document(document)
    if parser.issues:
        raise _error(source, parser.issues)
    return spec


def _error(source: str, issues: list[str]) -> InvalidInputError:
    if len(issues) == 1:
        return InvalidInputError(f"{source} {issues[0]}")
    lines = "\n".join(f"  {issue}" for issue in issues)
    return InvalidInputError(f"{source} has {len(issues)} problems:\n{lines}")


class _Parser:
    """Walks the YAML document, collecting issues ("path: rule") and warnings."""

    def __init__(self) -> None:
        self.issues: list[str] = []
        self.warnings: list[str] = []

    def issue(self, path: str, rule: str) -> None:
        self.issues.append(f"{path}: {rule}" if path else rule)

    def document(self, doc: Any) -> Buildspec:
        if doc is None or doc == "":
            self.issue("", "is empty")
            return Buildspec()
        if not isinstance(doc, dict):
            self.issue("", "must be a mapping with version and phases")
            return Buildspec()
        self.keys(doc, "", ("version", "env", "phases", "artifacts"), _IGNORED_TOP)
        version = self.version(doc.get("version"))
        if "phases" not in doc:
            self.issue("phases", "is required")
        env = self.mapping(doc.get("env"), "env")
        self.keys(env, "env", ("variables", "exported-variables", "shell"), _IGNORED_ENV)
        artifacts = self.mapping(doc.get("artifacts"), "artifacts") if "artifacts" in doc else None
        return Buildspec(
            version=version,
            variables=MappingProxyType(self.variables(env.get("variables"))),
            exported_variables=self.exported(env.get("exported-variables")),
            shell=self.shell(env.get("shell")),
            phases=MappingProxyType(self.phases(doc.get("phases"))),
            artifacts=self.artifact(artifacts, "artifacts") if artifacts is not None else None,
            secondary_artifacts=MappingProxyType(self.secondary(artifacts or {})),
            warnings=tuple(self.warnings),
        )

    def keys(
        self, node: dict[str, Any], path: str, known: tuple[str, ...], ignored: tuple[str, ...]
    ) -> None:
        for key in node:
            where = f"{path}.{key}" if path else str(key)
            if key in known:
                continue
            if where in _UNSUPPORTED:
                self.issue(where, _UNSUPPORTED[where])
            elif key in ignored:
                self.warnings.append(f"{where} is ignored by caravan")
            else:
                self.issue(where, "unknown key")

    def mapping(self, node: Any, path: str) -> dict[str, Any]:
        if node is None or node == "":
            return {}
        if not isinstance(node, dict):
            self.issue(path, "must be a mapping")
            return {}
        return node

    def strings(self, node: Any, path: str) -> tuple[str, ...]:
        if node is None or node == "":
            return ()
        if not isinstance(node, list):
            self.issue(path, "must be a list")
            return ()
        out: list[str] = []
        for index, item in enumerate(node):
            if isinstance(item, str):
                out.append(item)
            else:
                # The classic trap: `- echo key: value` is a YAML mapping, not a command.
                self.issue(f"{path}[{index}]", "must be a string (quote it if it contains ': ')")
        return tuple(out)

    def version(self, node: Any) -> str:
        if node is None:
            self.issue("version", "is required (use 0.2)")
        elif node == "0.1":
            self.issue("version", "only version 0.2 is supported")
        elif node != "0.2":
            self.issue("version", f"unsupported version {node!r}; only 0.2 is supported")
        return "0.2"

    def variables(self, node: Any) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in self.mapping(node, "env.variables").items():
            path = f"env.variables.{name}"
            if not name or "=" in name or "\0" in name:
                self.issue(path, "is not a valid environment variable name")
            elif not isinstance(value, str):
                self.issue(path, "must be a string")
            elif name.startswith("CODEBUILD_"):
                self.issue(path, "the CODEBUILD_ prefix is reserved")
            else:
                out[name] = value
        return out

    def exported(self, node: Any) -> tuple[str, ...]:
        names = self.strings(node, "env.exported-variables")
        for index, name in enumerate(names):
            if not _IDENTIFIER.match(name):
                self.issue(f"env.exported-variables[{index}]", f"{name!r} is not a variable name")
        return names

    def shell(self, node: Any) -> str:
        if node is None:
            return "sh"
        if node not in SHELLS:
            self.issue("env.shell", f"must be one of {', '.join(SHELLS)}")
            return "sh"
        return str(node)

    def phases(self, node: Any) -> dict[str, Phase]:
        out: dict[str, Phase] = {}
        for name, body in self.mapping(node, "phases").items():
            if name not in PHASE_NAMES:
                self.issue(f"phases.{name}", f"unknown phase (expected {', '.join(PHASE_NAMES)})")
                continue
            path = f"phases.{name}"
            body = self.mapping(body, path)
            self.keys(body, path, ("commands", "finally", "on-failure"), _IGNORED_PHASE)
            out[name] = Phase(
                commands=self.strings(body.get("commands"), f"{path}.commands"),
                finally_=self.strings(body.get("finally"), f"{path}.finally"),
                on_failure=self.on_failure(body.get("on-failure"), f"{path}.on-failure"),
            )
        return {name: out[name] for name in PHASE_NAMES if name in out}

    def on_failure(self, node: Any, path: str) -> OnFailure:
        if node is None:
            return OnFailure.ABORT
        if isinstance(node, str) and node.upper() in OnFailure.__members__:
            return OnFailure(node.upper())
        self.issue(path, "must be ABORT or CONTINUE")
        return OnFailure.ABORT

    def artifact(self, node: dict[str, Any], path: str) -> ArtifactSpec:
        known: tuple[str, ...] = ("files", "base-directory", "discard-paths", "exclude-paths")
        known += ("name", "secondary-artifacts") if path == "artifacts" else ("name",)
        self.keys(node, path, known, _IGNORED_ARTIFACT)
        files = self.strings(node.get("files"), f"{path}.files")
        if not files:
            self.issue(f"{path}.files", "is required (a list of paths or globs)")
        base = node.get("base-directory")
        if base is not None and not isinstance(base, str):
            self.issue(f"{path}.base-directory", "must be a string")
            base = None
        return ArtifactSpec(
            files=files,
            base_directory=base or None,
            discard_paths=self.yes_no(node.get("discard-paths"), f"{path}.discard-paths"),
            exclude_paths=self.strings(node.get("exclude-paths"), f"{path}.exclude-paths"),
            name=node["name"] if isinstance(node.get("name"), str) else None,
        )

    def secondary(self, artifacts: dict[str, Any]) -> dict[str, ArtifactSpec]:
        out: dict[str, ArtifactSpec] = {}
        node = self.mapping(artifacts.get("secondary-artifacts"), "artifacts.secondary-artifacts")
        for ident, body in node.items():
            path = f"artifacts.secondary-artifacts.{ident}"
            if not _ARTIFACT_ID.match(ident):
                self.issue(path, "an artifact identifier has only letters, digits and _")
            out[ident] = self.artifact(self.mapping(body, path), path)
        return out

    def yes_no(self, node: Any, path: str) -> bool:
        if node is None:
            return False
        if isinstance(node, str) and node.lower() in ("yes", "true"):
            return True
        if isinstance(node, str) and node.lower() in ("no", "false"):
            return False
        self.issue(path, "must be yes or no")
        return False

"""The app manifest, ``caravan.yml``: an app's functions, API, site, environments and pipeline.

It is the local counterpart of the seed's one CloudFormation stack (seed-system.md §3): what to
run (functions), how it is reached (an OpenAPI definition, a static site, host names per
environment) and how it is delivered (a CodePipeline declaration under ``pipeline``, camelCase
or PascalCase). ``docs/manifest.md`` is the user's reference; the rules in brief:

* keys are camelCase and unknown keys are errors; every problem is reported at once, each at its
  path (``functions.api.memorySize``, ``environments.prod.release.percent``,
  ``pipeline.stages[2].actions[0].configuration.Function``);
* ``environments`` may be omitted: it then means ``test`` and ``prod`` with their defaults. When
  given, it names any environments (at least one); names are unique by construction (a mapping,
  and duplicate keys are refused). Each environment's ``hosts`` default to
  ``<environment>.<app>.localhost``; any valid DNS name is accepted (names outside
  ``.localhost`` need the user's DNS or hosts file to reach caravan). Its Lambda alias is its
  name, and the stage variable ``alias`` defaults to it;
* every ``artifact`` named by a function, the API or the site is an output artifact of some
  pipeline action, and caravan's deploy actions (``ACTION_TYPES``) name declared functions and
  environments and take the matching artifact;
* the pipeline is checked by the declaration model itself; its issues carry a ``pipeline.``
  prefix. Its ``name`` defaults to the app's.

Pure apart from ``load_manifest`` reading the file it is given.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel

from caravan.errors import DeclarationError, InvalidInputError, Issue
from caravan.model.declaration import ActionDeclaration, PipelineDocument
from caravan.model.loader import load_data, parse_text

# Deploy action types of the manifest's pipeline (category, owner, provider, version).
FUNCTION_ACTION = ("Deploy", "Custom", "CaravanFunction", "1")
API_ACTION = ("Deploy", "Custom", "CaravanApi", "1")
SITE_ACTION = ("Deploy", "Custom", "CaravanSite", "1")
TEST_ACTION = ("Test", "Custom", "CaravanTest", "1")
ACTION_TYPES = (FUNCTION_ACTION, API_ACTION, SITE_ACTION, TEST_ACTION)

DEFAULT_ENVIRONMENTS = ("test", "prod")
DEFAULT_ENVIRONMENTS_DATA: dict[str, Any] = dict.fromkeys(DEFAULT_ENVIRONMENTS)
DEFAULT_PERCENT, DEFAULT_INTERVAL = 10, 30  # Canary and Linear without percent or interval
# Lambda's rules (mirrored from caravan.platform.functions.rules, which model/ cannot import).
PYTHON_RUNTIMES = ("python3.9", "python3.10", "python3.11", "python3.12", "python3.13")
MAX_ENVIRONMENT_BYTES = 4096
RESERVED_ENVIRONMENT = frozenset(
    {"_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV"}
    | {"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_RUNTIME_API"}
    | {"AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE", "LAMBDA_TASK_ROOT"}
    | {"AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "LAMBDA_RUNTIME_DIR"}
    | {"AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
)

# The app name and a function's logical name make the function name "<app>-<name>", which must
# fit Lambda's 64 characters; both are DNS labels so hosts can be derived from them.
APP_NAME = r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$"
FUNCTION_NAME = r"^[a-z0-9]([a-z0-9-]{0,21}[a-z0-9])?$"
ENVIRONMENT_NAME = r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$"
HANDLER = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$"
ARTIFACT = r"^[A-Za-z0-9_-]{1,100}$"
_ENV_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]+")
_STAGE_VARIABLE_KEY = re.compile(r"[A-Za-z0-9_]{1,64}")
_STAGE_VARIABLE_VALUE = re.compile(r"[A-Za-z0-9\-._~:/?#&=,]{1,512}")
_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
# Placeholders in a function's environment values, replaced when the function is deployed.
PLACEHOLDERS = ("dataDir",)  # the app's persistent data directory on the machine running it
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")

AppName = Annotated[str, StringConstraints(pattern=APP_NAME)]

T = TypeVar("T")


class ManifestError(DeclarationError):
    """An app manifest that breaks one or more rules; every issue is listed with its path."""

    reference = "invalid-manifest"

    def __init__(self, issues: list[Issue], *, source: str | None = None) -> None:
        super().__init__(issues, source=source)
        where = f" in {source}" if source else ""
        noun = "problem" if len(self.issues) == 1 else "problems"
        lines = "\n".join(f"  {issue}" for issue in self.issues)
        self.message = f"app manifest{where} has {len(self.issues)} {noun}:\n{lines}"
        self.args = (self.message,)


def _as_text(value: Any) -> Any:
    """YAML's ``LOG_LEVEL: 1`` or ``DEBUG: true`` as the strings Lambda and API Gateway hold."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float) else value


def _text_map(value: Any) -> Any:
    return {k: _as_text(v) for k, v in value.items()} if isinstance(value, dict) else value


def _relative_path(value: str) -> str:
    path = PurePosixPath(value)
    if not value or "\\" in value or path.is_absolute() or ".." in path.parts:
        raise ValueError(f"{value!r} must be a relative path inside the artifact, without '..'")
    return str(path)


class ManifestModel(BaseModel):
    """Base of the manifest's models: frozen, camelCase keys, unknown keys refused."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
    )


class FunctionSpec(ManifestModel):
    """One function: deployed as ``<app>-<logical name>`` from the code in ``artifact``."""

    handler: str = Field(pattern=HANDLER)  # module.function, as Lambda's Python runtime reads it
    runtime: Literal["python3.9", "python3.10", "python3.11", "python3.12", "python3.13"] = (
        "python3.11"
    )
    memory_size: int = Field(default=128, ge=128, le=10240)
    timeout: int = Field(default=3, ge=1, le=900)  # seconds; Lambda's default is 3
    environment: dict[str, str] = Field(default_factory=dict)
    description: str | None = Field(default=None, max_length=256)
    artifact: str = Field(pattern=ARTIFACT)  # the pipeline output artifact holding the code
    path: str | None = None  # the code's folder inside the artifact (default: its root)

    @field_validator("environment", mode="before")
    @classmethod
    def _scalars(cls, value: Any) -> Any:
        return _text_map(value)

    @field_validator("environment")
    @classmethod
    def _lambda_environment(cls, value: dict[str, str]) -> dict[str, str]:
        problems = [
            f"name {k!r} must match [a-zA-Z]([a-zA-Z0-9_])+"
            for k in value
            if not _ENV_KEY.fullmatch(k)
        ]
        problems += [
            f"{k} is reserved by Lambda" for k in sorted(set(value) & RESERVED_ENVIRONMENT)
        ]
        for key, text in value.items():
            for name in set(_PLACEHOLDER.findall(text)) - set(PLACEHOLDERS):
                known = ", ".join(f"${{{p}}}" for p in PLACEHOLDERS)
                problems.append(f"{key}: unknown placeholder ${{{name}}} (known: {known})")
        size = sum(len(k.encode()) + len(v.encode()) for k, v in value.items())
        if size > MAX_ENVIRONMENT_BYTES:
            problems.append(f"must be at most {MAX_ENVIRONMENT_BYTES} bytes, found {size}")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    def resolved_environment(self, *, data_dir: str) -> dict[str, str]:
        """``environment`` with its placeholders replaced, as the deploy sets it on the function."""
        values = {"dataDir": data_dir}
        return {
            key: _PLACEHOLDER.sub(lambda match: values[match.group(1)], text)
            for key, text in self.environment.items()
        }

    @field_validator("path")
    @classmethod
    def _inside(cls, value: str | None) -> str | None:
        return None if value is None else _relative_path(value)


class ApiSpec(ManifestModel):
    """The API: an OpenAPI 3 / Swagger 2 file with x-amazon-apigateway-integration."""

    definition: str  # the file's path in the repository and inside ``artifact``
    artifact: str = Field(pattern=ARTIFACT)

    @field_validator("definition")
    @classmethod
    def _inside(cls, value: str) -> str:
        return _relative_path(value)


class SiteSpec(ManifestModel):
    """The static site, published with a generated ``config.json``."""

    artifact: str = Field(pattern=ARTIFACT)
    path: str | None = None  # the site's folder inside the artifact (default: its root)

    @field_validator("path")
    @classmethod
    def _inside(cls, value: str | None) -> str | None:
        return None if value is None else _relative_path(value)


class ReleaseStrategy(StrEnum):
    ALL_AT_ONCE = "AllAtOnce"  # 100% at once; ``interval`` (optional) is a watched bake time
    CANARY = "Canary"  # ``percent`` for ``interval`` seconds, then 100%
    LINEAR = "Linear"  # +``percent`` every ``interval`` seconds up to 100%
    BLUE_GREEN = "BlueGreen"  # new version checked with no traffic, then 100%; old kept warm


class HealthCheck(ManifestModel):
    """When the new version counts as healthy, judged on its own requests while it takes traffic.

    Fewer than ``minRequests`` requests in a wait give the verdict ``noTraffic``: ``pass``
    (healthy), ``fail`` (roll back) or ``wait`` (keep waiting until enough requests arrive or
    the action times out)."""

    max_error_rate: float = Field(default=0.05, ge=0.0, le=1.0)  # 5xx responses / requests
    max_latency_p99_ms: int | None = Field(default=None, ge=1)
    min_requests: int = Field(default=0, ge=0)
    no_traffic: Literal["pass", "fail", "wait"] = "pass"


class ReleaseHooks(ManifestModel):
    """Shell commands run with TARGET_URL set; a failing command rolls the release back."""

    pre_traffic: list[str] | None = None  # against the new version, before it takes traffic
    post_traffic: list[str] | None = None  # after it takes all the traffic

    @field_validator("pre_traffic", "post_traffic", mode="before")
    @classmethod
    def _one_command(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


@dataclass(frozen=True)
class TrafficStep:
    """Move ``percent`` of the traffic to the new version, then watch for ``wait_seconds``."""

    percent: int
    wait_seconds: int


class ReleasePolicy(ManifestModel):
    """How an environment's alias moves to a new version."""

    strategy: ReleaseStrategy = ReleaseStrategy.ALL_AT_ONCE
    percent: int | None = Field(default=None, ge=1, le=99)  # Canary and Linear only
    interval: int | None = Field(default=None, ge=1)  # seconds
    health_check: HealthCheck | None = None  # None: time alone decides
    hooks: ReleaseHooks = Field(default_factory=ReleaseHooks)

    @property
    def gradual(self) -> bool:
        return self.strategy in (ReleaseStrategy.CANARY, ReleaseStrategy.LINEAR)

    def steps(self) -> tuple[TrafficStep, ...]:
        """The traffic shifts in order; the last one is always 100%."""
        if not self.gradual:
            return (TrafficStep(100, self.interval or 0),)
        percent = self.percent or DEFAULT_PERCENT
        interval = self.interval or DEFAULT_INTERVAL
        if self.strategy is ReleaseStrategy.CANARY:
            return (TrafficStep(percent, interval), TrafficStep(100, 0))
        shares = range(percent, 100, percent)
        return (*(TrafficStep(share, interval) for share in shares), TrafficStep(100, 0))


class Environment(ManifestModel):
    """One environment (``test``, ``prod``): an API stage, a site, an alias, its data."""

    hosts: list[str] | None = None  # None: ["<environment>.<app>.localhost"]
    stage_variables: dict[str, str] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)  # free-form, the app's own settings
    release: ReleasePolicy = Field(default_factory=ReleasePolicy)

    @field_validator("stage_variables", mode="before")
    @classmethod
    def _scalars(cls, value: Any) -> Any:
        return _text_map(value)

    @field_validator("hosts")
    @classmethod
    def _dns_names(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        hosts = [host.lower().removesuffix(".") for host in value]
        for host in hosts:
            labels = host.split(".")
            if len(host) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
                raise ValueError(f"{host!r} is not a valid DNS host name (no port, no scheme)")
        return hosts

    @field_validator("stage_variables")
    @classmethod
    def _stage_variables(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if not _STAGE_VARIABLE_KEY.fullmatch(key):
                raise ValueError(f"variable name {key!r} must match [A-Za-z0-9_]{{1,64}}")
            if not _STAGE_VARIABLE_VALUE.fullmatch(text):
                raise ValueError(
                    f"the value of {key!r} must be 1-512 characters of A-Za-z0-9-._~:/?#&=,"
                )
        return value


class AppManifest(ManifestModel):
    """A checked manifest; build one with ``load_manifest`` or ``manifest_from_data``."""

    app: AppName
    functions: dict[str, FunctionSpec]
    api: ApiSpec | None = None
    site: SiteSpec | None = None
    environments: dict[str, Environment]
    pipeline: PipelineDocument
    source: str | None = Field(default=None, exclude=True)  # file name, for messages

    def function_name(self, logical: str) -> str:
        """The platform function a logical name deploys to: ``<app>-<name>``."""
        return f"{self.app}-{logical}"

    @property
    def api_name(self) -> str:
        """The API's name on the platform; each environment is one of its stages."""
        return self.app

    def site_name(self, environment: str) -> str:
        return f"{self.app}-{environment}"

    def environment(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(self.environments)
            raise InvalidInputError(
                f"app {self.app!r} has no environment {name!r} (environments: {known})"
            ) from None


# Loading -------------------------------------------------------------------------------------

TOP_LEVEL = ("app", "functions", "api", "site", "environments", "pipeline")
BESIDE_PIPELINE = ("buildProjects", "tags", "disabledInboundTransitions")


def load_manifest(
    path_or_text: str | os.PathLike[str], *, source: str | None = None
) -> AppManifest:
    """Read and check a manifest: a path (``os.PathLike``, or a one-line ``str`` not starting
    with ``{``) or the manifest's YAML/JSON text (a ``str`` with a line break or a ``{``)."""
    if isinstance(path_or_text, str) and ("\n" in path_or_text or path_or_text.startswith("{")):
        return manifest_from_data(_parse(path_or_text, source), source=source)
    name = source or os.fspath(path_or_text)
    try:
        text = Path(path_or_text).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ManifestError([Issue("", "the file is not UTF-8 text")], source=name) from None
    except OSError as error:
        reason = error.strerror or error
        raise InvalidInputError(f"cannot read app manifest {name}: {reason}") from None
    return manifest_from_data(_parse(text, name), source=name)


def _parse(text: str, source: str | None) -> Any:
    try:
        return parse_text(text, source=source)
    except DeclarationError as error:  # a syntax error, reported as the manifest's
        raise ManifestError(error.issues, source=source) from None


def manifest_from_data(data: Any, *, source: str | None = None) -> AppManifest:
    """Check parsed manifest data; ``ManifestError`` lists every problem."""
    if not isinstance(data, dict):
        issue = Issue("", "the manifest must be a mapping (a YAML mapping or JSON object)")
        raise ManifestError([issue], source=source)
    issues: list[Issue] = []
    for key in data:
        if key not in TOP_LEVEL + BESIDE_PIPELINE:
            expected = ", ".join(TOP_LEVEL + BESIDE_PIPELINE)
            issues.append(Issue(str(key), f"unknown top-level key (expected {expected})"))
    for key in ("app", "functions", "pipeline"):
        if key not in data:
            issues.append(Issue(key, "is required"))
    sections = _Sections.check(data, issues)
    document = _pipeline(data, sections.app, source, issues)
    issues.extend(_environment_rules(sections.environments))
    issues.extend(_artifact_rules(data))
    if document is not None:
        issues.extend(_action_rules(document, sections))
    if issues or sections.app is None or document is None:
        raise ManifestError(issues, source=source)
    return AppManifest(
        app=sections.app,
        functions=sections.functions,
        api=sections.api,
        site=sections.site,
        environments=sections.environments,
        pipeline=document,
        source=source,
    )


@dataclass
class _Sections:
    """The sections that passed their checks, and every name declared (valid or not), so that
    the rules across sections neither stop at a broken entry nor report it twice."""

    app: str | None
    functions: dict[str, FunctionSpec]
    function_names: set[str]
    api: ApiSpec | None
    site: SiteSpec | None
    declared: set[str]  # the top-level sections present
    environments: dict[str, Environment]
    environment_names: set[str]

    @classmethod
    def check(cls, data: Mapping[str, Any], issues: list[Issue]) -> _Sections:
        app = _check(_APP, data["app"], "app", issues) if "app" in data else None
        raw_functions = data.get("functions", {})
        functions = (  # a missing key is already an issue
            _entries(raw_functions, "functions", FUNCTION_NAME, _FUNCTION, issues)
            if "functions" in data
            else {}
        )
        api = _optional(_API, data.get("api"), "api", issues)
        site = _optional(_SITE, data.get("site"), "site", issues)
        raw = data.get("environments", DEFAULT_ENVIRONMENTS_DATA)
        environments = _entries(raw, "environments", ENVIRONMENT_NAME, _ENVIRONMENT, issues)
        return cls(
            app=app,
            functions=functions,
            function_names=_names(raw_functions),
            api=api,
            site=site,
            declared={key for key in TOP_LEVEL if data.get(key) is not None},
            environments={n: _with_defaults(n, e, app) for n, e in environments.items()},
            environment_names=_names(raw),
        )


_APP: TypeAdapter[str] = TypeAdapter(AppName)
_FUNCTION = TypeAdapter(FunctionSpec)
_API = TypeAdapter(ApiSpec)
_SITE = TypeAdapter(SiteSpec)
_ENVIRONMENT = TypeAdapter(Environment)

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


def _check(adapter: TypeAdapter[T], value: Any, prefix: str, issues: list[Issue]) -> T | None:
    try:
        return adapter.validate_python(value)
    except ValidationError as error:
        for e in error.errors(include_url=False):
            path = prefix
            for part in e["loc"]:
                path = f"{path}[{part}]" if isinstance(part, int) else f"{path}.{part}"
            issues.append(Issue(path, _rule(e)))
        return None


def _optional(adapter: TypeAdapter[T], value: Any, prefix: str, issues: list[Issue]) -> T | None:
    return None if value is None else _check(adapter, value, prefix, issues)


def _names(value: Any) -> set[str]:
    return {str(name) for name in value} if isinstance(value, dict) else set()


def _entries(
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
        checked = _check(adapter, {} if body is None else body, f"{prefix}.{name}", issues)
        if checked is not None:
            result[str(name)] = checked
    return result


def _with_defaults(name: str, environment: Environment, app: str | None) -> Environment:
    update: dict[str, Any] = {}
    if environment.hosts is None and app is not None:
        update["hosts"] = [f"{name}.{app}.localhost"]
    if "alias" not in environment.stage_variables:
        update["stage_variables"] = {"alias": name, **environment.stage_variables}
    return environment.model_copy(update=update)


def _pipeline(
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


# Rules across sections -----------------------------------------------------------------------


def _environment_rules(environments: Mapping[str, Environment]) -> Iterator[Issue]:
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


def _artifact_rules(data: Mapping[str, Any]) -> Iterator[Issue]:
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


def _action_rules(document: PipelineDocument, sections: _Sections) -> Iterator[Issue]:
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


def _deploy_rules(path: str, action: ActionDeclaration, sections: _Sections) -> Iterator[Issue]:
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

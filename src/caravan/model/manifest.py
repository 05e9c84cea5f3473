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
  pipeline action, and caravan's deploy actions (``ACTION_TYPES`` in
  ``caravan.model.manifest_rules``) name declared functions and environments and take the
  matching artifact;
* the pipeline is checked by the declaration model itself; its issues carry a ``pipeline.``
  prefix. Its ``name`` defaults to the app's.

This module owns the models and the loading; each section's own checks turn into issues in
``caravan.model.manifest_checks`` and the rules across sections live in
``caravan.model.manifest_rules``. Pure apart from ``load_manifest`` reading the file it is given.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
)
from pydantic.alias_generators import to_camel

from caravan.errors import DeclarationError, InvalidInputError, Issue
from caravan.model.declaration import PipelineDocument
from caravan.model.loader import parse_text
from caravan.model.manifest_checks import (
    BESIDE_PIPELINE,
    check_entries,
    check_optional,
    check_pipeline,
    check_value,
    entry_names,
)
from caravan.model.manifest_rules import action_rules, artifact_rules, environment_rules

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
    sections = Sections.check(data, issues)
    document = check_pipeline(data, sections.app, source, issues)
    issues.extend(environment_rules(sections.environments))
    issues.extend(artifact_rules(data))
    if document is not None:
        issues.extend(action_rules(document, sections))
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
class Sections:
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
    def check(cls, data: Mapping[str, Any], issues: list[Issue]) -> Sections:
        app = check_value(_APP, data["app"], "app", issues) if "app" in data else None
        raw_functions = data.get("functions", {})
        functions = (  # a missing key is already an issue
            check_entries(raw_functions, "functions", FUNCTION_NAME, _FUNCTION, issues)
            if "functions" in data
            else {}
        )
        api = check_optional(_API, data.get("api"), "api", issues)
        site = check_optional(_SITE, data.get("site"), "site", issues)
        raw = data.get("environments", DEFAULT_ENVIRONMENTS_DATA)
        environments = check_entries(raw, "environments", ENVIRONMENT_NAME, _ENVIRONMENT, issues)
        return cls(
            app=app,
            functions=functions,
            function_names=entry_names(raw_functions),
            api=api,
            site=site,
            declared={key for key in TOP_LEVEL if data.get(key) is not None},
            environments={n: _with_defaults(n, e, app) for n, e in environments.items()},
            environment_names=entry_names(raw),
        )


_APP: TypeAdapter[str] = TypeAdapter(AppName)
_FUNCTION = TypeAdapter(FunctionSpec)
_API = TypeAdapter(ApiSpec)
_SITE = TypeAdapter(SiteSpec)
_ENVIRONMENT = TypeAdapter(Environment)


def _with_defaults(name: str, environment: Environment, app: str | None) -> Environment:
    update: dict[str, Any] = {}
    if environment.hosts is None and app is not None:
        update["hosts"] = [f"{name}.{app}.localhost"]
    if "alias" not in environment.stage_variables:
        update["stage_variables"] = {"alias": name, **environment.stage_variables}
    return environment.model_copy(update=update)

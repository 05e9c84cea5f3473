"""The records of the functions platform and their Lambda API JSON shapes.

A ``VersionRecord`` is one function version: ``$LATEST`` (mutable, replaced on every change) or a
published number (immutable). An ``AliasRecord`` is a named pointer to one version, optionally
sending a weighted share of traffic to a second one. Both serialise to the JSON kept on disk
(``to_json``/``from_json``) and render to the shapes the Lambda API returns
(``FunctionConfiguration``, ``AliasConfiguration``). ARNs are built and parsed here too.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LATEST = "$LATEST"
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "000000000000"  # the account id local AWS emulators conventionally use

# arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]
_ARN = re.compile(
    r"^arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:"
    r"(?P<name>[^:]+)(?::(?P<qualifier>[^:]+))?$"
)
# <account>:function:<name>[:<qualifier>] (the "partial ARN" Lambda also accepts)
_PARTIAL_ARN = re.compile(
    r"^(?P<account>\d{12}):function:(?P<name>[^:]+)(?::(?P<qualifier>[^:]+))?$"
)


@dataclass(frozen=True)
class Scope:
    """The region and account every ARN of one platform is minted in."""

    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT

    def function_arn(self, name: str, qualifier: str | None = None) -> str:
        base = f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"
        return f"{base}:{qualifier}" if qualifier else base


def split_function_name(value: str) -> tuple[str, str | None]:
    """``name``, ``name:qualifier``, a partial or a full ARN -> (name, qualifier or None)."""
    for pattern in (_ARN, _PARTIAL_ARN):
        match = pattern.match(value)
        if match:
            return match["name"], match["qualifier"]
    name, sep, qualifier = value.partition(":")
    return name, (qualifier if sep else None)


def code_sha256(code: bytes) -> str:
    """Lambda's CodeSha256: base64 of the raw SHA-256 digest of the zip (not hex)."""
    return base64.b64encode(hashlib.sha256(code).digest()).decode("ascii")


def new_revision_id() -> str:
    return str(uuid.uuid4())


def lambda_timestamp(moment: datetime | None = None) -> str:
    """Lambda's LastModified format: ``2026-11-26T17:41:11.000+0000``."""
    moment = moment or datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


@dataclass(frozen=True)
class VersionRecord:
    """One function version: its configuration and where its extracted code lives."""

    function_name: str
    version: str  # "$LATEST" or "1", "2", ...
    runtime: str
    handler: str
    memory_size: int
    timeout: int
    environment: Mapping[str, str]
    description: str
    role: str
    code_sha256: str
    code_size: int
    revision_id: str
    last_modified: str
    code_dir: Path  # absolute; the worker's cwd and LAMBDA_TASK_ROOT

    @property
    def is_latest(self) -> bool:
        return self.version == LATEST

    def fingerprint(self) -> tuple[object, ...]:
        """What makes two versions the same for PublishVersion's idempotence: code and the
        settings that change how it runs (descriptions are labels, not behaviour)."""
        return (
            self.code_sha256,
            self.runtime,
            self.handler,
            self.memory_size,
            self.timeout,
            tuple(sorted(self.environment.items())),
            self.role,
        )

    def to_api(self, scope: Scope, *, qualified_arn: bool = True) -> dict[str, Any]:
        """The FunctionConfiguration shape of the Lambda API."""
        qualifier = self.version if qualified_arn or not self.is_latest else None
        return {
            "FunctionName": self.function_name,
            "FunctionArn": scope.function_arn(self.function_name, qualifier),
            "Runtime": self.runtime,
            "Role": self.role,
            "Handler": self.handler,
            "CodeSize": self.code_size,
            "Description": self.description,
            "Timeout": self.timeout,
            "MemorySize": self.memory_size,
            "LastModified": self.last_modified,
            "CodeSha256": self.code_sha256,
            "Version": self.version,
            "Environment": {"Variables": dict(self.environment)},
            "TracingConfig": {"Mode": "PassThrough"},
            "RevisionId": self.revision_id,
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": "Zip",
            "Architectures": ["x86_64"],
            "EphemeralStorage": {"Size": 512},
        }

    def to_json(self) -> dict[str, Any]:
        """The on-disk form; ``code_dir`` is stored relative to the function's directory."""
        return {
            "FunctionName": self.function_name,
            "Version": self.version,
            "Runtime": self.runtime,
            "Handler": self.handler,
            "MemorySize": self.memory_size,
            "Timeout": self.timeout,
            "Environment": dict(self.environment),
            "Description": self.description,
            "Role": self.role,
            "CodeSha256": self.code_sha256,
            "CodeSize": self.code_size,
            "RevisionId": self.revision_id,
            "LastModified": self.last_modified,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], code_dir: Path) -> VersionRecord:
        return cls(
            function_name=data["FunctionName"],
            version=data["Version"],
            runtime=data["Runtime"],
            handler=data["Handler"],
            memory_size=int(data["MemorySize"]),
            timeout=int(data["Timeout"]),
            environment=dict(data["Environment"]),
            description=data["Description"],
            role=data["Role"],
            code_sha256=data["CodeSha256"],
            code_size=int(data["CodeSize"]),
            revision_id=data["RevisionId"],
            last_modified=data["LastModified"],
            code_dir=code_dir,
        )


@dataclass(frozen=True)
class AliasRecord:
    """A named pointer to a version, optionally sharing traffic with one more version."""

    function_name: str
    name: str
    function_version: str
    description: str = ""
    # {"2": 0.1}: version "2" gets 10 % of the traffic, ``function_version`` the rest.
    weights: Mapping[str, float] = field(default_factory=dict)
    revision_id: str = field(default_factory=new_revision_id)

    def versions(self) -> list[str]:
        """Every version this alias can route to (the primary first)."""
        return [self.function_version, *self.weights]

    def to_api(self, scope: Scope) -> dict[str, Any]:
        """The AliasConfiguration shape of the Lambda API."""
        return {
            "AliasArn": scope.function_arn(self.function_name, self.name),
            "Name": self.name,
            "FunctionVersion": self.function_version,
            "Description": self.description,
            "RoutingConfig": {"AdditionalVersionWeights": dict(self.weights)},
            "RevisionId": self.revision_id,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "FunctionName": self.function_name,
            "Name": self.name,
            "FunctionVersion": self.function_version,
            "Description": self.description,
            "AdditionalVersionWeights": dict(self.weights),
            "RevisionId": self.revision_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AliasRecord:
        return cls(
            function_name=data["FunctionName"],
            name=data["Name"],
            function_version=data["FunctionVersion"],
            description=data["Description"],
            weights={str(k): float(v) for k, v in data["AdditionalVersionWeights"].items()},
            revision_id=data["RevisionId"],
        )

"""The function registry: Lambda's control plane over a durable directory.

``FunctionRegistry`` creates and updates functions ($LATEST), publishes immutable versions and
manages aliases with Lambda's rules and guards (CodeSha256, RevisionId compare-and-swap). Answers
are the Lambda API's JSON shapes; the invoke path reads the records (``version``, ``target``).
State lives in memory and is written through to disk (see storage.py) before a call returns, so a
registry reopened on the same directory has the same functions, versions and aliases.

One registry object owns its directory; several processes must not share one. Listeners hear
about changes that make running workers stale ($LATEST replaced, function deleted).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from caravan.platform.functions import rules, storage
from caravan.platform.functions.aliases import REVISION_MISMATCH, AliasOperations
from caravan.platform.functions.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from caravan.platform.functions.records import (
    LATEST,
    AliasRecord,
    Scope,
    VersionRecord,
    code_sha256,
    lambda_timestamp,
    new_revision_id,
    split_function_name,
)


@dataclass(frozen=True)
class RegistryEvent:
    kind: Literal["latest-changed", "deleted"]
    function_name: str


Listener = Callable[[RegistryEvent], None]


@dataclass
class FunctionState:
    latest: VersionRecord
    latest_token: str  # the directory under latest/ holding $LATEST's code
    versions: dict[int, VersionRecord] = field(default_factory=dict)
    aliases: dict[str, AliasRecord] = field(default_factory=dict)


class FunctionRegistry(AliasOperations):
    """Functions, versions and aliases kept under ``root`` (created if missing)."""

    def __init__(self, root: Path, *, scope: Scope | None = None) -> None:
        self.root = Path(root)
        self.scope = scope or Scope()
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._functions: dict[str, FunctionState] = {}
        self._dir = self.root / "functions"
        self._dir.mkdir(parents=True, exist_ok=True)
        self._load()

    # ------------------------------------------------------------------------------ functions

    def create_function(
        self,
        name: str,
        *,
        handler: str,
        code: bytes,
        runtime: str = "python3.11",
        memory_size: int = 128,
        timeout: int = 3,
        environment: Mapping[str, str] | None = None,
        description: str = "",
        role: str | None = None,
        publish: bool = False,
    ) -> dict[str, Any]:
        """CreateFunction: $LATEST from a zip; with ``publish`` the answer is version 1."""
        name = self._plain_name(name)
        settings: dict[str, Any] = {
            "handler": handler,
            "runtime": runtime,
            "memory_size": memory_size,
            "timeout": timeout,
            "environment": dict(environment or {}),
            "description": description,
        }
        rules.check_function_name(name)
        rules.check_settings(settings)
        rules.check_code(code)
        with self._lock:
            if name in self._functions:
                raise ResourceConflictException(
                    f"Function already exist: {name}", hint="use update_function_code instead"
                )
            stage = storage.staging_dir(self._dir)
            token = new_revision_id().replace("-", "")
            try:
                storage.store_code(code, stage / "latest" / token)
                record = VersionRecord(
                    function_name=name,
                    version=LATEST,
                    **settings,
                    role=role or f"arn:aws:iam::{self.scope.account}:role/caravan-function",
                    code_sha256=code_sha256(code),
                    code_size=len(code),
                    revision_id=new_revision_id(),
                    last_modified=lambda_timestamp(),
                    code_dir=self._dir / name / "latest" / token / "code",
                )
                storage.write_json(stage / "function.json", storage.function_json(record, token))
                stage.rename(self._dir / name)
            except BaseException:
                storage.remove_tree(stage)
                raise
            self._functions[name] = FunctionState(latest=record, latest_token=token)
        if publish:
            return self.publish_version(name)
        return record.to_api(self.scope, qualified_arn=False)

    def update_function_code(
        self, name: str, code: bytes, *, publish: bool = False, revision_id: str | None = None
    ) -> dict[str, Any]:
        """UpdateFunctionCode: replace $LATEST's code (guarded by ``revision_id`` if given)."""
        rules.check_code(code)
        name = self._plain_name(name)
        with self._lock:
            fn = self._function(name)
            self._guard_revision(fn.latest, revision_id, "GetFunction")
            fn_dir = self._dir / name
            token = new_revision_id().replace("-", "")
            stage = storage.staging_dir(fn_dir / "latest")
            try:
                storage.store_code(code, stage)
                stage.rename(fn_dir / "latest" / token)
            except BaseException:
                storage.remove_tree(stage)
                raise
            record = replace(
                fn.latest,
                code_sha256=code_sha256(code),
                code_size=len(code),
                code_dir=fn_dir / "latest" / token / "code",
            )
            self._replace_latest(fn, record, token)
        self._emit(RegistryEvent("latest-changed", name))
        if publish:
            return self.publish_version(name)
        return fn.latest.to_api(self.scope, qualified_arn=False)

    def update_function_configuration(
        self,
        name: str,
        *,
        handler: str | None = None,
        runtime: str | None = None,
        memory_size: int | None = None,
        timeout: int | None = None,
        environment: Mapping[str, str] | None = None,
        description: str | None = None,
        role: str | None = None,
        revision_id: str | None = None,
    ) -> dict[str, Any]:
        """UpdateFunctionConfiguration: change $LATEST's settings; ``None`` keeps a setting."""
        name = self._plain_name(name)
        given: dict[str, Any] = {
            "handler": handler,
            "runtime": runtime,
            "memory_size": memory_size,
            "timeout": timeout,
            "environment": None if environment is None else dict(environment),
            "description": description,
            "role": role,
        }
        changes = {key: value for key, value in given.items() if value is not None}
        rules.check_settings(changes)
        with self._lock:
            fn = self._function(name)
            self._guard_revision(fn.latest, revision_id, "GetFunction")
            self._replace_latest(fn, replace(fn.latest, **changes), fn.latest_token)
        self._emit(RegistryEvent("latest-changed", name))
        return fn.latest.to_api(self.scope, qualified_arn=False)

    def publish_version(
        self,
        name: str,
        *,
        code_sha256: str | None = None,
        revision_id: str | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """PublishVersion: snapshot $LATEST (code and configuration) as the next number.

        Idempotent: if $LATEST equals the newest version, that version is the answer.
        """
        name = self._plain_name(name)
        if description is not None:
            rules.check_description(description)
        with self._lock:
            fn = self._function(name)
            latest = fn.latest
            if code_sha256 is not None and code_sha256 != latest.code_sha256:
                raise InvalidParameterValueException(
                    f"CodeSHA256 ({code_sha256}) is different from current CodeSHA256 in "
                    f"$LATEST ({latest.code_sha256}). Please try again with the CodeSHA256 in "
                    "$LATEST."
                )
            self._guard_revision(latest, revision_id, "GetFunction")
            newest = fn.versions[max(fn.versions)] if fn.versions else None
            if newest is not None and newest.fingerprint() == latest.fingerprint():
                return newest.to_api(self.scope)
            number = max(fn.versions, default=0) + 1
            record = self._snapshot(name, latest, number, description)
            fn.versions[number] = record
        return record.to_api(self.scope)

    def get_function(self, name: str, qualifier: str | None = None) -> dict[str, Any]:
        """GetFunction: the configuration and where the code zip is."""
        record, configuration = self._configuration(name, qualifier)
        return {
            "Configuration": configuration,
            "Code": {
                "RepositoryType": "S3",
                "Location": (record.code_dir.parent / "code.zip").as_uri(),
            },
            "Tags": {},
        }

    def get_function_configuration(self, name: str, qualifier: str | None = None) -> dict[str, Any]:
        """GetFunctionConfiguration: a version's (or an alias's version's) configuration; the
        FunctionArn carries the qualifier asked for."""
        return self._configuration(name, qualifier)[1]

    def list_functions(self) -> list[dict[str, Any]]:
        """ListFunctions: every function's $LATEST, sorted by name."""
        with self._lock:
            return [
                self._functions[n].latest.to_api(self.scope, qualified_arn=False)
                for n in sorted(self._functions)
            ]

    def list_versions_by_function(self, name: str) -> list[dict[str, Any]]:
        """ListVersionsByFunction: $LATEST first, then 1, 2, ..."""
        name = self._plain_name(name)
        with self._lock:
            fn = self._function(name)
            records = [fn.latest, *(fn.versions[n] for n in sorted(fn.versions))]
        return [r.to_api(self.scope) for r in records]

    def delete_function(self, name: str) -> None:
        """DeleteFunction: the function, its versions, aliases and code (listeners stop its
        workers)."""
        name = self._plain_name(name)
        with self._lock:
            self._function(name)
            del self._functions[name]
            storage.remove_tree(self._dir / name)
        self._emit(RegistryEvent("deleted", name))

    # --------------------------------------------------------------------- the invoke path

    def version(self, name: str, version: str) -> VersionRecord:
        """The record of ``version`` ("$LATEST" or a number) of function ``name``."""
        with self._lock:
            fn = self._function(name)
            if version == LATEST:
                return fn.latest
            record = fn.versions.get(int(version)) if version.isdigit() else None
        if record is None:
            raise ResourceNotFoundException(
                f"Function not found: {self.scope.function_arn(name, version)}"
            )
        return record

    def target(self, name: str, qualifier: str | None) -> VersionRecord | AliasRecord:
        """What a qualifier names: a version (None means $LATEST) or an alias to route."""
        if qualifier is None or qualifier == LATEST or qualifier.isdigit():
            return self.version(name, qualifier or LATEST)
        return self.alias(name, qualifier)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # ------------------------------------------------------------------------------- helpers

    def _plain_name(self, function_name: str) -> str:
        name, qualifier = split_function_name(function_name)
        if qualifier is not None:
            raise InvalidParameterValueException(
                f"FunctionName {function_name!r}: this operation takes an unqualified function "
                "name or ARN"
            )
        return name

    def _function(self, name: str) -> FunctionState:
        fn = self._functions.get(name)
        if fn is None:
            raise ResourceNotFoundException(f"Function not found: {self.scope.function_arn(name)}")
        return fn

    def _configuration(
        self, function_name: str, qualifier: str | None
    ) -> tuple[VersionRecord, dict[str, Any]]:
        name, embedded = split_function_name(function_name)
        if embedded is not None and qualifier is not None and embedded != qualifier:
            raise InvalidParameterValueException(
                "The derived qualifier from the function name does not match the specified "
                f"qualifier ({embedded!r} vs {qualifier!r})."
            )
        qualifier = qualifier or embedded
        found = self.target(name, qualifier)
        record = (
            self.version(name, found.function_version) if isinstance(found, AliasRecord) else found
        )
        configuration = record.to_api(self.scope, qualified_arn=qualifier is not None)
        if qualifier is not None:
            configuration["FunctionArn"] = self.scope.function_arn(name, qualifier)
        return record, configuration

    def _guard_revision(self, record: VersionRecord, revision_id: str | None, api: str) -> None:
        if revision_id is not None and revision_id != record.revision_id:
            raise PreconditionFailedException(REVISION_MISMATCH.format(api=api))

    def _replace_latest(self, fn: FunctionState, record: VersionRecord, token: str) -> None:
        record = replace(record, revision_id=new_revision_id(), last_modified=lambda_timestamp())
        fn_dir = self._dir / record.function_name
        storage.write_json(fn_dir / "function.json", storage.function_json(record, token))
        previous = fn.latest_token
        fn.latest, fn.latest_token = record, token
        if token == previous:
            return
        # Keep the previous $LATEST code for invocations still running on it; drop older ones.
        keep = {token, previous}
        for child in (fn_dir / "latest").iterdir():
            if child.name not in keep and not child.name.startswith("."):
                storage.remove_tree(child)

    def _snapshot(
        self, name: str, latest: VersionRecord, number: int, description: str | None
    ) -> VersionRecord:
        versions = self._dir / name / "versions"
        final = versions / str(number)
        stage = storage.staging_dir(versions)
        try:
            storage.store_code((latest.code_dir.parent / "code.zip").read_bytes(), stage)
            record = replace(
                latest,
                version=str(number),
                description=latest.description if description is None else description,
                revision_id=new_revision_id(),
                last_modified=lambda_timestamp(),
                code_dir=final / "code",
            )
            storage.write_json(stage / "config.json", record.to_json())
            stage.rename(final)
        except BaseException:
            storage.remove_tree(stage)
            raise
        return record

    def _emit(self, event: RegistryEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    def _load(self) -> None:
        storage.sweep_leftovers(self._dir)
        for fn_dir in sorted(self._dir.iterdir()):
            if fn_dir.name.startswith(".") or not (fn_dir / "function.json").is_file():
                continue
            latest, token, versions, aliases = storage.load_function(fn_dir)
            self._functions[fn_dir.name] = FunctionState(
                latest=latest,
                latest_token=token,
                versions={int(v.version): v for v in versions},
                aliases={a.name: a for a in aliases},
            )

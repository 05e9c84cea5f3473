"""Aliases: named pointers to a version, optionally splitting traffic with a second one.

``AliasOperations`` is the alias half of the registry's control plane (CreateAlias, UpdateAlias
with RevisionId compare-and-swap, GetAlias, ListAliases, DeleteAlias) with Lambda's rules: the
name is not all digits, the alias points at a published version or $LATEST, and a routing split
names one other published version with a weight in [0, 1] (never with $LATEST). It is mixed into
``FunctionRegistry``, which owns the state, the lock and the directory.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from caravan.platform.functions import rules, storage
from caravan.platform.functions.errors import (
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from caravan.platform.functions.records import AliasRecord, Scope, VersionRecord

if TYPE_CHECKING:
    from caravan.platform.functions.registry import FunctionState

REVISION_MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the {api} API to retrieve the latest Revision Id"
)


class AliasOperations:
    """The alias operations of ``FunctionRegistry`` (which provides the members below)."""

    scope: Scope
    _lock: threading.RLock
    _dir: Path

    def _plain_name(self, function_name: str) -> str:
        raise NotImplementedError

    def _function(self, name: str) -> FunctionState:
        raise NotImplementedError

    def version(self, name: str, version: str) -> VersionRecord:
        raise NotImplementedError

    def create_alias(
        self,
        name: str,
        alias: str,
        function_version: str,
        *,
        description: str = "",
        routing_config: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """CreateAlias: a named pointer to a version (and optionally a weighted second one)."""
        name = self._plain_name(name)
        rules.check_alias_name(alias)
        rules.check_description(description)
        with self._lock:
            fn = self._function(name)
            if alias in fn.aliases:
                raise ResourceConflictException(
                    f"Alias already exists: {self.scope.function_arn(name, alias)}"
                )
            record = AliasRecord(
                function_name=name,
                name=alias,
                function_version=function_version,
                description=description,
                weights=rules.routing_weights(routing_config),
            )
            self._check_alias(record)
            storage.write_json(self._alias_path(name, alias), record.to_json())
            fn.aliases[alias] = record
        return record.to_api(self.scope)

    def update_alias(
        self,
        name: str,
        alias: str,
        *,
        function_version: str | None = None,
        description: str | None = None,
        routing_config: Mapping[str, Any] | None = None,
        revision_id: str | None = None,
    ) -> dict[str, Any]:
        """UpdateAlias: compare-and-swap on ``revision_id``; ``None`` keeps a field (an empty
        AdditionalVersionWeights clears the routing)."""
        name = self._plain_name(name)
        if description is not None:
            rules.check_description(description)
        with self._lock:
            fn = self._function(name)
            current = self._alias(fn, name, alias)
            if revision_id is not None and revision_id != current.revision_id:
                raise PreconditionFailedException(REVISION_MISMATCH.format(api="GetAlias"))
            record = AliasRecord(
                function_name=name,
                name=alias,
                function_version=function_version or current.function_version,
                description=current.description if description is None else description,
                weights=(
                    current.weights
                    if routing_config is None
                    else rules.routing_weights(routing_config)
                ),
            )
            self._check_alias(record)
            storage.write_json(self._alias_path(name, alias), record.to_json())
            fn.aliases[alias] = record
        return record.to_api(self.scope)

    def get_alias(self, name: str, alias: str) -> dict[str, Any]:
        return self.alias(name, alias).to_api(self.scope)

    def list_aliases(
        self, name: str, *, function_version: str | None = None
    ) -> list[dict[str, Any]]:
        name = self._plain_name(name)
        with self._lock:
            records = sorted(self._function(name).aliases.values(), key=lambda a: a.name)
        if function_version is not None:
            records = [a for a in records if function_version in a.versions()]
        return [a.to_api(self.scope) for a in records]

    def delete_alias(self, name: str, alias: str) -> None:
        name = self._plain_name(name)
        with self._lock:
            fn = self._function(name)
            self._alias(fn, name, alias)
            self._alias_path(name, alias).unlink(missing_ok=True)
            del fn.aliases[alias]

    def alias(self, name: str, alias: str) -> AliasRecord:
        name = self._plain_name(name)
        with self._lock:
            return self._alias(self._function(name), name, alias)

    def _alias(self, fn: FunctionState, name: str, alias: str) -> AliasRecord:
        record = fn.aliases.get(alias)
        if record is None:
            raise ResourceNotFoundException(
                f"Cannot find alias arn: {self.scope.function_arn(name, alias)}"
            )
        return record

    def _check_alias(self, record: AliasRecord) -> None:
        rules.check_version(record.function_version)
        rules.check_weights(record.function_version, record.weights)
        for version in record.versions():
            self.version(record.function_name, version)  # must exist

    def _alias_path(self, name: str, alias: str) -> Path:
        return self._dir / name / "aliases" / f"{alias}.json"

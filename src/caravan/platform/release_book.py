"""An environment's release book and the alias mover that writes to it.

``ReleaseBook`` is the environment's file, ``<root>/releases/<app>-<env>.json``: its releases by
function, the history of what it served (for rollback) and the alias moves. ``AliasMover`` is the
one way an alias moves (UpdateAlias with RevisionId compare-and-swap), each move noted in the book.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from caravan.errors import ConflictError, NotFoundError
from caravan.platform.functions import (
    AliasRecord,
    FunctionRegistry,
    PreconditionFailedException,
    ResourceNotFoundException,
)
from caravan.platform.functions.storage import write_json
from caravan.platform.releases import Release

MAX_MOVES = 200  # alias moves kept per environment
MAX_HISTORY = 50  # releases kept per environment for rollback


class AliasChangedError(ConflictError):
    """The alias was moved by someone else while a release or rollback relied on it."""

    reference = "alias-changed"


class ReleaseBook:
    """One environment's release file: releases by function, history, alias moves."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self.releases: dict[str, Release] = {}
        self.history: list[dict[str, Any]] = []
        self.moves: list[dict[str, Any]] = []
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            self.releases = {k: Release.from_json(v) for k, v in data["releases"].items()}
            self.history = list(data["history"])
            self.moves = list(data["moves"])

    def save(self) -> None:
        data = {
            "releases": {k: r.to_json() for k, r in sorted(self.releases.items())},
            "history": self.history,
            "moves": self.moves,
        }
        write_json(self.path, data, sort_keys=False)

    def put(self, release: Release) -> None:
        self.releases[release.function] = release
        self.save()

    def active(self) -> list[Release]:
        return [r for r in self.releases.values() if r.active]

    def add_move(self, move: dict[str, Any]) -> None:
        self.moves = [*self.moves, move][-MAX_MOVES:]
        self.save()

    def current(self) -> dict[str, Any] | None:
        return self.history[-1] if self.history else None

    def record(
        self,
        cause: str,
        *,
        execution_id: str | None = None,
        functions: Mapping[str, str] | None = None,
        site: Mapping[str, str] | None = None,
        restored_from: int | None = None,
        replace: bool = False,
    ) -> dict[str, Any]:
        """Note what the environment serves now. Deploys of one pipeline execution make one
        release together (function and site); ``replace`` sets the whole state (a rollback)."""
        last = self.current()
        if (
            not replace
            and last is not None
            and execution_id is not None
            and last["cause"] == "deploy"
            and last["executionId"] == execution_id
        ):
            entry = last
        else:
            entry = {
                "id": (last["id"] + 1) if last else 1,
                "at": self.clock(),
                "cause": cause,
                "executionId": execution_id,
                "functions": {} if replace or last is None else dict(last["functions"]),
                "site": None if replace or last is None else last["site"],
                "restoredFrom": restored_from,
            }
            if last is not None and not replace and _same(entry, last, functions, site):
                return last  # nothing new: a redeploy of what is served already
            self.history = [*self.history, entry][-MAX_HISTORY:]
        entry["functions"].update(functions or {})
        if site is not None:
            entry["site"] = dict(site)
        entry["at"] = self.clock()
        self.save()
        return entry

    def rollback_target(self, where: str, to_version: str | None) -> dict[str, Any]:
        """The history entry a rollback restores: the one before the current (walking further
        back after a rollback), or the latest one serving ``to_version`` (a function version or
        a site label, i.e. a commit id or its prefix)."""
        current = self.current()
        if current is None:
            raise ConflictError(f"{where} has no release yet: nothing to roll back to")
        if to_version is not None:
            return self._entry_with(where, current, to_version)
        start = len(self.history) - 1
        if current["cause"] == "rollback" and current["restoredFrom"] is not None:
            start = self._index(current["restoredFrom"], start)
        for entry in reversed(self.history[:start]):
            if _state(entry) != _state(current):
                return dict(entry)
        raise ConflictError(
            f"{where} has no earlier release to roll back to (it serves {_describe(current)})"
        )

    def _entry_with(self, where: str, current: dict[str, Any], version: str) -> dict[str, Any]:
        for entry in reversed(self.history[:-1]):
            if _serves(entry, version) and _state(entry) != _state(current):
                return dict(entry)
        if _serves(current, version):
            raise ConflictError(f"{where} already serves version {version}")
        known = sorted({v for e in self.history for v in e["functions"].values()}, key=_order)
        raise NotFoundError(
            f"{where} has no release with version {version} "
            f"(function versions released there: {', '.join(known) or 'none'})"
        )

    def _index(self, entry_id: int, default: int) -> int:
        for index, entry in enumerate(self.history):
            if entry["id"] == entry_id:
                return index
        return default


def _state(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    site = entry["site"]
    return (sorted(entry["functions"].items()), site["version"] if site else None)


def _same(
    entry: Mapping[str, Any],
    last: Mapping[str, Any],
    functions: Mapping[str, str] | None,
    site: Mapping[str, str] | None,
) -> bool:
    merged = {**entry, "functions": {**entry["functions"], **(functions or {})}}
    if site is not None:
        merged["site"] = site
    return _state(merged) == _state(last)


def _serves(entry: Mapping[str, Any], version: str) -> bool:
    if version in entry["functions"].values():
        return True
    label = (entry["site"] or {}).get("label") or ""
    return len(version) >= 7 and label.startswith(version)


def _describe(entry: Mapping[str, Any]) -> str:
    parts = [f"{name} version {v}" for name, v in sorted(entry["functions"].items())]
    if entry["site"]:
        parts.append(f"site version {entry['site']['version']}")
    return ", ".join(parts) or "nothing"


def _order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 30, version)


# ------------------------------------------------------------------------------- alias moves


class AliasMover:
    """The one way an alias moves: UpdateAlias with RevisionId compare-and-swap (CreateAlias on
    the first deploy, never delete + create), each move recorded in the environment's book."""

    def __init__(
        self,
        registry: FunctionRegistry,
        book: ReleaseBook,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.book = book
        self.clock = clock

    def read(self, function_name: str, alias: str) -> AliasRecord | None:
        try:
            return self.registry.alias(function_name, alias)
        except ResourceNotFoundException:
            return None

    def move(
        self,
        function_name: str,
        alias: str,
        version: str,
        *,
        canary: tuple[str, float] | None = None,
        expect: str | None = None,
        cause: str,
    ) -> AliasRecord:
        """Point ``alias`` at ``version`` (plus ``canary``: (version, weight)) if its revision is
        still ``expect`` (default: the one read now); ``AliasChangedError`` otherwise."""
        current = self.read(function_name, alias)
        weights = {canary[0]: round(canary[1], 6)} if canary else {}
        if current is None:
            if expect is not None:
                raise AliasChangedError(f"alias {alias} of {function_name} was deleted meanwhile")
            self.registry.create_alias(function_name, alias, version)
            if weights:
                return self.move(function_name, alias, version, canary=canary, cause=cause)
        else:
            try:
                self.registry.update_alias(
                    function_name,
                    alias,
                    function_version=version,
                    routing_config={"AdditionalVersionWeights": weights},
                    revision_id=expect or current.revision_id,
                )
            except PreconditionFailedException:
                raise AliasChangedError(
                    f"alias {alias} of {function_name} was changed by someone else "
                    f"(it points at version {current.function_version} now); left as it is"
                ) from None
        moved = self.registry.alias(function_name, alias)
        self._note(function_name, alias, current, moved, cause)
        return moved

    def remove(self, function_name: str, alias: str, *, expect: str | None, cause: str) -> None:
        """Undo a first deploy: the environment had no alias before it."""
        current = self.read(function_name, alias)
        if current is None:
            return
        if expect is not None and current.revision_id != expect:
            raise AliasChangedError(
                f"alias {alias} of {function_name} was changed by someone else; left as it is"
            )
        self.registry.delete_alias(function_name, alias)
        self._note(function_name, alias, current, None, cause)

    def _note(
        self,
        function_name: str,
        alias: str,
        before: AliasRecord | None,
        after: AliasRecord | None,
        cause: str,
    ) -> None:
        self.book.add_move(
            {
                "at": self.clock(),
                "function": function_name,
                "alias": alias,
                "from": _routing(before),
                "to": _routing(after),
                "revision": after.revision_id if after else None,
                "cause": cause,
            }
        )


def _routing(record: AliasRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {"version": record.function_version, "weights": dict(record.weights)}


def serves_only(record: AliasRecord | None, version: str | None) -> bool:
    """Whether the alias sends all its traffic to ``version`` (None: there is no alias)."""
    if record is None or version is None:
        return record is None and version is None
    return record.function_version == version and not record.weights

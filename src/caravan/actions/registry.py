"""The registry of action providers, keyed by actionTypeId.

Built-in providers and third-party ones register the same way: a package declares an entry point
in the ``caravan.actions`` group naming a function ``register(registry)`` that calls
``registry.add(...)``. Action types without a provider whose owner is ``Custom`` are served by
job workers through the job API (PollForJobs), as on AWS.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from importlib.metadata import entry_points

from caravan.actions.base import ActionProvider, ActionTypeKey

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "caravan.actions"


class ProviderKind(StrEnum):
    RUN = "run"  # caravan runs the provider's coroutine
    APPROVAL = "approval"  # waits for PutApprovalResult
    JOB_WORKER = "job-worker"  # waits for an external worker (PollForJobs)


@dataclass(frozen=True)
class ProviderEntry:
    key: ActionTypeKey
    kind: ProviderKind
    run: ActionProvider | None = None
    # Whether an interrupted run (caravan killed mid-action) may simply run again on restart.
    resumable: bool = True


class ProviderRegistry:
    def __init__(self) -> None:
        self._entries: dict[ActionTypeKey, ProviderEntry] = {}

    def add(
        self,
        category: str,
        owner: str,
        provider: str,
        version: str,
        run: ActionProvider | None = None,
        *,
        kind: ProviderKind = ProviderKind.RUN,
        resumable: bool = True,
    ) -> None:
        key = ActionTypeKey(category, owner, provider, version)
        if kind is ProviderKind.RUN and run is None:
            raise ValueError(f"provider {key} needs a run function")
        self._entries[key] = ProviderEntry(key, kind, run, resumable)

    def lookup(self, key: ActionTypeKey) -> ProviderEntry | None:
        entry = self._entries.get(key)
        if entry is None and key.owner == "Custom":
            return ProviderEntry(key, ProviderKind.JOB_WORKER, resumable=True)
        return entry

    def action_types(self) -> Iterable[ActionTypeKey]:
        return sorted(self._entries, key=str)

    @classmethod
    def from_entry_points(cls) -> ProviderRegistry:
        registry = cls()
        for point in entry_points(group=ENTRY_POINT_GROUP):
            try:
                point.load()(registry)
            except Exception:  # a broken plugin must not take the built-ins down with it
                log.exception("action provider plugin %s failed to register", point.name)
        return registry

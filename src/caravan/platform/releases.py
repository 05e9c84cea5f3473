"""Releases: an environment's alias moving to a new version by a strategy, watched by health
checks and hooks, rolled back automatically, its state persisted before every step.

A ``Release`` is a small state machine, one per (environment, function)::

    pending -> [pre-traffic] -> shifting (Canary, Linear: part of the traffic, one step at a time)
                             -> baking   (all traffic, watched for the policy's interval)
                             -> [post-traffic] -> promoted
    any active state -> rolled-back (health breach, failing hook, abort) | stopped (someone else
    moved the alias meanwhile: left as it is)

``ReleaseRunner`` drives it: every alias move goes through ``AliasMover.move`` (one UpdateAlias
with RevisionId compare-and-swap, recorded in the environment's move log), health is judged every
``tick`` second on the new version's own requests (health.py), hooks run against the green host
(pre-traffic: the new version alone) or the environment (post-traffic). ``ReleaseBook`` is the
environment's file, ``<root>/releases/<app>-<env>.json``: its releases by function, the history of
what it served (for ``rollback``) and the alias moves.

Durability: the release is saved before each alias move (write-ahead) and after it. A restart
*resumes* an active release (``LocalPlatform.open``): the step that was in effect is re-applied and
its interval starts over, so health is judged on fresh figures; a hook that was running is run
again.

This module holds the ``Release`` record and its planning; the release book and the alias mover
are in release_book.py, the runner and its controls in release_runner.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from caravan.model.manifest import HealthCheck, ReleasePolicy


class ReleaseState(StrEnum):
    PENDING = "pending"
    PRE_TRAFFIC = "pre-traffic"
    SHIFTING = "shifting"
    BAKING = "baking"
    POST_TRAFFIC = "post-traffic"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled-back"
    STOPPED = "stopped"


ACTIVE = frozenset(
    {
        ReleaseState.PENDING,
        ReleaseState.PRE_TRAFFIC,
        ReleaseState.SHIFTING,
        ReleaseState.BAKING,
        ReleaseState.POST_TRAFFIC,
    }
)


@dataclass
class Release:
    """One function's release in one environment; saved as JSON in the ``ReleaseBook``."""

    id: str
    app: str
    environment: str
    function: str  # the manifest's logical name
    function_name: str  # on the platform: <app>-<function>
    alias: str
    strategy: str
    steps: list[tuple[int, int]]  # (percent of traffic on the new version, seconds to watch)
    target: str  # the new version
    previous: str | None  # the version the alias served before; None on a first deploy
    health: dict[str, Any] | None  # the HealthCheck, camelCase
    pre_traffic: list[str]
    post_traffic: list[str]
    execution_id: str | None
    started: float
    state: str = ReleaseState.PENDING
    step: int = 0  # index of the step in effect
    step_started: float = 0.0
    percent: int = 0  # share of the traffic on the new version now
    revision: str | None = None  # the alias's RevisionId after our last move (CAS)
    detail: str = ""
    ended: float | None = None
    published: bool = False  # the version was published by this environment's deploy
    green_url: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def health_check(self) -> HealthCheck | None:
        return None if self.health is None else HealthCheck.model_validate(self.health)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = [list(step) for step in self.steps]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Release:
        values = dict(data)
        values["steps"] = [(int(p), int(w)) for p, w in values["steps"]]
        return cls(**values)

    def summary(self) -> dict[str, Any]:
        """What status views show."""
        return {
            "id": self.id,
            "function": self.function_name,
            "strategy": self.strategy,
            "state": str(self.state),
            "detail": self.detail,
            "version": self.target,
            "previous": self.previous,
            "percent": self.percent,
            "executionId": self.execution_id,
            "started": self.started,
            "ended": self.ended,
        }


def plan_release(
    *,
    app: str,
    environment: str,
    function: str,
    function_name: str,
    policy: ReleasePolicy,
    target: str,
    previous: str | None,
    execution_id: str | None,
    now: float,
    published: bool = False,
) -> Release:
    """A pending release of ``target`` following ``policy``."""
    return Release(
        id=uuid.uuid4().hex[:12],
        app=app,
        environment=environment,
        function=function,
        function_name=function_name,
        alias=environment,
        strategy=str(policy.strategy),
        steps=[(step.percent, step.wait_seconds) for step in policy.steps()],
        target=target,
        previous=previous,
        health=(
            None if policy.health_check is None else policy.health_check.model_dump(by_alias=True)
        ),
        pre_traffic=list(policy.hooks.pre_traffic or ()),
        post_traffic=list(policy.hooks.post_traffic or ()),
        execution_id=execution_id,
        started=now,
        published=published,
    )


def describe_steps(release: Release) -> str:
    """``Canary: 20% for 5 s, then 100%`` and the like, for logs and summaries."""
    parts = [f"{p}% for {w} s" if w else f"{p}%" for p, w in release.steps]
    return f"{release.strategy}: " + ", then ".join(parts)

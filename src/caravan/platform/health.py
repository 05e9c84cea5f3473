"""Release health: may the new version take more traffic, must it be rolled back, or is it too
early to say? One pure function, ``judge``, over the new version's request figures.

The figures are the API front's (``WindowStats``: requests, 5xx rate, p99 latency) for the new
version only, counted since its release started. The rules, as the manifest's ``healthCheck``
declares them (``HealthCheck``):

* with at least ``minRequests`` requests (and at least one), the version is unhealthy when its
  5xx rate exceeds ``maxErrorRate`` or its p99 latency exceeds ``maxLatencyP99Ms``: roll back at
  once, whatever the time;
* with fewer requests nothing is decided while the interval runs; when it ends, ``noTraffic``
  decides: ``pass`` goes on, ``fail`` rolls back, ``wait`` holds the release until enough
  requests arrive (or the deploy action times out);
* without a health check, time alone decides.

Low traffic is the normal case for a canary on a laptop, and weighted routing is probabilistic
(serverless.md §1.2, §6.3): the minimum sample keeps a handful of unlucky requests from deciding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from caravan.model.manifest import HealthCheck
from caravan.platform.api.metrics import WindowStats

Action = Literal["continue", "advance", "rollback", "hold"]
"""continue: keep watching this interval; advance: the interval passed, take the next step;
rollback: restore the previous version now; hold: the interval is over, wait for traffic."""


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: str  # one line naming the figures, e.g. "version 7 error rate 0.42 > 0.05 over 31 ..."


class MetricsSource(Protocol):
    """Where a release reads a version's figures (``RollingMetrics`` is one)."""

    def stats(self, function: str, version: str | None) -> WindowStats: ...


def judge(
    stats: WindowStats, check: HealthCheck | None, *, version: str, interval_over: bool
) -> Verdict:
    """The verdict on ``version`` given its figures so far; see the module docstring."""
    if check is None:
        action: Action = "advance" if interval_over else "continue"
        return Verdict(action, f"version {version}: no health check, time alone decides")
    requests = stats.requests
    if requests > 0 and requests >= check.min_requests:
        breach = _breach(stats, check, version)
        if breach is not None:
            return Verdict("rollback", breach)
        return Verdict("advance" if interval_over else "continue", _healthy(stats, version))
    few = (
        f"version {version} had {_requests(requests)} "
        f"(fewer than minRequests {max(check.min_requests, 1)})"
    )
    if not interval_over:
        return Verdict("continue", f"{few} so far")
    if check.no_traffic == "pass":
        return Verdict("advance", f"{few}; noTraffic is pass")
    if check.no_traffic == "fail":
        return Verdict("rollback", f"{few}; noTraffic is fail")
    return Verdict("hold", f"{few}; noTraffic is wait: holding until enough traffic arrives")


def _breach(stats: WindowStats, check: HealthCheck, version: str) -> str | None:
    over = f"over {_requests(stats.requests)}"
    rate = stats.error_rate
    if rate is not None and rate > check.max_error_rate:
        shown = _figure(rate, check.max_error_rate)
        return f"version {version} error rate {shown} > {check.max_error_rate:g} {over}"
    limit = check.max_latency_p99_ms
    if limit is not None and stats.p99_ms is not None and stats.p99_ms > limit:
        return f"version {version} p99 latency {stats.p99_ms:.0f} ms > {limit} ms {over}"
    return None


def _healthy(stats: WindowStats, version: str) -> str:
    parts = [f"error rate {stats.error_rate or 0.0:.2f}"]
    if stats.p99_ms is not None:
        parts.append(f"p99 {stats.p99_ms:.0f} ms")
    return f"version {version} healthy: {', '.join(parts)} over {_requests(stats.requests)}"


def _figure(value: float, threshold: float) -> str:
    """Two decimals, unless rounding would make a breach look equal to its threshold."""
    text = f"{value:.2f}"
    return text if float(text) != threshold else f"{value:.4f}"


def _requests(count: int) -> str:
    return f"{count} request" if count == 1 else f"{count} requests"

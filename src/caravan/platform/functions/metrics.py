"""Invocation metrics per (function, executed version), like CloudWatch's ExecutedVersion view.

Totals count since the platform started; a sliding window (default 5 minutes, at most
``max_samples`` samples per version) holds each invocation's duration and outcome, from which
``stats()`` derives the recent invocations, errors, throttles and p50/p99 durations. Release
health checks (canary analysis) read these to compare two versions of one alias.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class VersionStats:
    """One version's figures: ``total_*`` since start, the rest over the window."""

    function_name: str
    version: str
    window_s: float
    invocations: int
    errors: int
    throttles: int
    p50_ms: float | None
    p99_ms: float | None
    total_invocations: int
    total_errors: int

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.invocations if self.invocations else None


@dataclass
class _Series:
    samples: deque[tuple[float, float, bool]] = field(default_factory=deque)  # (t, ms, error)
    throttles: deque[float] = field(default_factory=deque)
    total_invocations: int = 0
    total_errors: int = 0


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (CloudWatch's pNN definition)."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


class InvocationMetrics:
    """Thread-safe counters and latency samples keyed by (function, version)."""

    def __init__(
        self,
        *,
        window_s: float = 300.0,
        max_samples: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self.max_samples = max_samples
        self._clock = clock
        self._series: dict[tuple[str, str], _Series] = {}
        self._lock = threading.Lock()

    def record(self, function_name: str, version: str, duration_ms: float, *, error: bool) -> None:
        """One completed invocation (a function error counts as an error)."""
        now = self._clock()
        with self._lock:
            series = self._series.setdefault((function_name, version), _Series())
            series.samples.append((now, duration_ms, error))
            if len(series.samples) > self.max_samples:
                series.samples.popleft()
            series.total_invocations += 1
            series.total_errors += int(error)

    def record_throttle(self, function_name: str, version: str) -> None:
        with self._lock:
            series = self._series.setdefault((function_name, version), _Series())
            series.throttles.append(self._clock())
            if len(series.throttles) > self.max_samples:
                series.throttles.popleft()

    def stats(self, function_name: str, version: str) -> VersionStats:
        now = self._clock()
        with self._lock:
            series = self._series.get((function_name, version), _Series())
            self._prune(series, now)
            durations = sorted(ms for _, ms, _ in series.samples)
            errors = sum(1 for _, _, failed in series.samples if failed)
            throttles = len(series.throttles)
            totals = (series.total_invocations, series.total_errors)
        return VersionStats(
            function_name=function_name,
            version=version,
            window_s=self.window_s,
            invocations=len(durations),
            errors=errors,
            throttles=throttles,
            p50_ms=percentile(durations, 0.50) if durations else None,
            p99_ms=percentile(durations, 0.99) if durations else None,
            total_invocations=totals[0],
            total_errors=totals[1],
        )

    def versions(self, function_name: str) -> list[str]:
        """The versions of a function that have figures."""
        with self._lock:
            return sorted(v for f, v in self._series if f == function_name)

    def forget(self, function_name: str) -> None:
        with self._lock:
            for key in [k for k in self._series if k[0] == function_name]:
                del self._series[key]

    def _prune(self, series: _Series, now: float) -> None:
        horizon = now - self.window_s
        while series.samples and series.samples[0][0] < horizon:
            series.samples.popleft()
        while series.throttles and series.throttles[0] < horizon:
            series.throttles.popleft()

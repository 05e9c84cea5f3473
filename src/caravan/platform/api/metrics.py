"""Request metrics of the API front: a thread-safe rolling window per function version.

Every request through the gateway is reported as one ``RequestSample`` (api, stage, function,
executed version, status, latency) to a ``RequestRecorder`` — any object with ``record``.
``RollingMetrics`` is the recorder release health checks read: over the last ``window_s``
seconds, per ``(function, version)`` and per ``(api, stage)``, the request count, 4xx and 5xx
counts, the 5xx rate and the p50/p99 latency (nearest rank, CloudWatch's pNN definition).

The latency is the gateway's: from the request's arrival to the response being ready, so it
includes the invocation, cold starts and queueing, which is what a user of the API waits for.
Requests that reached no function (no route, CORS preflight) count only towards their stage.
A gateway timeout has no executed version: it is recorded under version ``None``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Protocol

from caravan.platform.functions.metrics import percentile


@dataclass(frozen=True)
class RequestSample:
    api: str
    stage: str
    function: str | None
    executed_version: str | None
    status: int
    latency_ms: float


class RequestRecorder(Protocol):
    """Receives one sample per request; must be cheap and thread-safe."""

    def record(self, sample: RequestSample) -> None: ...


@dataclass(frozen=True)
class WindowStats:
    """Figures over the last ``window_s`` seconds."""

    window_s: float
    requests: int
    errors_4xx: int
    errors_5xx: int
    p50_ms: float | None
    p99_ms: float | None

    @property
    def error_rate(self) -> float | None:
        """The share of requests answered with a 5xx (None without requests)."""
        return self.errors_5xx / self.requests if self.requests else None


_Sample = tuple[float, float, int]  # (monotonic time, latency ms, status)


class RollingMetrics:
    """A ``RequestRecorder`` keeping the last ``window_s`` seconds of requests in memory."""

    def __init__(
        self,
        *,
        window_s: float = 300.0,
        max_samples: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self.max_samples = max_samples  # per key: bounds memory under heavy traffic
        self._clock = clock
        self._lock = threading.Lock()
        self._series: dict[Hashable, deque[_Sample]] = {}

    def record(self, sample: RequestSample) -> None:
        entry = (self._clock(), sample.latency_ms, sample.status)
        keys: list[Hashable] = [("stage", sample.api, sample.stage)]
        if sample.function is not None:
            keys.append(("version", sample.function, sample.executed_version))
        with self._lock:
            for key in keys:
                series = self._series.setdefault(key, deque(maxlen=self.max_samples))
                series.append(entry)

    def stats(self, function: str, version: str | None) -> WindowStats:
        """One function version's figures (``version`` as the function reported it)."""
        return self._stats(("version", function, version))

    def stage_stats(self, api: str, stage: str) -> WindowStats:
        """Every request to one stage, whichever function (or none) answered it."""
        return self._stats(("stage", api, stage))

    def versions(self, function: str) -> list[str | None]:
        """The versions of ``function`` with requests in the window."""
        horizon = self._clock() - self.window_s
        with self._lock:
            found = [
                key[2]
                for key, series in self._series.items()
                if isinstance(key, tuple)
                and key[:2] == ("version", function)
                and any(t >= horizon for t, _, _ in series)
            ]
        return sorted(found, key=lambda v: (v is None, str(v)))

    def _stats(self, key: Hashable) -> WindowStats:
        horizon = self._clock() - self.window_s
        with self._lock:
            series = self._series.get(key)
            while series and series[0][0] < horizon:
                series.popleft()
            samples = list(series or ())
        latencies = sorted(ms for _, ms, _ in samples)
        return WindowStats(
            window_s=self.window_s,
            requests=len(samples),
            errors_4xx=sum(1 for _, _, status in samples if 400 <= status < 500),
            errors_5xx=sum(1 for _, _, status in samples if status >= 500),
            p50_ms=percentile(latencies, 0.50) if latencies else None,
            p99_ms=percentile(latencies, 0.99) if latencies else None,
        )

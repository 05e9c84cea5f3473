"""The rolling request window release health checks read: counts, 5xx rate, p50/p99, expiry."""

from __future__ import annotations

import threading

from caravan.platform.api import RequestSample, RollingMetrics


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sample(
    version: str | None, status: int, latency: float, *, function: str | None = "app"
) -> RequestSample:
    return RequestSample("api", "prod", function, version, status, latency)


def test_counts_rates_and_percentiles_per_version() -> None:
    metrics = RollingMetrics(window_s=60, clock=Clock())
    for latency in range(1, 101):  # 1..100 ms, one 5xx in ten
        metrics.record(sample("2", 500 if latency % 10 == 0 else 200, float(latency)))
    metrics.record(sample("1", 404, 7.0))
    v2 = metrics.stats("app", "2")
    assert (v2.requests, v2.errors_5xx, v2.errors_4xx) == (100, 10, 0)
    assert v2.error_rate == 0.1
    assert (v2.p50_ms, v2.p99_ms) == (50.0, 99.0)
    v1 = metrics.stats("app", "1")
    assert (v1.requests, v1.errors_4xx, v1.error_rate, v1.p50_ms) == (1, 1, 0.0, 7.0)
    assert metrics.versions("app") == ["1", "2"]


def test_nothing_recorded_means_no_rate_and_no_latency() -> None:
    empty = RollingMetrics().stats("app", "9")
    assert (empty.requests, empty.error_rate, empty.p50_ms, empty.p99_ms) == (0, None, None, None)


def test_old_samples_leave_the_window() -> None:
    clock = Clock()
    metrics = RollingMetrics(window_s=30, clock=clock)
    metrics.record(sample("1", 502, 900.0))
    clock.now += 20
    metrics.record(sample("1", 200, 10.0))
    assert metrics.stats("app", "1").requests == 2
    clock.now += 15  # the first sample is now 35 s old
    recent = metrics.stats("app", "1")
    assert (recent.requests, recent.errors_5xx, recent.p99_ms) == (1, 0, 10.0)
    clock.now += 60
    assert metrics.stats("app", "1").requests == 0
    assert metrics.versions("app") == []


def test_requests_without_a_function_count_for_the_stage_only() -> None:
    metrics = RollingMetrics(clock=Clock())
    metrics.record(sample(None, 403, 1.0, function=None))
    metrics.record(sample("1", 200, 2.0))
    stage = metrics.stage_stats("api", "prod")
    assert (stage.requests, stage.errors_4xx) == (2, 1)
    assert metrics.stats("app", "1").requests == 1


def test_memory_is_bounded_per_version() -> None:
    metrics = RollingMetrics(max_samples=10, clock=Clock())
    for n in range(25):
        metrics.record(sample("1", 200, float(n)))
    stats = metrics.stats("app", "1")
    assert stats.requests == 10 and stats.p50_ms == 19.0  # the newest ten: 15..24


def test_concurrent_recording_loses_nothing() -> None:
    metrics = RollingMetrics(max_samples=100_000)

    def hammer(version: str) -> None:
        for n in range(2000):
            metrics.record(sample(version, 500 if n % 4 == 0 else 200, 1.0))
            if n % 100 == 0:
                metrics.stats("app", version)

    threads = [threading.Thread(target=hammer, args=(str(i % 2),)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for version in ("0", "1"):
        stats = metrics.stats("app", version)
        assert (stats.requests, stats.errors_5xx) == (8000, 2000)
    assert metrics.stage_stats("api", "prod").requests == 16000

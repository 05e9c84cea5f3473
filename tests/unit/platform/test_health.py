"""The release health decision: thresholds, the minimum sample and the no-traffic rule."""

from __future__ import annotations

import pytest

from caravan.model.manifest import HealthCheck
from caravan.platform.api.metrics import WindowStats
from caravan.platform.health import judge


def stats(requests: int, errors: int = 0, p99: float | None = 20.0) -> WindowStats:
    return WindowStats(
        window_s=300.0,
        requests=requests,
        errors_4xx=0,
        errors_5xx=errors,
        p50_ms=None if requests == 0 else 10.0,
        p99_ms=None if requests == 0 else p99,
    )


CHECK = HealthCheck(max_error_rate=0.05, max_latency_p99_ms=500, min_requests=20, no_traffic="pass")


def check(**changes: object) -> HealthCheck:
    return CHECK.model_copy(update=changes)


def test_an_error_rate_over_the_threshold_rolls_back_at_once_naming_the_figures() -> None:
    verdict = judge(stats(31, errors=13), CHECK, version="7", interval_over=False)
    assert verdict.action == "rollback"
    assert verdict.reason == "version 7 error rate 0.42 > 0.05 over 31 requests"


def test_an_error_rate_at_the_threshold_is_healthy() -> None:
    verdict = judge(stats(40, errors=2), CHECK, version="7", interval_over=False)
    assert verdict.action == "continue"
    assert verdict.reason.startswith("version 7 healthy: error rate 0.05")


def test_a_breach_that_rounds_to_the_threshold_shows_more_digits() -> None:
    verdict = judge(stats(1000, errors=51), CHECK, version="3", interval_over=True)
    assert verdict == verdict.__class__(
        "rollback", "version 3 error rate 0.0510 > 0.05 over 1000 requests"
    )


def test_a_p99_latency_over_the_threshold_rolls_back() -> None:
    verdict = judge(stats(25, p99=812.4), CHECK, version="7", interval_over=False)
    assert verdict.action == "rollback"
    assert verdict.reason == "version 7 p99 latency 812 ms > 500 ms over 25 requests"


def test_latency_is_not_checked_without_a_latency_threshold() -> None:
    verdict = judge(
        stats(25, p99=9000.0), check(max_latency_p99_ms=None), version="7", interval_over=True
    )
    assert verdict.action == "advance"


def test_healthy_figures_advance_only_when_the_interval_is_over() -> None:
    assert judge(stats(30), CHECK, version="7", interval_over=False).action == "continue"
    verdict = judge(stats(30), CHECK, version="7", interval_over=True)
    assert verdict.action == "advance"
    assert verdict.reason == "version 7 healthy: error rate 0.00, p99 20 ms over 30 requests"


def test_fewer_requests_than_the_minimum_decide_nothing_during_the_interval() -> None:
    # Every request failed, but 5 requests are too few to judge on.
    verdict = judge(stats(5, errors=5), CHECK, version="7", interval_over=False)
    assert verdict.action == "continue"
    assert verdict.reason == "version 7 had 5 requests (fewer than minRequests 20) so far"


@pytest.mark.parametrize(
    ("rule", "action", "ending"),
    [
        ("pass", "advance", "; noTraffic is pass"),
        ("fail", "rollback", "; noTraffic is fail"),
        ("wait", "hold", "; noTraffic is wait: holding until enough traffic arrives"),
    ],
)
def test_the_no_traffic_rule_decides_at_the_end_of_the_interval(
    rule: str, action: str, ending: str
) -> None:
    verdict = judge(stats(3, errors=3), check(no_traffic=rule), version="7", interval_over=True)
    assert verdict.action == action
    assert verdict.reason == f"version 7 had 3 requests (fewer than minRequests 20){ending}"


def test_no_request_at_all_is_no_traffic_even_with_a_minimum_of_zero() -> None:
    zero = check(min_requests=0, no_traffic="fail")
    verdict = judge(stats(0), zero, version="2", interval_over=True)
    assert verdict.action == "rollback"
    assert (
        verdict.reason == "version 2 had 0 requests (fewer than minRequests 1); noTraffic is fail"
    )
    assert judge(stats(1), zero, version="2", interval_over=True).action == "advance"


def test_once_enough_traffic_arrives_a_held_release_is_judged_on_its_figures() -> None:
    waiting = check(no_traffic="wait")
    assert judge(stats(19), waiting, version="7", interval_over=True).action == "hold"
    assert judge(stats(20), waiting, version="7", interval_over=True).action == "advance"
    breach = judge(stats(20, errors=2), waiting, version="7", interval_over=True)
    assert breach.action == "rollback"
    assert breach.reason == "version 7 error rate 0.10 > 0.05 over 20 requests"


def test_without_a_health_check_time_alone_decides() -> None:
    failing = stats(100, errors=100)
    assert judge(failing, None, version="7", interval_over=False).action == "continue"
    assert judge(failing, None, version="7", interval_over=True).action == "advance"


def test_one_request_is_named_in_the_singular() -> None:
    verdict = judge(stats(1, errors=1), check(min_requests=1), version="4", interval_over=False)
    assert verdict.reason == "version 4 error rate 1.00 > 0.05 over 1 request"

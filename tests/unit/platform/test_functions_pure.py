"""Pure parts of the functions platform: routing draws, metrics, log format, ARNs, errors."""

# ruff: noqa: S311 - seeded pseudo-random draws are what alias routing uses on purpose

from __future__ import annotations

import base64
import random

import pytest

from caravan.errors import ConflictError, InvalidInputError, NotFoundError
from caravan.platform.functions import (
    AliasRecord,
    InvalidParameterValueException,
    InvocationMetrics,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
    TooManyRequestsException,
    split_function_name,
)
from caravan.platform.functions.logs import InvocationLog, billed_ms, tail
from caravan.platform.functions.routing import choose_version


def test_weighted_alias_sends_its_share_to_the_additional_version() -> None:
    alias = AliasRecord("hello", "live", "1", weights={"2": 0.1})
    rng = random.Random(7)
    picks = [choose_version(alias, rng) for _ in range(2000)]
    assert set(picks) == {"1", "2"}
    share = picks.count("2") / len(picks)
    assert 0.08 <= share <= 0.12  # 10 % within about three standard deviations


def test_routing_is_reproducible_with_a_seed_and_one_draw_per_request() -> None:
    alias = AliasRecord("hello", "live", "1", weights={"2": 0.5})
    rng = random.Random(3)
    picks = [choose_version(alias, rng) for _ in range(50)]
    replay = random.Random(3)
    assert picks == ["2" if replay.random() < 0.5 else "1" for _ in range(50)]


def test_routing_edges_never_draw_for_nothing() -> None:
    assert choose_version(AliasRecord("f", "a", "1"), random.Random(1)) == "1"
    rng = random.Random(1)
    assert {
        choose_version(AliasRecord("f", "a", "1", weights={"2": 0.0}), rng) for _ in range(100)
    } == {"1"}
    assert {
        choose_version(AliasRecord("f", "a", "1", weights={"2": 1.0}), rng) for _ in range(100)
    } == {"2"}


def test_metrics_count_per_version_over_a_sliding_window() -> None:
    now = [1000.0]
    metrics = InvocationMetrics(window_s=60.0, clock=lambda: now[0])
    for ms in range(1, 101):
        metrics.record("f", "1", float(ms), error=ms % 10 == 0)
    metrics.record("f", "2", 5.0, error=False)
    metrics.record_throttle("f", "1")
    stats = metrics.stats("f", "1")
    assert (stats.invocations, stats.errors, stats.throttles) == (100, 10, 1)
    assert stats.p50_ms == 50.0 and stats.p99_ms == 99.0
    assert stats.error_rate == pytest.approx(0.1)
    assert metrics.stats("f", "2").invocations == 1
    assert metrics.versions("f") == ["1", "2"]
    now[0] += 61.0
    metrics.record("f", "1", 7.0, error=True)
    later = metrics.stats("f", "1")
    assert (later.invocations, later.errors, later.throttles) == (1, 1, 0)
    assert later.p50_ms == later.p99_ms == 7.0
    assert (later.total_invocations, later.total_errors) == (101, 11)
    empty = metrics.stats("g", "1")
    assert empty.invocations == 0 and empty.p50_ms is None and empty.error_rate is None


def test_invocation_log_has_lambdas_lines() -> None:
    log = InvocationLog(
        request_id="r-1",
        version="3",
        runtime="python3.11",
        output=b"hello\nworld",
        duration_ms=1.234,
        memory_size=128,
        max_memory_mb=20,
        init_output=b"importing\n",
        init_ms=45.6,
    ).render()
    lines = log.splitlines()
    assert lines[0].startswith("INIT_START ")
    assert lines[1] == "importing"
    assert lines[2] == "START RequestId: r-1 Version: 3"
    assert lines[3:5] == ["hello", "world"]
    assert lines[5] == "END RequestId: r-1"
    assert lines[6] == (
        "REPORT RequestId: r-1\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB"
        "\tMax Memory Used: 20 MB\tInit Duration: 45.60 ms"
    )
    assert billed_ms(0.01) == 1
    big = "x" * 10_000 + "END"
    decoded = base64.b64decode(tail(big))
    assert len(decoded) == 4096 and decoded.endswith(b"END")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("hello", ("hello", None)),
        ("hello:live", ("hello", "live")),
        ("hello:$LATEST", ("hello", "$LATEST")),
        ("arn:aws:lambda:eu-west-1:123456789012:function:hello", ("hello", None)),
        ("arn:aws:lambda:eu-west-1:123456789012:function:hello:7", ("hello", "7")),
        ("123456789012:function:hello:live", ("hello", "live")),
    ],
)
def test_function_names_arns_and_qualifiers(value: str, expected: tuple[str, str | None]) -> None:
    assert split_function_name(value) == expected


def test_errors_belong_to_the_caravan_tree_with_lambda_names() -> None:
    cases = [
        (ResourceNotFoundException("x"), NotFoundError, 404),
        (InvalidParameterValueException("x"), InvalidInputError, 400),
        (ResourceConflictException("x"), ConflictError, 409),
        (PreconditionFailedException("x"), ConflictError, 412),
        (TooManyRequestsException("x", reason="R"), ConflictError, 429),
    ]
    for error, kind, status in cases:
        assert isinstance(error, kind)
        assert error.aws_type == type(error).__name__
        assert error.http_status == status
        assert error.to_dict()["__type"] == type(error).__name__
    assert TooManyRequestsException("x", reason="R").to_dict()["Reason"] == "R"

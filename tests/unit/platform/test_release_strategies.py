"""Release strategies on an alias: the steps and weights of Canary, Linear, AllAtOnce and
BlueGreen, hooks, and automatic rollback on a health breach (fake clock, scripted metrics)."""

from __future__ import annotations

from pathlib import Path

from release_helpers import ENV_URL, FUNCTION, GREEN_URL, Bench, window

from caravan.errors import InvalidInputError
from caravan.platform.releases import Release, ReleaseState

HEALTH = {"maxErrorRate": 0.05, "minRequests": 20, "noTraffic": "pass"}


async def test_a_canary_sends_its_percent_for_the_interval_then_everything(tmp_path: Path) -> None:
    bench = Bench(tmp_path)
    bench.metrics.script = lambda elapsed: window(int(elapsed * 10))  # healthy traffic
    release = bench.plan(
        {"strategy": "Canary", "percent": 20, "interval": 5, "healthCheck": HEALTH}
    )

    done = await bench.run(release)

    assert done.state == ReleaseState.PROMOTED
    assert done.detail == "version 2 serves all of prod"
    assert bench.moves() == [(0.0, "1", {"2": 0.2}), (5.0, "2", {})]
    assert bench.alias() == ("2", {})
    assert (FUNCTION, "2") in bench.metrics.asked  # health is read for the new version only
    assert all(version == "2" for _, version in bench.metrics.asked)


async def test_health_is_checked_every_second_during_the_interval(tmp_path: Path) -> None:
    bench = Bench(tmp_path)
    release = bench.plan(
        {"strategy": "Canary", "percent": 10, "interval": 4, "healthCheck": HEALTH}
    )
    await bench.run(release)
    assert len(bench.metrics.asked) == 5  # at 0, 1, 2, 3 and 4 seconds


async def test_linear_adds_its_percent_every_interval_until_all(tmp_path: Path) -> None:
    bench = Bench(tmp_path)
    release = bench.plan({"strategy": "Linear", "percent": 25, "interval": 2})

    done = await bench.run(release)

    assert done.state == ReleaseState.PROMOTED
    assert bench.moves() == [
        (0.0, "1", {"2": 0.25}),
        (2.0, "1", {"2": 0.5}),
        (4.0, "1", {"2": 0.75}),
        (6.0, "2", {}),
    ]


async def test_all_at_once_moves_everything_and_bakes_for_its_interval(tmp_path: Path) -> None:
    bench = Bench(tmp_path)
    bench.metrics.script = lambda elapsed: window(40, errors=30 if elapsed >= 3 else 0)
    release = bench.plan({"strategy": "AllAtOnce", "interval": 10, "healthCheck": HEALTH})

    done = await bench.run(release)

    assert done.state == ReleaseState.ROLLED_BACK
    assert done.detail == "rolled back: version 2 error rate 0.75 > 0.05 over 40 requests"
    assert bench.moves() == [(0.0, "2", {}), (3.0, "1", {})]


async def test_blue_green_checks_green_alone_then_switches_and_keeps_blue(tmp_path: Path) -> None:
    bench = Bench(tmp_path)
    release = bench.plan(
        {"strategy": "BlueGreen", "hooks": {"preTraffic": "./smoke", "postTraffic": ["./post"]}}
    )

    done = await bench.run(release)

    assert done.state == ReleaseState.PROMOTED
    assert bench.hooks.calls == [
        ("preTraffic", ["./smoke"], GREEN_URL),
        ("postTraffic", ["./post"], ENV_URL),
    ]
    assert bench.routes.log == ["open green 2", "close green"]
    assert bench.moves() == [(0.0, "2", {})]  # one switch, no split
    assert done.previous == "1"  # blue, for an instant rollback
    assert bench.registry.version(FUNCTION, "1").code_sha256  # still there, immutable


async def test_a_failing_pre_traffic_hook_rolls_back_before_any_traffic(tmp_path: Path) -> None:
    bench = Bench(tmp_path)
    bench.hooks.failures["preTraffic"] = "preTraffic hook `./smoke` failed with exit status 1"
    release = bench.plan(
        {"strategy": "Canary", "percent": 20, "interval": 5, "hooks": {"preTraffic": "./smoke"}}
    )

    done = await bench.run(release)

    assert done.state == ReleaseState.ROLLED_BACK
    assert done.detail == "rolled back: preTraffic hook `./smoke` failed with exit status 1"
    assert bench.moves() == []  # the alias never moved
    assert bench.alias() == ("1", {})
    assert bench.routes.log == ["open green 2", "close green"]


async def test_a_failing_post_traffic_hook_restores_the_previous_version(tmp_path: Path) -> None:
    bench = Bench(tmp_path)
    bench.hooks.failures["postTraffic"] = "postTraffic hook `./check` failed with exit status 2"
    release = bench.plan(
        {"strategy": "Canary", "percent": 50, "interval": 1, "hooks": {"postTraffic": "./check"}}
    )

    done = await bench.run(release)

    assert done.state == ReleaseState.ROLLED_BACK
    assert bench.moves() == [(0.0, "1", {"2": 0.5}), (1.0, "2", {}), (1.0, "1", {})]
    assert bench.alias() == ("1", {})


async def test_an_error_rate_breach_during_a_canary_rolls_back_automatically(
    tmp_path: Path,
) -> None:
    bench = Bench(tmp_path)
    bench.metrics.script = lambda elapsed: window(31, errors=13) if elapsed >= 2 else window(5)
    release = bench.plan(
        {"strategy": "Canary", "percent": 20, "interval": 5, "healthCheck": HEALTH}
    )

    done = await bench.run(release)

    assert done.state == ReleaseState.ROLLED_BACK
    assert done.detail == "rolled back: version 2 error rate 0.42 > 0.05 over 31 requests"
    assert bench.moves() == [(0.0, "1", {"2": 0.2}), (2.0, "1", {})]
    assert bench.alias() == ("1", {})
    assert [m["cause"] for m in bench.book.moves] == [
        f"release {release.id} (Canary)",
        f"rollback of release {release.id}",
    ]


async def test_no_traffic_fail_rolls_back_at_the_end_of_the_interval(tmp_path: Path) -> None:
    bench = Bench(tmp_path)
    health = {**HEALTH, "noTraffic": "fail"}
    release = bench.plan(
        {"strategy": "Canary", "percent": 20, "interval": 3, "healthCheck": health}
    )

    done = await bench.run(release)

    assert (
        done.detail
        == "rolled back: version 2 had 0 requests (fewer than minRequests 20); noTraffic is fail"
    )
    assert bench.moves() == [(0.0, "1", {"2": 0.2}), (3.0, "1", {})]


async def test_no_traffic_wait_holds_the_step_until_enough_requests_arrive(tmp_path: Path) -> None:
    bench = Bench(tmp_path)
    bench.metrics.script = lambda elapsed: window(25) if elapsed >= 12 else window(2)
    health = {**HEALTH, "noTraffic": "wait"}
    release = bench.plan(
        {"strategy": "Canary", "percent": 20, "interval": 3, "healthCheck": health}
    )

    done = await bench.run(release)

    assert done.state == ReleaseState.PROMOTED
    assert bench.moves() == [(0.0, "1", {"2": 0.2}), (12.0, "2", {})]
    assert any("holding until enough traffic arrives" in line for line in bench.logs)


async def test_a_first_deploy_creates_the_alias_and_its_rollback_removes_it(tmp_path: Path) -> None:
    bench = Bench(tmp_path)
    bench.registry.delete_alias(FUNCTION, "prod")
    bench.metrics.script = lambda elapsed: window(30, errors=30)
    release = bench.plan(
        {"strategy": "Canary", "percent": 20, "interval": 5, "healthCheck": HEALTH}, previous=None
    )

    done = await bench.run(release)

    assert done.state == ReleaseState.ROLLED_BACK
    # Nothing to split with: all traffic, watched; then the alias is gone again, as before.
    assert bench.moves() == [(0.0, "2", {}), (0.0, "(removed)", {})]
    assert bench.registry.list_aliases(FUNCTION) == []


async def test_release_logs_name_the_function_alias_and_the_plan(tmp_path: Path) -> None:
    bench = Bench(tmp_path)
    await bench.run(bench.plan({"strategy": "Canary", "percent": 20, "interval": 5}))
    assert bench.logs[0] == "shop-api:prod: release of version 2: Canary: 20% for 5 s, then 100%"
    assert bench.logs[-1] == "shop-api:prod: version 2 serves all of prod"


async def test_a_step_the_platform_refuses_rolls_back_with_its_reason(tmp_path: Path) -> None:
    bench = Bench(tmp_path)

    def refuse(release: Release) -> str:
        raise InvalidInputError("cannot deploy app/prod-green: the stage lacks variable 'alias'")

    bench.routes.open_green = refuse  # type: ignore[method-assign]
    release = bench.plan({"strategy": "BlueGreen", "hooks": {"preTraffic": "./smoke"}})

    done = await bench.run(release)

    assert done.state == ReleaseState.ROLLED_BACK
    assert done.detail == (
        "rolled back: cannot deploy app/prod-green: the stage lacks variable 'alias'"
    )
    assert bench.alias() == ("1", {})

"""Steering a release from outside: promote, abort, a restart in the middle (persisted state,
resume), and an alias moved by someone else."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from release_helpers import FUNCTION, START, Bench, window

from caravan.platform.release_book import ReleaseBook
from caravan.platform.release_runner import ReleaseControl
from caravan.platform.releases import Release, ReleaseState

CANARY = {"strategy": "Canary", "percent": 20, "interval": 60}


async def test_promote_finishes_a_canary_now(tmp_path: Path) -> None:
    bench = Bench(tmp_path)
    control = ReleaseControl()
    bench.time.at(3, control.promote)

    done = await bench.run(bench.plan(CANARY), control)

    assert done.state == ReleaseState.PROMOTED
    assert bench.moves() == [(0.0, "1", {"2": 0.2}), (3.0, "2", {})]
    assert bench.time.now - START < 60


async def test_promote_skips_the_bake_of_all_at_once(tmp_path: Path) -> None:
    bench = Bench(tmp_path)
    control = ReleaseControl()
    bench.time.at(2, control.promote)
    done = await bench.run(bench.plan({"strategy": "AllAtOnce", "interval": 600}), control)
    assert done.state == ReleaseState.PROMOTED
    assert done.ended == START + 2


async def test_abort_rolls_back_with_the_reason(tmp_path: Path) -> None:
    bench = Bench(tmp_path)
    control = ReleaseControl()
    bench.time.at(4, lambda: control.abort("by request"))

    done = await bench.run(bench.plan(CANARY), control)

    assert done.state == ReleaseState.ROLLED_BACK
    assert done.detail == "rolled back: aborted: by request"
    assert bench.moves() == [(0.0, "1", {"2": 0.2}), (4.0, "1", {})]
    assert bench.alias() == ("1", {})


async def test_abort_stops_a_running_hook(tmp_path: Path) -> None:
    bench = Bench(tmp_path)
    control = ReleaseControl()
    started = asyncio.Event()

    async def endless(
        phase: str, commands: Sequence[str], target_url: str, release: Release
    ) -> str | None:
        started.set()
        await asyncio.sleep(3600)
        return None

    runner = bench.runner()
    runner.deps.hooks = endless
    release = bench.plan({**CANARY, "hooks": {"preTraffic": "sleep 3600"}})
    task = asyncio.create_task(runner.run(release, control))
    await started.wait()
    control.abort("by request")
    done = await asyncio.wait_for(task, 5)

    assert done.state == ReleaseState.ROLLED_BACK
    assert bench.moves() == []
    assert bench.routes.log == ["open green 2", "close green"]


async def test_the_state_is_on_disk_before_each_step(tmp_path: Path) -> None:
    bench = Bench(tmp_path)
    seen: list[tuple[str, int, int]] = []
    real_move = bench.registry.update_alias

    def spying_update(*args: object, **kwargs: object) -> dict[str, object]:
        saved = json.loads(bench.book_path.read_text())["releases"]["api"]
        seen.append((saved["state"], saved["step"], saved["percent"]))
        return real_move(*args, **kwargs)  # type: ignore[arg-type]

    bench.registry.update_alias = spying_update  # type: ignore[method-assign]
    await bench.run(bench.plan({"strategy": "Linear", "percent": 50, "interval": 1}))

    # Each move happens after the step it takes was written down.
    assert seen == [("shifting", 0, 50), ("shifting", 1, 100)]


async def test_a_restart_resumes_the_step_in_effect_with_a_fresh_interval(tmp_path: Path) -> None:
    bench = Bench(tmp_path)
    bench.metrics.script = lambda elapsed: window(30)
    release = bench.plan({"strategy": "Linear", "percent": 25, "interval": 10})
    first = asyncio.create_task(bench.run(release))
    bench.time.at(13, first.cancel)  # caravan stops in the second step (50%)
    with pytest.raises(asyncio.CancelledError):
        await first

    reopened = ReleaseBook(bench.book_path, clock=bench.time.clock)  # what a restart reads
    saved = reopened.releases["api"]
    assert (saved.state, saved.step, saved.percent) == (ReleaseState.SHIFTING, 1, 50)
    assert bench.alias() == ("1", {"2": 0.5})
    resumed_at = bench.time.now

    done = await bench.runner(reopened).run(saved, ReleaseControl())

    assert done.state == ReleaseState.PROMOTED
    moves = [(round(at - (resumed_at - START), 3), v, w) for at, v, w in _moves(reopened)]
    # The 50% step is applied again and watched for a whole interval, then 75%, then 100%.
    assert moves[-3:] == [(0.0, "1", {"2": 0.5}), (10.0, "1", {"2": 0.75}), (20.0, "2", {})]
    assert any("resuming the release of version 2 (shifting)" in line for line in bench.logs)


async def test_an_alias_moved_by_someone_else_stops_the_release_and_is_left_alone(
    tmp_path: Path,
) -> None:
    bench = Bench(tmp_path)
    control = ReleaseControl()
    bench.time.at(
        2,
        lambda: bench.registry.update_alias(
            FUNCTION, "prod", function_version="3", routing_config={}
        ),
    )

    done = await bench.run(
        bench.plan({"strategy": "Linear", "percent": 25, "interval": 5}), control
    )

    assert done.state == ReleaseState.STOPPED
    assert "was changed by someone else" in done.detail
    assert bench.alias() == ("3", {})  # nobody undid the other move


def _moves(book: ReleaseBook) -> list[tuple[float, str, dict[str, float]]]:
    return [(m["at"] - START, m["to"]["version"], m["to"]["weights"]) for m in book.moves]

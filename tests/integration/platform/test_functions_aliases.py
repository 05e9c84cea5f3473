"""Versions and aliases on real workers: weighted routing, alias moves, version isolation."""

# ruff: noqa: S311 - seeded pseudo-random draws are what alias routing uses on purpose

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from caravan.artifacts.zipfiles import zip_files
from caravan.platform.functions import FunctionRegistry, Invoker


def code(answer: str) -> bytes:
    app = f"""
import time


def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {{"answer": "{answer}", "version": context.function_version}}
"""
    return zip_files({"app.py": app.encode()})


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[tuple[FunctionRegistry, Invoker]]:
    registry = FunctionRegistry(tmp_path)
    registry.create_function("shop", handler="app.handler", code=code("one"), publish=True)
    registry.update_function_code("shop", code("two"), publish=True)
    invoker = Invoker(registry, rng=random.Random(2026))
    yield registry, invoker
    await invoker.aclose()


async def test_a_weighted_alias_splits_traffic_between_exactly_its_two_versions(
    platform: tuple[FunctionRegistry, Invoker],
) -> None:
    registry, invoker = platform
    registry.create_alias(
        "shop", "live", "1", routing_config={"AdditionalVersionWeights": {"2": 0.1}}
    )
    registry.update_function_code("shop", code("three"), publish=True)  # never routed to
    executed: Counter[str] = Counter()
    for _ in range(2000):
        result = await invoker.invoke("shop", b"{}", qualifier="live")
        answer = json.loads(result.payload)
        assert answer["version"] == result.executed_version
        assert answer["answer"] == {"1": "one", "2": "two"}[result.executed_version]
        executed[result.executed_version] += 1
    assert set(executed) == {"1", "2"}
    assert 160 <= executed["2"] <= 240  # 10 % of 2000, within three standard deviations
    assert invoker.metrics.stats("shop", "2").invocations == executed["2"]
    assert invoker.metrics.stats("shop", "3").invocations == 0


async def test_an_alias_move_takes_effect_on_the_next_invoke(
    platform: tuple[FunctionRegistry, Invoker],
) -> None:
    registry, invoker = platform
    alias = registry.create_alias("shop", "live", "1")
    before = await invoker.invoke("shop:live", b"{}")
    registry.update_alias("shop", "live", function_version="2", revision_id=alias["RevisionId"])
    after = await invoker.invoke("shop:live", b"{}")
    assert (before.executed_version, after.executed_version) == ("1", "2")
    assert json.loads(after.payload)["answer"] == "two"


async def test_two_versions_run_side_by_side_with_their_own_code(
    platform: tuple[FunctionRegistry, Invoker],
) -> None:
    _, invoker = platform
    slow = b'{"sleep": 0.3}'
    one, two, latest = await asyncio.gather(
        invoker.invoke("shop", slow, qualifier="1"),
        invoker.invoke("shop", slow, qualifier="2"),
        invoker.invoke("shop", slow),
    )
    assert json.loads(one.payload) == {"answer": "one", "version": "1"}
    assert json.loads(two.payload) == {"answer": "two", "version": "2"}
    assert json.loads(latest.payload) == {"answer": "two", "version": "$LATEST"}
    pids = {w.pid for w in invoker.runtime.workers("shop")}
    assert len(pids) == 3  # one warm environment per version

"""The engine's own cost: dispatch overhead per no-op action, and a trivial 2-stage pipeline
end to end — with durable state in SQLite (and PostgreSQL when --postgres is given), next to a
peer measured in the same run (doit, an in-process task runner without durable state).

usage: .venv/bin/python bench/bench_engine.py [--runs 7] [--chain 50] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from caravan.actions.base import Job, JobContext, JobResult, JobSucceeded
from caravan.actions.registry import ProviderRegistry
from caravan.engine.runtime import open_engine

HERE = Path(__file__).parent


async def noop(job: Job, ctx: JobContext) -> JobResult:
    return JobSucceeded()


def registry() -> ProviderRegistry:
    reg = ProviderRegistry()
    for category in ("Source", "Build", "Deploy"):
        reg.add(category, "Custom", "Noop", "1", noop)
    return reg


def act(name: str, category: str, run_order: int = 1) -> dict[str, Any]:
    return {
        "name": name,
        "runOrder": run_order,
        "actionTypeId": {
            "category": category,
            "owner": "Custom",
            "provider": "Noop",
            "version": "1",
        },
    }


def declaration(name: str, chain: int) -> dict[str, Any]:
    build = [act(f"Step{i}", "Build", run_order=i) for i in range(1, chain + 1)]
    return {
        "pipeline": {
            "name": name,
            "stages": [
                {"name": "Source", "actions": [act("Fetch", "Source")]},
                {"name": "Build", "actions": build},
            ],
        }
    }


async def until_done(engine: Any, events: Any, name: str, execution_id: str) -> None:
    async for event in events:
        if (
            event["type"] == "execution"
            and event["pipelineExecutionId"] == execution_id
            and event["status"] not in ("InProgress", "Stopping")
        ):
            assert event["status"] == "Succeeded", event
            return


async def measure(data: Path, database_url: str | None, runs: int, chain: int) -> dict[str, Any]:
    per_action: list[float] = []
    end_to_end: list[float] = []
    async with open_engine(data_dir=data, database_url=database_url, registry=registry()) as engine:
        await engine.call("CreatePipeline", declaration("chain", chain))
        await engine.call("CreatePipeline", declaration("trivial", 1))
        await asyncio.sleep(0.5)  # let the creation runs finish
        for _ in range(runs):
            for name in ("chain", "trivial"):
                events = engine.subscribe(name)
                waiter = asyncio.ensure_future(anext(events))  # subscribe before starting
                await asyncio.sleep(0)
                started = time.perf_counter()
                body = await engine.call("StartPipelineExecution", {"name": name})
                execution_id = body["pipelineExecutionId"]
                first = await waiter
                if not (
                    first.get("pipelineExecutionId") == execution_id
                    and first.get("status") == "Succeeded"
                    and first["type"] == "execution"
                ):
                    await until_done(engine, events, name, execution_id)
                elapsed = time.perf_counter() - started
                await events.aclose()
                if name == "trivial":
                    end_to_end.append(elapsed)
                else:
                    per_action.extend(await action_gaps(engine, execution_id))
    return {"per_action": per_action, "end_to_end": end_to_end}


async def action_gaps(engine: Any, execution_id: str) -> list[float]:
    """Time from one no-op action's end to the next one's end: the engine's cost per action."""
    body = await engine.call(
        "ListActionExecutions",
        {"pipelineName": "chain", "filter": {"pipelineExecutionId": execution_id}},
    )
    ends = sorted(
        a["lastUpdateTime"] for a in body["actionExecutionDetails"] if a["stageName"] == "Build"
    )
    return [b - a for a, b in itertools.pairwise(ends)]


def doit_peer(chain: int, runs: int) -> list[float] | None:
    """doit's marginal cost per step in a sequential chain (as in shared/reference/peers.md)."""
    venv = HERE / ".venv-peers"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "doit>=0.36,<1"], check=True)
    script = HERE / "peers" / "doit_chain.py"

    def run_s(n: int) -> float:
        output = subprocess.check_output([str(python), str(script), str(n)], text=True)
        return float(json.loads(output.strip().splitlines()[-1])["run_s"])

    return [(run_s(chain) - run_s(1)) / (chain - 1) for _ in range(runs)]


def stats(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"median {statistics.median(ms):7.3f} ms   p99 {p99:7.3f} ms   (n={len(ms)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--chain", type=int, default=50)
    parser.add_argument("--postgres", help="also measure with this PostgreSQL URL")
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()
    backends: list[tuple[str, str | None]] = [("sqlite", None)]
    if args.postgres:
        backends.append(("postgresql", args.postgres))
    results = {}
    for label, url in backends:
        with tempfile.TemporaryDirectory() as tmp:
            if url:
                from caravan.store import Database

                Database(url).drop_everything()
            results[label] = asyncio.run(measure(Path(tmp), url, args.runs, args.chain))
    for label, result in results.items():
        print(f"caravan/{label:10s} dispatch per no-op action: {stats(result['per_action'])}")
        print(f"caravan/{label:10s} trivial 2-stage pipeline:  {stats(result['end_to_end'])}")
    if not args.no_peer:
        peer = doit_peer(args.chain, args.runs)
        if peer:
            print(f"doit (in-process, no durable state) per step: {stats(peer)}")
            ratio = statistics.median(results["sqlite"]["per_action"]) / statistics.median(peer)
            print(f"ratio caravan/sqlite : doit per step = {ratio:.1f}x")


if __name__ == "__main__":
    main()

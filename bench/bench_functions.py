"""Cold start and warm invoke of caravan's functions, side by side with a naive peer and the floor.

    .venv/bin/python bench/bench_functions.py [--cold 30] [--warm 2000] [--write bench/FUNCTIONS.md]

Measured in one run, on one machine, with the same trivial handler (it returns its event):

* caravan cold start: the first invoke of a newly published version (worker process start,
  handler import, the request) — ``Invoker.invoke`` wall time;
* naive peer: a fresh ``python -c`` per call that imports the handler and calls it (what an
  emulator without warm workers does);
* caravan warm invoke: wall time of ``Invoker.invoke`` on a warm worker, and its overhead (wall
  time minus the handler's own duration as the worker measured it);
* floor: a direct in-process call of the handler with the same JSON decode/encode.

Targets: cold start at most 150 ms; warm overhead at most 1 ms (medians).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from caravan.artifacts.zipfiles import zip_files
from caravan.platform.functions import FunctionRegistry, Invoker
from caravan.platform.functions.metrics import percentile

HANDLER = b"def handler(event, context):\n    return event\n"
EVENT = b'{"path": "/hello", "httpMethod": "GET", "body": null}'
NAIVE = (
    "import json, sys; sys.path.insert(0, '.'); import app; "
    "print(json.dumps(app.handler(json.loads(sys.argv[1]), None)))"
)
COLD_TARGET_MS, WARM_OVERHEAD_TARGET_MS = 150.0, 1.0


@dataclass
class Row:
    name: str
    samples: list[float]
    target_ms: float | None = None

    @property
    def median(self) -> float:
        return percentile(sorted(self.samples), 0.5)

    @property
    def p99(self) -> float:
        return percentile(sorted(self.samples), 0.99)

    def verdict(self) -> str:
        if self.target_ms is None:
            return ""
        mark = "ok" if self.median <= self.target_ms else "MISSED"
        return f"{mark} (median <= {self.target_ms:g} ms)"


async def caravan_rows(root: Path, cold: int, warm: int) -> list[Row]:
    registry = FunctionRegistry(root)
    registry.create_function("bench", handler="app.handler", code=zip_files({"app.py": HANDLER}))
    versions = []
    for n in range(cold):  # each version differs by one variable, so each one is new
        registry.update_function_configuration("bench", environment={"BENCH_RUN": str(n)})
        versions.append(registry.publish_version("bench")["Version"])
    invoker = Invoker(registry, concurrency_limit=cold + 1)
    try:
        cold_ms = []
        for version in versions:
            started = time.perf_counter()
            await invoker.invoke("bench", EVENT, qualifier=version)
            cold_ms.append((time.perf_counter() - started) * 1000.0)
        for _ in range(50):  # warm-up
            await invoker.invoke("bench", EVENT, qualifier=versions[-1])
        wall_ms, overhead_ms = [], []
        for _ in range(warm):
            started = time.perf_counter()
            result = await invoker.invoke("bench", EVENT, qualifier=versions[-1])
            elapsed = (time.perf_counter() - started) * 1000.0
            wall_ms.append(elapsed)
            overhead_ms.append(elapsed - result.duration_ms)
    finally:
        await invoker.aclose()
    return [
        Row("caravan cold start (new version)", cold_ms, COLD_TARGET_MS),
        Row("caravan warm invoke (wall)", wall_ms),
        Row("caravan warm invoke overhead", overhead_ms, WARM_OVERHEAD_TARGET_MS),
    ]


def naive_row(code_dir: Path, calls: int) -> Row:
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", NAIVE, EVENT.decode()],
            cwd=code_dir,
            check=True,
            capture_output=True,
        )
        samples.append((time.perf_counter() - started) * 1000.0)
    return Row("naive peer: fresh `python -c` per call", samples)


def floor_row(code_dir: Path, calls: int) -> Row:
    namespace: dict[str, Callable[[object, object], object]] = {}
    exec(compile(HANDLER, str(code_dir / "app.py"), "exec"), namespace)
    handler = namespace["handler"]
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        json.dumps(handler(json.loads(EVENT), None)).encode()
        samples.append((time.perf_counter() - started) * 1000.0)
    return Row("floor: direct in-process call", samples)


def machine() -> str:
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs (nproc), "
        f"Python {platform.python_version()} ({sys.implementation.name})"
    )


def table(rows: list[Row]) -> str:
    lines = [
        "| measurement | n | median ms | p99 ms | target |",
        "|---|---:|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.name} | {len(row.samples)} | {row.median:.3f} | {row.p99:.3f} | "
            f"{row.verdict()} |"
        )
    return "\n".join(lines)


def summary(rows: list[Row]) -> str:
    by_name = {row.name.split(" (")[0].split(":")[0]: row for row in rows}
    cold, naive = by_name["caravan cold start"], by_name["naive peer"]
    warm = by_name["caravan warm invoke"]
    return (
        f"A cold start costs {cold.median / naive.median:.1f}x a naive call; every warm "
        f"invoke after it is {naive.median / warm.median:.0f}x faster than a naive call "
        f"(medians)."
    )


def report(rows: list[Row], command: str) -> str:
    return f"""## Functions: cold start and warm invoke

{table(rows)}

{summary(rows)}

Machine: {machine()}. Measured {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}.

Reproduce: `{command}`

- *cold start*: the first invoke of a newly published version — spawning the worker
  (`python -I -S worker.py`), importing the handler, and running the request; wall time of
  `Invoker.invoke`.
- *warm invoke*: a warm worker of the same version; *overhead* is the wall time minus the
  handler's own duration as the worker measured it (JSON framing over two pipes, log capture,
  the log-file append, metrics).
- *naive peer*: a fresh interpreter per call (`python -c` importing the handler), as an
  emulator without warm workers does; *floor*: calling the handler in-process with the same
  JSON decode and encode.
- Handler: `return event`; event: a 54-byte JSON object. Timings are medians and nearest-rank
  p99; the figures move with machine load, so compare rows from the same run.
"""


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", type=int, default=30, help="cold starts to measure")
    parser.add_argument("--warm", type=int, default=2000, help="warm invokes to measure")
    parser.add_argument("--write", type=Path, default=Path(__file__).with_name("FUNCTIONS.md"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="caravan-bench-") as temp:
        root = Path(temp)
        code_dir = root / "naive"
        code_dir.mkdir()
        (code_dir / "app.py").write_bytes(HANDLER)
        rows = await caravan_rows(root / "platform", args.cold, args.warm)
        rows.insert(1, naive_row(code_dir, args.cold))
        rows.append(floor_row(code_dir, args.warm))
    print(table(rows))
    print(f"\n{summary(rows)}\n{machine()}")
    command = f".venv/bin/python bench/bench_functions.py --cold {args.cold} --warm {args.warm}"
    args.write.write_text(report(rows, command), encoding="utf-8")
    print(f"written to {args.write}")


if __name__ == "__main__":
    asyncio.run(main())

"""Push to prod for the dromedary sample: from `git commit` in the app's repository to the
execution's Succeeded in Production (build, unit tests, deploy to test, end-to-end tests,
deploy to prod with its canary, smoke tests), plus the demo's "from nothing" time.

usage: .venv/bin/python bench/bench_push_to_prod.py [--runs 5]

The commit reaches caravan through the git hook the demo installed; nothing polls. The canary
of the sample's prod environment waits its 5 s interval, which is most of the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CARAVAN = [sys.executable, "-m", "caravan"]
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def demo(directory: Path) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(
        [*CARAVAN, "demo", "--once", "--dir", str(directory), "--port", "0"],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"caravan demo failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    port = re.search(r"listening on http://127\.0\.0\.1:(\d+)", done.stdout)
    assert port, done.stdout
    return elapsed, int(port.group(1))


def latest(url: str) -> dict:
    out = subprocess.run(
        [*CARAVAN, "--url", url, "executions", "dromedary", "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)["pipelineExecutionSummaries"][0]


def push_to_prod(repo: Path, url: str, n: int) -> float:
    before = latest(url)["pipelineExecutionId"]
    (repo / "site" / "bench.txt").write_text(f"change {n}\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, env=GIT_ENV, check=True)
    started = time.perf_counter()
    subprocess.run(
        ["git", "commit", "-q", "-m", f"bench change {n}"], cwd=repo, env=GIT_ENV, check=True
    )
    done = subprocess.run(
        [*CARAVAN, "--url", url, "wait", "dromedary", "--timeout", "120"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    after = latest(url)
    if done.returncode != 0 or after["pipelineExecutionId"] == before:
        sys.exit(f"the push did not reach prod: {after}\n{done.stdout}{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "dromedary"
        first, port = demo(repo)
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [*CARAVAN, "server", "--data", str(repo / ".caravan"), "--port", str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            server.stdout.readline()  # the ready line
            samples = [push_to_prod(repo, url, n) for n in range(args.runs)]
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
    print(f"from nothing to prod (caravan demo --once): {first:6.2f} s")
    print(
        f"push to prod, median of {len(samples)}: {statistics.median(samples):6.2f} s "
        f"(min {min(samples):.2f}, max {max(samples):.2f})"
    )


if __name__ == "__main__":
    main()

"""`caravan server` in a real process on a free loopback port, driven by the `caravan` CLI in
another process. The engine is the fake (installed as caravan.engine.runtime in the server
process), so these tests guard the serving, not the engine."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).parent
CARAVAN = Path(sys.executable).parent / "caravan"

SERVER = """
import contextlib, sys, types
sys.path.insert(0, {here!r})
from fake_engine import FakeEngine, declaration, fake_open_engine
from caravan.errors import InvalidInputError

engine = FakeEngine()
engine.add_pipeline(declaration("demo"))
opened = fake_open_engine(engine)

@contextlib.asynccontextmanager
async def open_engine(*, data_dir, database_url=None, settings=None):
    if database_url:
        raise InvalidInputError(f"database URL {{database_url!r}} is not supported")
    async with opened() as fake:
        print("engine opened over", data_dir, flush=True)
        yield fake
    print("engine closed", flush=True)

runtime = types.ModuleType("caravan.engine.runtime")
runtime.open_engine = open_engine
sys.modules["caravan.engine.runtime"] = runtime
from caravan.cli.main import main
main(["server", "--port", "0", *sys.argv[1:]])
"""


def start_server(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SERVER.format(here=str(HERE)), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class Lines:
    """The server's stdout, line by line, with a timeout (read by a thread)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def next(self, timeout: float = 15) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError(f"no line from the server within {timeout}s") from None
        self.seen.append(line)
        return line

    def rest(self) -> str:
        self.proc.wait(timeout=15)
        time.sleep(0.05)  # let the reader thread drain the pipe
        return "".join(self.lines.queue)


def test_server_serves_the_cli_and_shuts_down_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with start_server("--data", str(data)) as proc:
        lines = Lines(proc)
        try:
            assert lines.next().startswith(f"engine opened over {data}")
            ready = lines.next()
            pattern = r"caravan server listening on (http://127\.0\.0\.1:\d+) \(data: (.+)\)\n"
            match = re.fullmatch(pattern, ready)
            assert match, ready
            url = match[1]
            assert match[2] == str(data)
            assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
            status = caravan("--url", url, "status", "demo")
            assert status.returncode == 0, status.stderr
            assert status.stdout.startswith("demo  version 1")
            assert "Compile" in status.stdout
            missing = caravan("--url", url, "status", "nope")
            assert missing.returncode == 2
            assert missing.stderr == "caravan: error: pipeline 'nope' does not exist\n"
        finally:
            proc.send_signal(signal.SIGINT)
            out = lines.rest()
        assert proc.stderr is not None
        err = proc.stderr.read()
    assert proc.returncode == 0, err
    assert "engine closed" in out
    assert out.rstrip().endswith("caravan server stopped")
    assert "Traceback" not in err


def caravan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CARAVAN, *args], capture_output=True, text=True, timeout=30)


def test_engine_that_cannot_open_is_one_error_line(tmp_path: Path) -> None:
    with start_server("--data", str(tmp_path), "--database-url", "nope://x") as proc:
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "caravan: error: database URL 'nope://x' is not supported" in err
    assert "Traceback" not in err
    assert "listening" not in out

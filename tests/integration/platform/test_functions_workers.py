"""Warm workers on real processes: pools, concurrency, timeouts, memory, exits, shutdown."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from caravan.artifacts.zipfiles import zip_files
from caravan.platform.functions import (
    FunctionRegistry,
    Invoker,
    TooManyRequestsException,
    WorkerRuntime,
)

APP = b"""
import os, sys, time


def handler(event, context):
    action = event.get("action")
    if action == "sleep":
        print("going to sleep")
        if event.get("mark"):
            open(event["mark"], "w").close()
        time.sleep(event["seconds"])
    if action == "oom":
        hoard = bytearray(event["mb"] * 1024 * 1024)
        return len(hoard)
    if action == "exit":
        sys.exit(3)
    return {"pid": os.getpid(), "code": "A"}
"""
APP_B = APP.replace(b'"code": "A"', b'"code": "B"')


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def private_tmp(pid: int) -> Path:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return Path(next(v for v in environ if v.startswith(b"TMPDIR=")).decode()[len("TMPDIR=") :])


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[tuple[FunctionRegistry, Invoker]]:
    registry = FunctionRegistry(tmp_path)
    registry.create_function("work", handler="app.handler", code=zip_files({"app.py": APP}))
    invoker = Invoker(registry, concurrency_limit=3, keep_alive=300)
    yield registry, invoker
    await invoker.aclose()


async def invoke(invoker: Invoker, event: dict, name: str = "work") -> tuple[dict, str | None]:
    result = await invoker.invoke(name, json.dumps(event).encode())
    return json.loads(result.payload), result.function_error


async def test_concurrent_invokes_use_several_workers_up_to_the_limit(
    platform: tuple[FunctionRegistry, Invoker],
) -> None:
    _, invoker = platform
    slow = {"action": "sleep", "seconds": 0.4}
    running = [asyncio.create_task(invoke(invoker, slow)) for _ in range(3)]
    await asyncio.sleep(0.1)
    with pytest.raises(TooManyRequestsException) as caught:
        await invoke(invoker, {})
    assert caught.value.http_status == 429
    answers = await asyncio.gather(*running)
    assert len({answer["pid"] for answer, _ in answers}) == 3
    again = await asyncio.gather(*(invoke(invoker, {}) for _ in range(3)))
    assert {a["pid"] for a, _ in again} <= {a["pid"] for a, _ in answers}  # reused, not new
    assert invoker.metrics.stats("work", "$LATEST").throttles == 1


async def test_a_timeout_kills_the_worker_and_a_later_invoke_works(tmp_path: Path) -> None:
    registry = FunctionRegistry(tmp_path)
    registry.create_function(
        "work", handler="app.handler", code=zip_files({"app.py": APP}), timeout=1
    )
    invoker = Invoker(registry)
    try:
        first, _ = await invoke(invoker, {})
        result = await invoker.invoke(
            "work", b'{"action": "sleep", "seconds": 30}', log_type="Tail"
        )
        after, error = await invoke(invoker, {})
    finally:
        await invoker.aclose()
    assert result.status_code == 200 and result.function_error == "Unhandled"
    payload = json.loads(result.payload)
    assert payload["errorType"] == "Sandbox.Timedout"
    assert payload["errorMessage"].endswith(
        f"{result.request_id} Task timed out after 1.00 seconds"
    )
    assert not alive(first["pid"])
    assert error is None and after["pid"] != first["pid"]
    log = base64.b64decode(result.log_result or "").decode()
    assert "going to sleep" in log and "Task timed out after 1.00 seconds" in log


async def test_running_out_of_memory_is_a_function_error_and_the_worker_is_replaced(
    platform: tuple[FunctionRegistry, Invoker],
) -> None:
    _, invoker = platform
    first, _ = await invoke(invoker, {})
    small, error = await invoke(invoker, {"action": "oom", "mb": 16})
    assert (small, error) == (16 * 1024 * 1024, None)
    oom, error = await invoke(invoker, {"action": "oom", "mb": 400})  # MemorySize is 128
    assert error == "Unhandled" and oom["errorType"] == "Runtime.OutOfMemory"
    after, error = await invoke(invoker, {})
    assert error is None and after["pid"] != first["pid"]


async def test_a_handler_that_exits_is_a_runtime_exit_error(
    platform: tuple[FunctionRegistry, Invoker],
) -> None:
    _, invoker = platform
    exited, error = await invoke(invoker, {"action": "exit"})
    assert error == "Unhandled"
    assert exited["errorType"] == "Runtime.ExitError"
    assert exited["errorMessage"].endswith("Runtime exited with error: exit status 3")
    assert (await invoke(invoker, {}))[1] is None


async def test_idle_workers_exit_after_the_keep_alive(tmp_path: Path) -> None:
    registry = FunctionRegistry(tmp_path)
    registry.create_function("work", handler="app.handler", code=zip_files({"app.py": APP}))
    invoker = Invoker(registry, keep_alive=0.2)
    try:
        first, _ = await invoke(invoker, {})
        await asyncio.sleep(0.6)
        assert not alive(first["pid"])
        assert invoker.runtime.workers("work") == []
        second, _ = await invoke(invoker, {})
        assert second["pid"] != first["pid"]
    finally:
        await invoker.aclose()


async def test_new_latest_code_runs_on_the_next_invoke(
    platform: tuple[FunctionRegistry, Invoker],
) -> None:
    registry, invoker = platform
    old, _ = await invoke(invoker, {})
    assert old["code"] == "A"
    # changed from another thread, as a server's threadpool would
    await asyncio.to_thread(registry.update_function_code, "work", zip_files({"app.py": APP_B}))
    new, _ = await invoke(invoker, {})
    assert new["code"] == "B" and new["pid"] != old["pid"]
    await asyncio.sleep(0.05)
    assert not alive(old["pid"])  # the stale $LATEST worker was retired


async def test_delete_function_stops_its_workers(
    platform: tuple[FunctionRegistry, Invoker],
) -> None:
    registry, invoker = platform
    answer, _ = await invoke(invoker, {})
    registry.delete_function("work")
    await asyncio.sleep(0.1)
    assert not alive(answer["pid"])
    assert invoker.runtime.workers("work") == []


async def test_aclose_leaves_no_worker_process_behind(tmp_path: Path) -> None:
    registry = FunctionRegistry(tmp_path)
    registry.create_function("work", handler="app.handler", code=zip_files({"app.py": APP}))
    registry.create_function("other", handler="app.handler", code=zip_files({"app.py": APP_B}))
    invoker = Invoker(registry)
    busy = asyncio.create_task(invoke(invoker, {"action": "sleep", "seconds": 30}))
    answers = await asyncio.gather(invoke(invoker, {}), invoke(invoker, {}, name="other"))
    await asyncio.sleep(0.2)
    pids = {worker.pid for name in ("work", "other") for worker in invoker.runtime.workers(name)}
    pids |= {answer["pid"] for answer, _ in answers}
    assert len(pids) == 3 and all(pid is not None and alive(pid) for pid in pids)
    tmp_dirs = [private_tmp(pid) for pid in pids if pid]
    assert all(d.is_dir() for d in tmp_dirs)
    await invoker.aclose()
    assert not [pid for pid in pids if pid and alive(pid)]
    assert not [d for d in tmp_dirs if d.exists()]  # each worker's private TMPDIR is removed
    busy_answer, error = await busy
    assert error == "Unhandled" and busy_answer["errorType"] == "Runtime.ExitError"


CARAVAN_PARENT = """
import asyncio, json, sys
from pathlib import Path
from caravan.platform.functions import FunctionRegistry, Invoker

async def main():
    invoker = Invoker(FunctionRegistry(Path(sys.argv[1])))
    sleep = {"action": "sleep", "seconds": 60, "mark": sys.argv[2]}
    busy = asyncio.create_task(invoker.invoke("work", json.dumps(sleep).encode()))
    result = await invoker.invoke("work", b"{}")
    print(json.loads(result.payload)["pid"], flush=True)
    await busy

asyncio.run(main())
"""


def dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # killed; waiting for init to reap it


def test_workers_die_with_caravan(tmp_path: Path) -> None:
    """A SIGKILLed caravan cannot clean up: the kernel kills its workers (PDEATHSIG)."""
    registry = FunctionRegistry(tmp_path)
    registry.create_function("work", handler="app.handler", code=zip_files({"app.py": APP}))
    mark = tmp_path / "sleeping"
    parent = subprocess.Popen(
        [sys.executable, "-c", CARAVAN_PARENT, str(tmp_path), str(mark)], stdout=subprocess.PIPE
    )
    try:
        assert parent.stdout is not None
        idle_pid = int(parent.stdout.readline())
        for _ in range(250):  # until the busy worker is inside its handler
            if mark.exists():
                break
            time.sleep(0.02)
        children = Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text()
        workers = [int(pid) for pid in children.split()]
        assert idle_pid in workers and len(workers) == 2  # one idle, one busy sleeping
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
    for _ in range(100):
        if all(dead(pid) for pid in workers):
            break
        time.sleep(0.02)
    assert all(dead(pid) for pid in workers)
    orphans = f"caravan-fn-{parent.pid}-*"
    assert list(Path(tempfile.gettempdir()).glob(orphans))  # nobody could clean up ...
    WorkerRuntime()
    assert not list(Path(tempfile.gettempdir()).glob(orphans))  # ... until the next start

"""run_process: live output, a scrubbed environment, and nothing left running afterwards."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from process_helpers import alive, wait_dead

from caravan.actions import process
from caravan.actions.process import run_process, scrubbed_environment


def env_for(tmp_path: Path) -> dict[str, str]:
    return scrubbed_environment({}, home=tmp_path / ".home")


async def test_output_arrives_line_by_line_while_the_command_runs(tmp_path: Path) -> None:
    arrivals: list[tuple[float, str]] = []
    start = time.monotonic()
    result = await run_process(
        ["/bin/sh", "-c", "echo first; sleep 1; echo second >&2"],
        cwd=tmp_path,
        env=env_for(tmp_path),
        on_output=lambda line: arrivals.append((time.monotonic() - start, line)),
    )
    assert [line for _, line in arrivals] == ["first", "second"]
    assert arrivals[0][0] < 0.7 < arrivals[1][0]  # the first line did not wait for the end
    assert result.exit_code == 0
    assert result.output_tail == "first\nsecond\n"
    assert not result.timed_out


async def test_exit_code_and_last_line_without_newline(tmp_path: Path) -> None:
    lines: list[str] = []
    result = await run_process(
        ["/bin/sh", "-c", "printf 'a\\r\\nno newline'; exit 3"],
        cwd=tmp_path,
        env=env_for(tmp_path),
        on_output=lines.append,
    )
    assert result.exit_code == 3
    assert lines == ["a", "no newline"]


async def test_tail_keeps_the_last_64_kb(tmp_path: Path) -> None:
    count = 0

    def on_output(_line: str) -> None:
        nonlocal count
        count += 1

    result = await run_process(
        ["/bin/sh", "-c", "i=0; while [ $i -lt 20000 ]; do echo line$i; i=$((i+1)); done"],
        cwd=tmp_path,
        env=env_for(tmp_path),
        on_output=on_output,
    )
    assert count == 20000
    assert len(result.output_tail.encode()) <= process.TAIL_BYTES
    assert result.output_tail.endswith("line19999\n")


async def test_stdin_is_fed_to_the_command(tmp_path: Path) -> None:
    lines: list[str] = []
    await run_process(
        ["/bin/cat"], cwd=tmp_path, env=env_for(tmp_path), on_output=lines.append, stdin=b"x\ny"
    )
    assert lines == ["x", "y"]


async def test_a_failing_output_callback_does_not_stop_the_command(tmp_path: Path) -> None:
    seen: list[str] = []

    def on_output(line: str) -> None:
        seen.append(line)
        raise RuntimeError("sink broke")

    result = await run_process(
        ["/bin/sh", "-c", "echo a; echo b"],
        cwd=tmp_path,
        env=env_for(tmp_path),
        on_output=on_output,
    )
    assert seen == ["a", "b"]
    assert result.exit_code == 0


async def test_environment_is_scrubbed_and_home_is_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    monkeypatch.setenv("CARAVAN_TEST_TOKEN", "do-not-leak-either")
    monkeypatch.setenv("LANG", "C.UTF-8")
    lines: list[str] = []
    env = scrubbed_environment({"GREETING": "hi"}, home=tmp_path / "w" / ".home")
    await run_process(["/usr/bin/env"], cwd=tmp_path, env=env, on_output=lines.append)
    seen = dict(line.split("=", 1) for line in lines)
    assert "do-not-leak" not in "\n".join(lines)
    assert "AWS_SECRET_ACCESS_KEY" not in seen and "CARAVAN_TEST_TOKEN" not in seen
    assert seen["HOME"] == str(tmp_path / "w" / ".home") != str(Path.home())
    assert (tmp_path / "w" / ".home").is_dir()
    assert seen["LANG"] == "C.UTF-8" and seen["GREETING"] == "hi" and "PATH" in seen


async def test_the_environment_is_exactly_the_one_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARAVAN_TEST_INHERITED", "1")
    lines: list[str] = []
    await run_process(["/usr/bin/env"], cwd=tmp_path, env={"ONLY": "this"}, on_output=lines.append)
    assert lines == ["ONLY=this"]


async def test_cancellation_kills_the_child_and_its_grandchild(tmp_path: Path) -> None:
    pids: list[int] = []
    two_pids = asyncio.Event()

    def on_output(line: str) -> None:
        pids.append(int(line))
        if len(pids) == 2:
            two_pids.set()

    script = "sh -c 'sleep 60 & echo $!; wait' & sleep 60 & echo $!; wait"
    task = asyncio.create_task(
        run_process(
            ["/bin/sh", "-c", script], cwd=tmp_path, env=env_for(tmp_path), on_output=on_output
        )
    )
    await asyncio.wait_for(two_pids.wait(), 5)
    assert all(alive(pid) for pid in pids)
    start = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - start < 3
    assert wait_dead(pids, 0.5) == []


async def test_timeout_stops_the_group(tmp_path: Path) -> None:
    pids: list[int] = []
    start = time.monotonic()
    result = await run_process(
        ["/bin/sh", "-c", "sleep 60 & echo $!; wait"],
        cwd=tmp_path,
        env=env_for(tmp_path),
        on_output=lambda line: pids.append(int(line)),
        timeout=0.3,
    )
    assert result.timed_out
    assert result.exit_code == -signal.SIGTERM
    assert time.monotonic() - start < 2.5
    assert wait_dead(pids, 0.5) == []


async def test_a_command_ignoring_sigterm_gets_sigkill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process, "TERM_GRACE_SECONDS", 0.3)
    start = time.monotonic()
    result = await run_process(
        ["/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"],
        cwd=tmp_path,
        env=env_for(tmp_path),
        on_output=lambda _line: None,
        timeout=0.3,
    )
    assert result.timed_out
    assert result.exit_code == -signal.SIGKILL
    assert time.monotonic() - start < 2


async def test_background_leftovers_are_stopped_when_the_command_ends(tmp_path: Path) -> None:
    pids: list[int] = []
    result = await run_process(
        ["/bin/sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"],
        cwd=tmp_path,
        env=env_for(tmp_path),
        on_output=lambda line: pids.append(int(line)),
    )
    assert result.exit_code == 0
    assert wait_dead(pids, 1.0) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_children_die_when_caravan_is_killed(tmp_path: Path) -> None:
    """Even kill -9 of caravan does not leave the user's command running."""
    program = textwrap.dedent(
        """
        import asyncio, sys
        from pathlib import Path
        from caravan.actions.process import run_process

        def show(line):
            print(line, flush=True)

        asyncio.run(run_process(["/bin/sleep", "60"], cwd=Path("."), env={}, on_output=show))
        """
    )
    # The sleep prints nothing: find it as the only child of the runner.
    runner = subprocess.Popen([sys.executable, "-c", program], cwd=tmp_path)
    try:
        child = _wait_for_child(runner.pid)
        assert alive(child)
    finally:
        runner.kill()
        runner.wait()
    assert wait_dead([child], 3.0) == []


def _wait_for_child(parent: int) -> int:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        for pid in children:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"/bin/sleep"):
                return int(pid)
        time.sleep(0.02)
    raise AssertionError("the runner never started its child")

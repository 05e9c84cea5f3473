"""The parent side of one worker process: spawn, request/response frames, log capture, kill.

A ``WorkerProcess`` is one warm execution environment of one function version. It starts
worker.py with a scrubbed environment (see ``worker_environment``) in the version's code
directory, waits for the init phase, then runs one request at a time: it writes a frame on the
request pipe, enforces the timeout (killing the process group on expiry), and returns a
``RawOutcome`` with the worker's answer and the output the function wrote during that request.
Everything is event-driven on the asyncio loop (pipe protocols, one timer per request).

Workers die with caravan: each one asks the kernel to SIGKILL it when its parent dies
(``prctl(PR_SET_PDEATHSIG)`` through ctypes, Linux) first thing in worker.py, then checks its
parent is still the caravan that started it. Doing it there rather than in a ``preexec_fn`` keeps
the spawn thread-safe (Python documents preexec_fn as unsafe with threads) and on the fast vfork
path (a preexec_fn forces fork: about 10 ms per spawn from a large server process). A killed
caravan leaves its workers' private tmp directories behind; the next runtime removes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from caravan.platform.functions.errors import ServiceException
from caravan.platform.functions.layer import RuntimeExtras, worker_path_variable
from caravan.platform.functions.records import Scope, VersionRecord

WORKER_SCRIPT = Path(__file__).with_name("worker.py")
# RLIMIT_DATA is the function's MemorySize plus this much for the interpreter itself (its heap,
# the handler's imports, thread stacks): a 128 MB function may use up to 192 MiB of data.
INTERPRETER_ALLOWANCE_MB = 64
INIT_LIMIT_S = 10.0  # Lambda's limit on the init phase
LOG_GRACE_S = 1.0  # how long to wait for the end-of-output marker once the answer is in
MAX_CAPTURE = 1024 * 1024  # output kept per request; older bytes are dropped past this
MINIMAL_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "en_US.UTF-8", "TZ": ":UTC"}
_HEADER = struct.Struct(">II")
TMP_PREFIX = "caravan-fn-"  # + caravan's pid: a private HOME/TMPDIR per worker

Status = Literal["ok", "error", "bad_request", "oom", "timeout", "exited"]


@dataclass(frozen=True)
class WorkerRequest:
    request_id: str
    payload: bytes
    invoked_function_arn: str
    timeout_s: float
    client_context: Mapping[str, Any] | None = None


@dataclass
class RawOutcome:
    """What happened to one request, before Lambda's shaping (see invoke.py)."""

    status: Status
    payload: bytes = b""
    output: bytes = b""  # the function's stdout/stderr during this request
    duration_ms: float = 0.0
    max_memory_mb: int = 0
    detail: str = ""  # bad_request: the parse error; exited: "exit status 1" / "signal: killed"
    init_output: bytes | None = None  # set on the first request of a worker (a cold start)
    init_ms: float | None = None
    log_stream: str = ""


class _Gone(Exception):
    """The worker exited (or was killed) before answering."""


class _TimedOut(Exception):
    pass


def worker_environment(
    version: VersionRecord, *, scope: Scope, log_stream: str, tmp_dir: Path
) -> dict[str, str]:
    """Lambda's environment: minimal basics, the function's variables, the reserved ones.
    Nothing of caravan's own environment (credentials, tokens) reaches the function."""
    name = version.function_name
    env = dict(MINIMAL_ENV)
    env.update(version.environment)
    env.update(
        {
            "_HANDLER": version.handler,
            "AWS_REGION": scope.region,
            "AWS_DEFAULT_REGION": scope.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{version.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(version.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": version.version,
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "LAMBDA_TASK_ROOT": str(version.code_dir),
            "LAMBDA_RUNTIME_DIR": str(WORKER_SCRIPT.parent),
            "TZ": ":UTC",
            "HOME": str(tmp_dir),
            "TMPDIR": str(tmp_dir),
        }
    )
    return env


def sweep_orphaned_tmp_dirs() -> None:
    """Remove the private tmp directories of workers whose caravan process is gone (killed
    before it could clean up)."""
    for path in Path(tempfile.gettempdir()).glob(f"{TMP_PREFIX}*-*"):
        owner = path.name[len(TMP_PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists() and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def new_log_stream(version: str) -> str:
    """Lambda's stream name: ``2026/11/26/[$LATEST]<32 hex>``, one per environment."""
    return f"{datetime.now(UTC):%Y/%m/%d}/[{version}]{secrets.token_hex(16)}"


class _Frames(asyncio.Protocol):
    """Reads ``>II`` + header + body frames from the worker's response pipe."""

    def __init__(
        self, on_frame: Callable[[dict[str, Any], bytes], None], on_lost: Callable[[], None]
    ):
        self._buffer = bytearray()
        self._on_frame = on_frame
        self._on_lost = on_lost

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= _HEADER.size:
            header_size, body_size = _HEADER.unpack_from(self._buffer)
            end = _HEADER.size + header_size + body_size
            if len(self._buffer) < end:
                return
            header = json.loads(self._buffer[_HEADER.size : _HEADER.size + header_size])
            body = bytes(self._buffer[_HEADER.size + header_size : end])
            del self._buffer[:end]
            self._on_frame(header, body)

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost()


class _Output(asyncio.Protocol):
    """Collects the function's output; ``until(marker)`` resolves with the bytes written before
    the worker's end-of-output marker for that request."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._dropped = 0
        self._marker = b""
        self._scan_from = 0
        self._waiter: asyncio.Future[bytes] | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def until(self, marker: str) -> asyncio.Future[bytes]:
        self._marker = b"\0caravan-log-end:%s\0" % marker.encode()
        self._scan_from = 0
        self._waiter = asyncio.get_running_loop().create_future()
        self._scan()
        return self._waiter

    def take(self) -> bytes:
        """Everything collected so far (after a kill: what the function managed to write)."""
        data = self._prefix() + bytes(self._buffer)
        self._buffer.clear()
        self._dropped = 0
        return data

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._scan()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def _scan(self) -> None:
        if self._waiter is None or self._waiter.done():
            return
        index = self._buffer.find(self._marker, self._scan_from)
        if index >= 0:
            data = self._prefix() + bytes(self._buffer[:index])
            del self._buffer[: index + len(self._marker)]
            self._dropped = 0
            self._waiter.set_result(data)
            return
        if len(self._buffer) > MAX_CAPTURE:  # a chatty function: keep the newest half
            drop = len(self._buffer) - MAX_CAPTURE // 2
            del self._buffer[:drop]
            self._dropped += drop
        self._scan_from = max(0, len(self._buffer) - len(self._marker) + 1)

    def _prefix(self) -> bytes:
        if not self._dropped:
            return b""
        return b"[caravan: %d bytes of earlier output dropped]\n" % self._dropped


@dataclass(eq=False)
class WorkerProcess:
    """One warm environment of ``version``; ``start()`` then ``run()`` one request at a time."""

    version: VersionRecord
    scope: Scope
    log_stream: str = field(init=False)
    pool_key: str = ""
    extras: RuntimeExtras = field(default_factory=RuntimeExtras)
    stale: bool = False  # retire instead of reuse when the current request ends
    _proc: asyncio.subprocess.Process | None = field(default=None, init=False)
    _tmp: Path | None = field(default=None, init=False)
    _transports: list[asyncio.BaseTransport] = field(default_factory=list, init=False)
    _requests: asyncio.WriteTransport | None = field(default=None, init=False)
    _output: _Output | None = field(default=None, init=False)
    _waiter: asyncio.Future[tuple[dict[str, Any], bytes]] | None = field(default=None, init=False)
    _exited: bool = field(default=False, init=False)
    _init: tuple[bytes, float] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.log_stream = new_log_stream(self.version.version)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and not self._exited and self._proc.returncode is None

    async def start(self) -> None:
        """Spawn the worker and wait for its init phase (the handler's import) to finish."""
        loop = asyncio.get_running_loop()
        self._tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-"))
        env = worker_environment(
            self.version, scope=self.scope, log_stream=self.log_stream, tmp_dir=self._tmp
        )
        env.update(self.extras.env())  # reserved: the function's variables cannot override them
        env.update(worker_path_variable(self.extras))
        request_r, request_w = os.pipe()
        response_r, response_w = os.pipe()
        output_r, output_w = os.pipe()
        limit = (self.version.memory_size + INTERPRETER_ALLOWANCE_MB) * 1024 * 1024
        argv = [str(request_r), str(response_w), str(os.getpid()), str(limit)]
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-I", "-S", str(WORKER_SCRIPT), *argv,
                cwd=self.version.code_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output_w,
                stderr=subprocess.STDOUT,
                pass_fds=(request_r, response_w),
                start_new_session=True,  # its own process group: killed as a whole
            )  # fmt: skip
        except OSError as exc:
            for fd in (request_w, response_r, output_r):
                os.close(fd)
            raise ServiceException(
                f"could not start a worker for {self.version.function_name}:"
                f"{self.version.version} in {self.version.code_dir}: {exc}"
            ) from exc
        finally:
            for fd in (request_r, response_w, output_w):
                _close_quietly(fd)
        self._output = _Output()
        self._waiter = loop.create_future()
        frames = _Frames(self._on_frame, self._on_lost)
        self._transports.append(await _read_pipe(response_r, frames))
        self._transports.append(await _read_pipe(output_r, self._output))
        requests, _ = await loop.connect_write_pipe(
            asyncio.Protocol, os.fdopen(request_w, "wb", buffering=0)
        )
        self._requests = requests
        self._transports.append(requests)
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        assert self._waiter is not None and self._output is not None
        init_output = self._output.until("init")
        timer = asyncio.get_running_loop().call_later(INIT_LIMIT_S, self._expire)
        try:
            header, _ = await self._waiter
        except (_Gone, _TimedOut):
            self._init = (self._output.take(), 0.0)
            return  # the first request reports the exit (or the init timeout) as Lambda does
        finally:
            timer.cancel()
        self._init = (await self._settle(init_output), float(header.get("init_ms", 0.0)))

    async def run(self, request: WorkerRequest) -> RawOutcome:
        """Run one request; a timeout kills the worker (the caller replaces it)."""
        assert self._output is not None and self._requests is not None
        init, self._init = self._init, None
        started = time.perf_counter()
        if self.alive:
            outcome = await self._exchange(request, first=init is not None)
        else:
            outcome = RawOutcome("exited")
        if outcome.status in ("timeout", "exited"):
            outcome.duration_ms = (time.perf_counter() - started) * 1000.0
            if outcome.status == "exited":
                outcome.detail = await self._exit_detail()
            outcome.output = await self._drain()
        if init is not None:
            outcome.init_output, outcome.init_ms = init
        outcome.log_stream = self.log_stream
        return outcome

    async def _exchange(self, request: WorkerRequest, *, first: bool) -> RawOutcome:
        assert self._output is not None and self._requests is not None
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        output = self._output.until(request.request_id)
        header = {
            "request_id": request.request_id,
            "deadline_ms": int(time.time() * 1000 + request.timeout_s * 1000),
            "invoked_function_arn": request.invoked_function_arn,
            "client_context": request.client_context,
            "first": first,
        }
        encoded = json.dumps(header).encode()
        frame = _HEADER.pack(len(encoded), len(request.payload)) + encoded
        if len(request.payload) < 65536:  # one write (one syscall) for the common small event
            self._requests.write(frame + request.payload)
        else:
            self._requests.write(frame)
            self._requests.write(request.payload)
        timer = loop.call_later(request.timeout_s, self._expire)
        try:
            answer, body = await self._waiter
        except _TimedOut:
            return RawOutcome("timeout")
        except _Gone:
            return RawOutcome("exited")
        finally:
            timer.cancel()
        return RawOutcome(
            status=answer["status"],
            payload=body,
            output=await self._settle(output),
            duration_ms=float(answer.get("duration_ms", 0.0)),
            max_memory_mb=-(-int(answer.get("max_rss_kb", 0)) // 1024),
            detail=answer.get("message", ""),
        )

    async def _settle(self, output: asyncio.Future[bytes]) -> bytes:
        if not output.done():
            try:
                await asyncio.wait_for(asyncio.shield(output), LOG_GRACE_S)
            except TimeoutError:
                assert self._output is not None
                return self._output.take()
        return output.result()

    async def _drain(self) -> bytes:
        """After an exit: wait briefly for the output pipe to close, then take what came."""
        assert self._output is not None
        with contextlib.suppress(TimeoutError):  # else a grandchild still holds the pipe
            await asyncio.wait_for(asyncio.shield(self._output.closed), 0.2)
        return self._output.take()

    async def _exit_detail(self) -> str:
        assert self._proc is not None
        try:
            code = await asyncio.wait_for(self._proc.wait(), 1.0)
        except TimeoutError:
            return "unknown exit"
        if code < 0:
            return f"signal: {signal.Signals(-code).name.removeprefix('SIG').lower()}"
        return f"exit status {code}"

    def kill(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
        self._exited = True

    async def close(self) -> None:
        """Kill the worker, reap it, release its pipes and private tmp directory."""
        self.kill()
        if self._proc is not None:
            await self._proc.wait()
        for transport in self._transports:
            transport.close()
        self._transports.clear()
        if self._tmp is not None:
            await asyncio.to_thread(shutil.rmtree, self._tmp, True)
            self._tmp = None

    def _on_frame(self, header: dict[str, Any], body: bytes) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result((header, body))

    def _on_lost(self) -> None:
        self._exited = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(_Gone())

    def _expire(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(_TimedOut())
        self.kill()


async def _read_pipe(fd: int, protocol: asyncio.Protocol) -> asyncio.BaseTransport:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_read_pipe(lambda: protocol, os.fdopen(fd, "rb", buffering=0))
    return transport


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)

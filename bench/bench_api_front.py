"""Requests per second through caravan's API front, side by side with `chalice local` and a floor.

    .venv/bin/python bench/bench_api_front.py [--duration 5] [--reps 3] [--cold 30]
        [--client auto|wrk|python] [--no-peer] [--function-concurrency N]
        [--write bench/API_FRONT.md]

Three HTTP servers on 127.0.0.1, each in its own subprocess, answer ``GET /hello`` with
``{"ok": true}``, measured in one run by one client:

* caravan: a function (its handler returns ``{"statusCode": 200, "body": "{\\"ok\\": true}"}``)
  published as version 1 with alias ``live``; an OpenAPI definition routes ``GET /hello`` to
  it through the alias (``aws_proxy``, payload 1.0); ``Gateway`` + ``FrontRouter`` under uvicorn
  (one process, the server's own settings), the function's warm worker pool as configured by
  default (``--function-concurrency`` changes its limit);
* peer: ``chalice local --no-autoreload`` serving bench/peers/chalice_app (installed into
  bench/.venv-peers on first run, never into the project), measured twice: on kept-alive
  connections, and with ``Connection: close`` (http.server's keep-alive stalls ~40 ms on
  delayed ACKs);
* floor: a bare ASGI app answering the same JSON under the same uvicorn.

Load: ``wrk`` (one thread) when installed, else a Python asyncio client on raw keep-alive
connections; concurrency 1 and 16, ``--duration`` seconds each, ``--reps`` times, interleaved.
Then the cold start through HTTP: publish a new version, move ``live`` to it, time the first
request (``--cold`` samples). Every subprocess is stopped on exit, Ctrl-C or failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import itertools
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from caravan.errors import CaravanError
from caravan.platform.functions.metrics import percentile
from caravan.platform.functions.runtime import DEFAULT_CONCURRENCY

HERE = Path(__file__).resolve().parent
PEERS_VENV = HERE / ".venv-peers"
CHALICE_APP = HERE / "peers" / "chalice_app"
CHALICE_REQUIREMENT = "chalice>=1.31,<2"
HANDLER = (
    b'def handler(event, context):\n    return {"statusCode": 200, "body": "{\\"ok\\": true}"}\n'
)
FUNCTION, ALIAS, API, STAGE = "bench", "live", "bench", "api"
CARAVAN_PATH, PLAIN_PATH = f"/apis/{API}/{STAGE}/hello", "/hello"
CONTROL_PATH = "/_bench/publish"  # the caravan server's own hook for the cold-start samples
DEFINITION = {
    "openapi": "3.0.1",
    "info": {"title": "bench", "version": "1"},
    "paths": {
        "/hello": {
            "get": {
                "x-amazon-apigateway-integration": {
                    "type": "aws_proxy",
                    "httpMethod": "POST",
                    "payloadFormatVersion": "1.0",
                    "uri": "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
                    "arn:aws:lambda:us-east-1:123456789012:function:bench:"
                    "${stageVariables.alias}/invocations",
                }
            }
        }
    },
}
CONCURRENCY = (1, 16)
CHALICE_CLOSE = "chalice, Connection: close"
READY_TIMEOUT_S = 60.0
WARM_P50_TARGET_MS, WARM_P99_TARGET_MS, COLD_TARGET_MS = 5.0, 20.0, 150.0
WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, '
    .. '"read_errors": %d, "p50_us": %f, "p99_us": %f}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.write + e.timeout, e.read,
    latency:percentile(50), latency:percentile(99)))
end
"""

# ------------------------------------------------------------------ the servers (subprocess side)


async def lifespan(
    receive: Receive, send: Send, on_shutdown: Callable[[], Awaitable[None]]
) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await on_shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _nothing() -> None:
    return None


def floor_app() -> ASGIApp:
    """The same JSON answered directly: what uvicorn alone costs."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send, _nothing)
        else:
            await answer(send, 200, b'{"ok": true}')

    return app


def caravan_app(root: Path, concurrency_limit: int) -> ASGIApp:
    """The function behind its alias, the API stage routing to it, and the cold-start hook."""
    from caravan.artifacts.zipfiles import zip_files
    from caravan.platform.api import FrontRouter, Gateway, RollingMetrics, load_definition
    from caravan.platform.functions import FunctionRegistry, Invoker

    registry = FunctionRegistry(root)
    code = zip_files({"app.py": HANDLER})
    registry.create_function(FUNCTION, handler="app.handler", code=code, publish=True)
    registry.create_alias(FUNCTION, ALIAS, "1")
    invoker = Invoker(registry, concurrency_limit=concurrency_limit)
    gateway = Gateway(invoker, recorder=RollingMetrics())
    gateway.deploy(API, STAGE, load_definition(DEFINITION), {"alias": ALIAS})
    runs = itertools.count(1)

    async def control(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send, invoker.aclose)  # stops and reaps every worker
        elif scope["type"] == "http" and (scope["method"], scope["path"]) == ("POST", CONTROL_PATH):
            # each version differs by one variable, so each one is new and starts cold
            registry.update_function_configuration(FUNCTION, environment={"RUN": str(next(runs))})
            version = registry.publish_version(FUNCTION)["Version"]
            registry.update_alias(FUNCTION, ALIAS, function_version=version)
            await answer(send, 200, json.dumps({"version": version}).encode())
        else:
            await answer(send, 404, b'{"message": "Not Found"}')

    return FrontRouter(gateway, fallback=control)


def serve(kind: str, port: int, data: Path, concurrency_limit: int) -> None:
    """Run one server with the settings `caravan server` uses (caravan/server/main.py)."""
    import uvicorn

    app = caravan_app(data, concurrency_limit) if kind == "caravan" else floor_app()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=3,
    )


# ------------------------------------------------------------------ HTTP client (raw keep-alive)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


class Connection:
    """One keep-alive HTTP/1.1 connection: the least client overhead Python offers."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, method: str, path: str, *, close: bool = False) -> Reply:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        extra = "Content-Length: 0\r\n" if method == "POST" else ""
        extra += "Connection: close\r\n" if close else ""
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{extra}\r\n"
        writer.write(head.encode("latin-1"))
        raw = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in raw[1:] if ": " in line)
        if "content-length" not in headers:
            raise CaravanError(f"{method} {path}: the answer has no Content-Length: {raw}")
        body = await reader.readexactly(int(headers["content-length"]))
        if close or headers.get("connection", "").lower() == "close":
            self.close()
        return Reply(int(raw[0].split()[1]), headers, body)

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


# ------------------------------------------------------------------ the servers (driver side)


@dataclass
class Server:
    name: str
    url: str  # the /hello URL
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 20) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:]) or "(empty)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running(name: str, argv: list[str], path: str, port: int, logs: Path) -> Iterator[Server]:
    """Start a server in its own session, wait until it answers, stop it whatever happens."""
    log = logs / f"{name}.log"
    with log.open("wb") as out:  # a file, never a pipe: an unread pipe would stall the server
        try:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us only; we stop it in order
            )  # fmt: skip
        except OSError as exc:
            raise CaravanError(f"cannot start {name} ({argv[0]}): {exc}") from None
    server = Server(name, f"http://127.0.0.1:{port}{path}", process, log)
    try:
        asyncio.run(wait_ready(server))
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()  # uvicorn shuts down gracefully: the lifespan reaps the workers
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # still unreaped, so the group is ours
    process.wait()


async def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    path = urlsplit(server.url).path
    while True:
        if server.process.poll() is not None:
            raise CaravanError(
                f"{server.name} exited with status {server.process.returncode} before serving "
                f"{server.url}; the end of its log:\n{server.log_tail()}"
            )
        connection = Connection(server.url)
        try:
            reply = await connection.request("GET", path)
        except (OSError, asyncio.IncompleteReadError):
            reply = None
        finally:
            connection.close()
        if reply is not None:
            if reply.status == 200 and _json(reply.body) == {"ok": True}:
                return
            raise CaravanError(
                f"{server.name} answered GET {server.url} with {reply.status} {reply.body!r}, "
                'not 200 {"ok": true}'
            )
        if time.monotonic() > deadline:
            raise CaravanError(
                f"{server.name} did not answer {server.url} within {READY_TIMEOUT_S:g} s; "
                f"the end of its log:\n{server.log_tail()}"
            )
        await asyncio.sleep(0.1)


def ensure_chalice() -> str:
    """Chalice's version in bench/.venv-peers, the venv created and filled on first use."""
    python = PEERS_VENV / "bin" / "python"
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
        probe = [str(python), "-c", "import chalice"]
        if subprocess.run(probe, capture_output=True).returncode != 0:
            install = [str(python), "-m", "pip", "install", "-q", CHALICE_REQUIREMENT]
            subprocess.run(install, check=True)
    except subprocess.CalledProcessError as exc:
        raise CaravanError(
            f"could not install {CHALICE_REQUIREMENT} into {PEERS_VENV}: {exc}",
            hint="check network access to the package index, or run with --no-peer",
        ) from None
    code = "import chalice; print(chalice.__version__)"
    return subprocess.check_output([str(python), "-c", code], text=True).strip()


def chalice_command(port: int) -> list[str]:
    chalice = str(PEERS_VENV / "bin" / "chalice")
    options = ["--host", "127.0.0.1", "--port", str(port), "--no-autoreload"]
    return [chalice, "--project-dir", str(CHALICE_APP), "local", *options]


# ------------------------------------------------------------------ load and cold starts


@dataclass(frozen=True)
class Target:
    """What one row measures: a server's URL, on kept-alive or one-request connections."""

    name: str
    url: str
    close: bool = False  # send `Connection: close`: a new connection per request


@dataclass(frozen=True)
class Load:
    rps: float  # 2xx answers per second
    p50_ms: float
    p99_ms: float
    failed: int  # non-2xx answers and socket errors


Results = dict[tuple[str, int], Load]  # (row name, concurrency) -> medians of the runs


def wrk_load(target: Target, concurrency: int, duration: float, script: Path) -> Load:
    url = target.url
    argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{duration:g}s", "--timeout", "10s"]
    argv += ["-H", "Connection: close"] if target.close else []
    out = subprocess.run([*argv, "-s", str(script), url], capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith('{"requests"')]
    if out.returncode != 0 or not lines:
        raise CaravanError(f"wrk failed on {url} (exit {out.returncode}): {out.stderr.strip()}")
    run = json.loads(lines[-1])
    ok = run["requests"] - run["non_2xx"]
    # with Connection: close wrk counts every server-side close as a read error: not a failure
    failed = run["non_2xx"] + run["socket_errors"] + (0 if target.close else run["read_errors"])
    return Load(ok / (run["duration_us"] / 1e6), run["p50_us"] / 1e3, run["p99_us"] / 1e3, failed)


async def python_load(target: Target, concurrency: int, duration: float) -> Load:
    path = urlsplit(target.url).path
    samples: list[float] = []
    non_2xx = errors = 0
    started = time.perf_counter()
    deadline = started + duration

    async def client() -> None:
        nonlocal non_2xx, errors
        connection = Connection(target.url)
        try:
            while (sent := time.perf_counter()) < deadline:
                try:
                    reply = await connection.request("GET", path, close=target.close)
                except (OSError, asyncio.IncompleteReadError):
                    errors += 1
                    connection.close()
                    continue
                samples.append((time.perf_counter() - sent) * 1000)
                if not 200 <= reply.status < 300:
                    non_2xx += 1
        finally:
            connection.close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ordered = sorted(samples) or [float("nan")]
    ok = len(samples) - non_2xx
    p50, p99 = percentile(ordered, 0.5), percentile(ordered, 0.99)
    return Load(ok / elapsed, p50, p99, non_2xx + errors)


async def cold_starts(url: str, samples: int) -> list[float]:
    """The first request to a newly published version, through the alias and the stage."""
    control, hello = Connection(url), Connection(url)
    path = urlsplit(url).path
    timings = []
    try:
        for _ in range(samples):
            published = await control.request("POST", CONTROL_PATH)
            version = json.loads(published.body)["version"]
            started = time.perf_counter()
            reply = await hello.request("GET", path)
            timings.append((time.perf_counter() - started) * 1000)
            executed = reply.headers.get("x-amz-executed-version")
            if reply.status != 200 or executed != version:
                raise CaravanError(
                    f"cold start: GET {url} answered {reply.status} from version {executed}, "
                    f"expected 200 from the new version {version}: {reply.body!r}"
                )
    finally:
        control.close()
        hello.close()
    return timings


# ------------------------------------------------------------------ the report


def median_load(runs: list[Load]) -> Load:
    return Load(
        statistics.median(r.rps for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        sum(r.failed for r in runs),
    )


def verdict(value: float, target: float) -> str:
    return f"{'ok' if value <= target else 'MISSED'} (<= {target:g} ms)"


def tables(results: Results, cold: list[float], reps: int) -> str:
    lines = [
        f"| server | concurrency | req/s (median of {reps}) | p50 ms | p99 ms | failed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for (name, concurrency), load in results.items():
        lines.append(
            f"| {name} | {concurrency} | {load.rps:,.0f} | {load.p50_ms:.2f} | "
            f"{load.p99_ms:.2f} | {load.failed} |"
        )
    lines += ["", "| ratio of req/s | " + " | ".join(f"c={c}" for c in CONCURRENCY) + " |"]
    lines.append("|---|" + "---:|" * len(CONCURRENCY))
    servers = {name for name, _ in results}
    for peer in ("chalice", CHALICE_CLOSE, "floor"):
        if peer in servers:
            ratios = [results["caravan", c].rps / results[peer, c].rps for c in CONCURRENCY]
            lines.append(f"| caravan / {peer} | " + " | ".join(f"{r:.2f}x" for r in ratios) + " |")
    warm = results["caravan", 1]
    lines += [
        "",
        "| caravan through HTTP | n | median ms | p99 ms | target |",
        "|---|---:|---:|---:|---|",
        f"| warm invoke (concurrency 1) | — | {warm.p50_ms:.2f} | {warm.p99_ms:.2f} | "
        f"p50 {verdict(warm.p50_ms, WARM_P50_TARGET_MS)}, "
        f"p99 {verdict(warm.p99_ms, WARM_P99_TARGET_MS)} |",
    ]
    if cold:
        ordered = sorted(cold)
        lines.append(
            f"| cold start (first request to a new version) | {len(cold)} | "
            f"{statistics.median(ordered):.1f} | {percentile(ordered, 0.99):.1f} | "
            f"{verdict(statistics.median(ordered), COLD_TARGET_MS)} |"
        )
    extra = warm.p50_ms - results["floor", 1].p50_ms
    lines += [
        "",
        f"At concurrency 1 caravan's p50 is {extra:.2f} ms above the floor's: the gateway "
        "(proxy event, routing, response mapping) plus a warm invoke over the worker's pipes "
        "(see FUNCTIONS.md).",
    ]
    return "\n".join(lines)


def report(body: str, setup: dict[str, str], command: str, reps: int) -> str:
    facts = "\n".join(f"- {key}: {value}" for key, value in setup.items())
    return f"""## API front: requests per second against `chalice local`

{body}

{facts}

Reproduce: `{command}`

- *caravan*: `GET /apis/bench/api/hello` → `FrontRouter` → `Gateway` (stage `api`,
  REST, payload 1.0) → alias `live` → a warm worker process of version 1, whose handler
  returns `{{"statusCode": 200, "body": "{{\\"ok\\": true}}"}}`; the pool is the default
  `Invoker(registry)` unless the command sets `--function-concurrency`. *chalice*:
  `chalice local --no-autoreload` (a `ThreadingMixIn` `http.server`, one thread per
  connection, the route runs in-process). On a kept-alive connection `http.server` sends the
  headers and the body in two writes, so every answer waits for the client's delayed ACK
  (about 40 ms on Linux): the *chalice, Connection: close* row opens a connection per request,
  which avoids that stall, and is the fairer peer figure (its p99 at concurrency 16 holds
  SYN retries: `socketserver`'s listen backlog is 5). *floor*: a bare ASGI app answering
  the same JSON under the same uvicorn, so caravan minus floor is the front's and the
  function's own cost.
- Each (row, concurrency) ran {reps} times, interleaved, after a 1 s warm-up; req/s
  counts 2xx answers only; *failed* counts other answers and socket errors over all runs
  (caravan's are `429 Too Many Requests`: more requests in flight than the function's
  concurrency limit, as Lambda throttles). p50/p99 are medians of the runs' percentiles. The
  client shares the machine's CPUs with the servers, so compare rows of this run, not figures
  from other machines.
- *cold start*: publish a new version, move `live` to it (not timed), then time the first
  `GET` on a kept-alive connection: the worker spawn and handler import are inside it; the
  answer's `x-amz-executed-version` is checked to be the new version. Targets from
  shared/reference/serverless.md §6.2.
"""


def machine(client: str, load_average: tuple[float, float, float]) -> dict[str, str]:
    import uvicorn

    loops = [name for name in ("uvloop", "httptools") if importlib.util.find_spec(name)]
    stack = ", ".join(loops) or "asyncio + h11"
    return {
        "Machine": f"{platform.system()} {platform.release()}, nproc {os.cpu_count()}, "
        f"Python {platform.python_version()}",
        "Load average at start": " / ".join(f"{x:.2f}" for x in load_average) + " (1/5/15 min)",
        "Client": client,
        "caravan and floor": f"uvicorn {uvicorn.__version__} ({stack}), one process",
        "Measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _json(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return None


# ------------------------------------------------------------------ main


def measure(args: argparse.Namespace, temp: Path) -> tuple[Results, list[float]]:
    client = args.client if args.client != "auto" else "wrk" if shutil.which("wrk") else "python"
    script = temp / "report.lua"
    script.write_text(WRK_SCRIPT, encoding="utf-8")

    def load(target: Target, concurrency: int, duration: float) -> Load:
        if client == "wrk":
            return wrk_load(target, concurrency, duration, script)
        return asyncio.run(python_load(target, concurrency, duration))

    me = [sys.executable, str(Path(__file__).resolve()), "--serve"]
    limit = ["--function-concurrency", str(args.function_concurrency)]
    with contextlib.ExitStack() as stack:
        servers: list[Server] = []
        for name, path in (("caravan", CARAVAN_PATH), ("floor", PLAIN_PATH)):
            port = free_port()
            argv = [*me, name, "--port", str(port), "--data", str(temp / name), *limit]
            servers.append(stack.enter_context(running(name, argv, path, port, temp)))
        if not args.no_peer:
            port = free_port()
            argv = chalice_command(port)
            servers.append(stack.enter_context(running("chalice", argv, PLAIN_PATH, port, temp)))
        targets = [Target(server.name, server.url) for server in servers]
        if not args.no_peer:  # http.server's keep-alive meets Nagle + delayed ACK: show both
            targets.append(Target(CHALICE_CLOSE, servers[-1].url, close=True))
        for target in targets:
            load(target, max(CONCURRENCY), 1.0)  # warm-up: workers, connections, caches
        runs: dict[tuple[str, int], list[Load]] = {}
        for rep, concurrency, target in itertools.product(range(args.reps), CONCURRENCY, targets):
            result = load(target, concurrency, args.duration)
            runs.setdefault((target.name, concurrency), []).append(result)
            print(
                f"  run {rep + 1}/{args.reps} {target.name:26s} c={concurrency:<3d} "
                f"{result.rps:9,.0f} req/s  p50 {result.p50_ms:6.2f} ms  failed {result.failed}"
            )
        cold = asyncio.run(cold_starts(servers[0].url, args.cold)) if args.cold else []
    results = {key: median_load(runs[key]) for key in sorted(runs, key=_order)}
    return results, cold


def _order(key: tuple[str, int]) -> tuple[int, int]:
    return (key[1], ("caravan", "chalice", CHALICE_CLOSE, "floor").index(key[0]))


def client_label(args: argparse.Namespace) -> str:
    if args.client == "python" or (args.client == "auto" and not shutil.which("wrk")):
        return "Python asyncio client, raw keep-alive connections, same process as the driver"
    version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()
    return f"wrk {version[1] if len(version) > 1 else ''} (1 thread, keep-alive connections)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load run")
    parser.add_argument("--reps", type=int, default=3, help="runs per server and concurrency")
    parser.add_argument("--cold", type=int, default=30, help="cold starts to measure")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--no-peer", action="store_true", help="skip chalice")
    parser.add_argument(
        "--function-concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"the function's concurrency limit (default: the platform's, {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument("--write", type=Path, default=HERE / "API_FRONT.md")
    parser.add_argument("--serve", choices=("caravan", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.data, args.function_concurrency)
        return
    if args.client == "wrk" and not shutil.which("wrk"):
        parser.error("--client wrk: wrk is not installed (apt-get install -y wrk)")
    # SIGTERM unwinds like Ctrl-C, so every server is stopped on the way out
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    load_average = os.getloadavg()
    setup = machine(client_label(args), load_average)
    default = (
        " (the platform's default)" if args.function_concurrency == DEFAULT_CONCURRENCY else ""
    )
    setup["Function concurrency limit"] = f"{args.function_concurrency}{default}"
    try:
        if not args.no_peer:
            setup["Peer"] = f"chalice {ensure_chalice()} (bench/.venv-peers)"
        with tempfile.TemporaryDirectory(prefix="caravan-bench-front-") as temp:
            results, cold = measure(args, Path(temp))
    except CaravanError as exc:
        hint = f"\nhint: {exc.hint}" if exc.hint else ""
        sys.exit(f"bench_api_front: {exc.message}{hint}")
    except KeyboardInterrupt:
        sys.exit("bench_api_front: interrupted; every server was stopped")
    body = tables(results, cold, args.reps)
    command = (
        f".venv/bin/python bench/bench_api_front.py --duration {args.duration:g} "
        f"--reps {args.reps} --cold {args.cold}"
        + (f" --client {args.client}" if args.client != "auto" else "")
        + (" --no-peer" if args.no_peer else "")
        + (
            f" --function-concurrency {args.function_concurrency}"
            if args.function_concurrency != DEFAULT_CONCURRENCY
            else ""
        )
    )
    print(f"\n{body}\n")
    print("\n".join(f"{key}: {value}" for key, value in setup.items()))
    args.write.write_text(report(body, setup, command, args.reps), encoding="utf-8")
    print(f"written to {args.write}")


if __name__ == "__main__":
    main()

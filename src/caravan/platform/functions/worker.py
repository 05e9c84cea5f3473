"""The worker: one warm execution environment of one function version (child side, stdlib only).

Started by runtime.py as ``python -I -S worker.py <request fd> <response fd> <parent pid>
<data limit bytes>`` with the version's code directory as cwd and Lambda's environment. ``-I -S``
keeps caravan and the virtualenv's site-packages out of reach: the function sees the standard
library and what its zip bundles, as on Lambda (with no boto3 layer yet). So this file imports
nothing but the standard library, and the parent never imports it.

Protocol. Frames on two dedicated pipes (never stdout, which belongs to the function):
``>II`` (header length, body length) + a JSON header + a raw body. The parent sends
``{"request_id", "deadline_ms", "invoked_function_arn", "client_context"}`` + the event bytes;
the worker answers ``{"kind": "ready", ...}`` once after init, then one
``{"kind": "result", "status": "ok" | "error" | "bad_request" | "oom", ...}`` + the payload per
request. The function's stdout and stderr go to the log pipe; after each phase the worker writes
``\\0caravan-log-end:<id>\\0`` there, so the parent knows the output of that request is complete.
"""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import struct
import sys
import time

# Startup time is cold-start time: modules only some requests need (traceback, ctypes, decimal)
# are imported where they are used, and typing never at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

_HEADER = struct.Struct(">II")
_SENTINEL = b"\0caravan-log-end:%s\0"
_PR_SET_PDEATHSIG = 1
_current_request_id = ""


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, identity: Mapping[str, Any]) -> None:
        self.cognito_identity_id = identity.get("cognitoIdentityId")
        self.cognito_identity_pool_id = identity.get("cognitoIdentityPoolId")


class Client:
    __slots__ = (
        "app_package_name",
        "app_title",
        "app_version_code",
        "app_version_name",
        "installation_id",
    )

    def __init__(self, client: Mapping[str, Any]) -> None:
        for name in self.__slots__:
            setattr(self, name, client.get(name))


class ClientContext:
    __slots__ = ("client", "custom", "env")

    def __init__(self, context: Mapping[str, Any]) -> None:
        client = context.get("client")
        self.client = Client(client) if isinstance(client, dict) else None
        self.custom = context.get("custom")
        self.env = context.get("env")


class LambdaContext:
    """The ``context`` argument, attribute for attribute as Lambda's Python runtime builds it
    (``memory_limit_in_mb`` is a string there too: it comes from the environment)."""

    def __init__(self, request: Mapping[str, Any], environ: Mapping[str, str]) -> None:
        self.aws_request_id = request["request_id"]
        self.function_name = environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.invoked_function_arn = request["invoked_function_arn"]
        self.identity = CognitoIdentity(request.get("identity") or {})
        client_context = request.get("client_context")
        self.client_context = ClientContext(client_context) if client_context else None
        self._deadline_ms = request["deadline_ms"]

    def get_remaining_time_in_millis(self) -> int:
        return max(int(self._deadline_ms - time.time() * 1000), 0)


def _add_request_id(record: logging.LogRecord) -> bool:
    record.aws_request_id = _current_request_id
    return True


def _error(
    error_type: str, message: str, request_id: str, stack: Sequence[str] = ()
) -> dict[str, Any]:
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": list(stack),
    }


def _user_frames(tb: Any) -> list[str]:
    """The traceback without this file's frames, formatted as Lambda's stackTrace."""
    import traceback

    frames = [f for f in traceback.extract_tb(tb) if f.filename != __file__]
    return traceback.format_list(frames)


def _log_error(error: Mapping[str, Any]) -> None:
    lines = [f"[ERROR] {error['errorType']}: {error['errorMessage']}"]
    if error["stackTrace"]:
        lines.append("Traceback (most recent call last):")
        lines.extend(s.rstrip("\n") for s in error["stackTrace"])
    sys.stderr.write("\n".join(lines) + "\n")


def _json_default(value: object) -> object:
    # Lambda's marshaller turns Decimal (what DynamoDB hands out) into a number.
    import decimal

    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class Runtime:
    """Imports the handler once (init) and runs it for each request."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.handler: Callable[[Any, LambdaContext], Any] | None = None
        self.init_error: dict[str, Any] | None = None

    def init(self, request_id: str = "") -> None:
        self.init_error = None
        try:
            self.handler = self._load(self.environ.get("_HANDLER", ""))
        except _InitError as failure:
            self.init_error = _error(failure.error_type, failure.message, request_id, failure.stack)
            _log_error(self.init_error)

    def _load(self, handler: str) -> Callable[[Any, LambdaContext], Any]:
        # The checks and messages of Lambda's Python runtime (awslambdaric's _get_handler).
        try:
            module_name, function_name = handler.rsplit(".", 1)
        except ValueError as exc:
            message = f"Bad handler '{handler}': {exc}"
            raise _InitError("Runtime.MalformedHandlerName", message) from None
        if module_name.split(".")[0] in sys.builtin_module_names:
            message = f"Cannot use built-in module {module_name} as a handler module"
            raise _InitError("Runtime.BuiltInModuleConflict", message)
        try:
            dotted = module_name.replace("/", ".")
            __import__(dotted)
            module = sys.modules[dotted]
        except MemoryError:
            raise _InitError("Runtime.OutOfMemory", "out of memory during init") from None
        except ImportError as exc:
            message = f"Unable to import module '{module_name}': {exc}"
            raise _InitError("Runtime.ImportModuleError", message) from None
        except SyntaxError as exc:
            stack = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
            message = f"Syntax error in module '{module_name}': {exc}"
            raise _InitError("Runtime.UserCodeSyntaxError", message, stack) from None
        except Exception as exc:
            stack = _user_frames(exc.__traceback__)
            raise _InitError(type(exc).__name__, str(exc), stack) from None
        handler_function = getattr(module, function_name, None)
        if handler_function is None:
            message = f"Handler '{function_name}' missing on module '{module_name}'"
            raise _InitError("Runtime.HandlerNotFound", message)
        return handler_function  # type: ignore[no-any-return]

    def invoke(self, request: Mapping[str, Any], body: bytes) -> tuple[dict[str, Any], bytes]:
        global _current_request_id
        request_id = _current_request_id = request["request_id"]
        try:
            event = json.loads(body) if body else {}
        except ValueError as exc:
            return {"status": "bad_request", "message": str(exc)}, b""
        if self.init_error is not None:
            # The init error of a fresh worker is this request's answer; later requests
            # re-run init first, as Lambda re-initialises a failed environment.
            if request.get("first"):
                error = dict(self.init_error, requestId=request_id)
                return {"status": "error"}, json.dumps(error).encode()
            self.init(request_id)
        if self.handler is None:
            return {"status": "error"}, json.dumps(self.init_error).encode()
        context = LambdaContext(request, self.environ)
        start = time.perf_counter()
        try:
            result = self.handler(event, context)
            payload = self._marshal(result, request_id)
        except MemoryError:
            del event
            return {"status": "oom", "duration_ms": _ms_since(start)}, b""
        except Exception as exc:
            error = _error(
                type(exc).__name__, str(exc), request_id, _user_frames(exc.__traceback__)
            )
            payload = error
        if isinstance(payload, dict):  # the handler raised, or its result is not JSON
            _log_error(payload)
            return {"status": "error", "duration_ms": _ms_since(start)}, _dumps(payload)
        return {"status": "ok", "duration_ms": _ms_since(start)}, payload

    def _marshal(self, result: object, request_id: str) -> bytes | dict[str, Any]:
        try:
            return json.dumps(result, default=_json_default).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            return _error("Runtime.MarshalError", f"Unable to marshal response: {exc}", request_id)


def _dumps(error: Mapping[str, Any]) -> bytes:
    return json.dumps(error).encode()


class _InitError(Exception):
    def __init__(self, error_type: str, message: str, stack: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack = stack


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = os.read(fd, size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _read_frame(fd: int) -> tuple[dict[str, Any], bytes] | None:
    head = _read_exactly(fd, _HEADER.size)
    if head is None:
        return None
    header_size, body_size = _HEADER.unpack(head)
    data = _read_exactly(fd, header_size + body_size)
    if data is None:
        return None
    return json.loads(data[:header_size]), data[header_size:]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_frame(fd: int, header: Mapping[str, Any], body: bytes) -> None:
    encoded = json.dumps(header).encode()
    _write_all(fd, _HEADER.pack(len(encoded), len(body)) + encoded + body)


def _end_of_output(log_fd: int, marker: str) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 - contextlib would cost start-up time
            stream.flush()
        except (OSError, ValueError):  # the function closed or broke its own stream
            pass
    _write_all(log_fd, _SENTINEL % marker.encode())


def _die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL this worker when caravan dies (Linux), then close the race."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: idle workers still exit on the pipe's EOF
        pass
    if os.getppid() != parent_pid:
        os._exit(1)


def _setup_logging() -> None:
    """As Lambda's Python runtime: the root logger writes "[LEVEL]\ttime\trequest id\tmsg"."""
    import logging

    handler = logging.StreamHandler(sys.stdout)
    handler.terminator = ""
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
        "%Y-%m-%dT%H:%M:%S",
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(_add_request_id)
    logging.getLogger().addHandler(handler)


def main(argv: Sequence[str]) -> int:
    request_fd, response_fd, parent_pid, data_limit = (int(a) for a in argv[1:5])
    _die_with_parent(parent_pid)
    for fd in (request_fd, response_fd):
        os.set_inheritable(fd, False)  # the function's own subprocesses must not hold them
    if data_limit > 0:
        resource.setrlimit(resource.RLIMIT_DATA, (data_limit, data_limit))
    log_fd = os.dup(1)  # the sentinel still reaches the parent if the function closes fd 1
    if isinstance(sys.stdout, io.TextIOWrapper):  # prints reach the log even if killed
        sys.stdout.reconfigure(line_buffering=True)
    sys.path.insert(0, os.environ["LAMBDA_TASK_ROOT"])
    # The runtime's own libraries (the AWS SDK layer) come after the function's code.
    sys.path.extend(p for p in os.environ.get("CARAVAN_RUNTIME_PATH", "").split(os.pathsep) if p)
    _setup_logging()
    runtime = Runtime(os.environ)
    start = time.perf_counter()
    runtime.init()
    ready = {"kind": "ready", "init_ms": _ms_since(start), "init_ok": runtime.init_error is None}
    _end_of_output(log_fd, "init")
    _write_frame(response_fd, ready, b"")
    while True:
        frame = _read_frame(request_fd)
        if frame is None:  # the parent is gone or done with us
            return 0
        request, body = frame
        header, payload = runtime.invoke(request, body)
        header["kind"] = "result"
        header["max_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        _end_of_output(log_fd, request["request_id"])
        _write_frame(response_fd, header, payload)
        if header["status"] == "oom":  # memory may be fragmented or leaked: start afresh
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

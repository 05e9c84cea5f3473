"""Child-process side of the Invoke action's handler mode: import a handler file, call it.

Run as ``python -m caravan.actions.lambda_runner HANDLER_FILE FUNCTION RESULT_FILE`` with the
``CodePipeline.job`` event on stdin. The handler gets ``(event, context)`` like on Lambda; what
it returns (or raises) is written to RESULT_FILE as JSON for the parent. Stdlib only, so the
handler's process loads nothing of caravan beyond this file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import traceback
import uuid
from pathlib import Path
from typing import Any


class Context:
    """The Lambda context object's fields a pipeline action uses."""

    def __init__(self, function_name: str, deadline: float) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:{os.environ.get('AWS_REGION', 'local')}:000000000000:"
            f"function:{function_name}"
        )
        self.memory_limit_in_mb = 128
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "caravan"
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main(argv: list[str]) -> int:
    handler_file, function, result_file = argv
    event = json.loads(sys.stdin.read())
    timeout = float(os.environ.get("CARAVAN_HANDLER_TIMEOUT", "900"))
    context = Context(Path(handler_file).stem, time.monotonic() + timeout)
    sys.path.insert(0, str(Path(handler_file).parent))
    try:
        spec = importlib.util.spec_from_file_location(Path(handler_file).stem, handler_file)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {handler_file}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        handler = getattr(module, function)
        value: Any = handler(event, context)
        outcome = {"kind": "returned", "value": value}
    except BaseException as error:  # the parent reports every failure, SystemExit included
        outcome = {
            "kind": "raised",
            "errorType": type(error).__name__,
            "errorMessage": str(error),
            "stackTrace": traceback.format_exception(error)[-12:],
        }
    try:
        text = json.dumps(outcome)
    except (TypeError, ValueError):
        text = json.dumps(
            {
                "kind": "raised",
                "errorType": "Runtime.MarshalError",
                "errorMessage": "the handler's return value is not JSON",
            }
        )
    Path(result_file).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

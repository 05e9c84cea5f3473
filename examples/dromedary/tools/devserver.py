"""A local server for dromedary, standard library only: the site and the API on one origin.

    DROMEDARY_DATA_DIR=.data python3 tools/devserver.py --port 8080 --table local

``/data``, ``/increment`` and ``/config.json`` go to ``dromedary.api.handler`` as API Gateway
proxy events (payload 1.0, with the stage variable ``table``); every other path is a file of
``site/``. The page then finds its API beside it (``apiBaseurl`` is empty), as in the original
app's ``gulp serve``. Tests start it in a thread with ``make_server``.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

ROOT = Path(__file__).resolve().parent.parent
API_ROUTES = ("/data", "/increment", "/config.json")
Handler = Callable[[Mapping[str, Any], object], Mapping[str, Any]]


def load_handler() -> Handler:
    """``dromedary.api.handler`` from this checkout's ``src``."""
    source = str(ROOT / "src")
    if source not in sys.path:
        sys.path.insert(0, source)
    from dromedary.api import handler

    return handler


def proxy_event(
    method: str, target: str, headers: Mapping[str, str], source_ip: str, stage: Mapping[str, str]
) -> dict[str, Any]:
    """An API Gateway REST proxy event (payload 1.0) for one request."""
    url = urlsplit(target)
    pairs = parse_qsl(url.query, keep_blank_values=True)
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        multi.setdefault(key, []).append(value)
    now = time.time()
    return {
        "resource": url.path,
        "path": url.path,
        "httpMethod": method,
        "headers": dict(headers),
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi.items()} or None,
        "multiValueQueryStringParameters": multi or None,
        "pathParameters": None,
        "stageVariables": dict(stage) or None,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "dromedary",
            "httpMethod": method,
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("User-Agent")},
            "path": url.path,
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(now * 1000),
            "resourcePath": url.path,
            "stage": "local",
        },
        "body": None,
        "isBase64Encoded": False,
    }


class DevRequestHandler(SimpleHTTPRequestHandler):
    """Files of the site, except the API's routes, which the function answers."""

    function: Handler
    stage_variables: Mapping[str, str] = {}
    quiet = True

    def do_GET(self) -> None:  # http.server's naming
        if urlsplit(self.path).path.rstrip("/") in API_ROUTES:
            self._invoke("GET")
        else:
            super().do_GET()

    def do_OPTIONS(self) -> None:
        self._invoke("OPTIONS")

    def _invoke(self, method: str) -> None:
        headers = {k: v for k, v in self.headers.items()}
        event = proxy_event(
            method, self.path, headers, self.client_address[0], self.stage_variables
        )
        answer = type(self).function(event, None)
        body = answer.get("body") or ""
        data = base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode()
        self.send_response(int(answer.get("statusCode", 200)))
        for name, value in (answer.get("headers") or {}).items():
            self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # the base's signature
        if not self.quiet:
            super().log_message(format, *args)


def make_server(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    table: str = "local",
    site_dir: Path = ROOT / "site",
    function: Handler | None = None,
    quiet: bool = True,
) -> ThreadingHTTPServer:
    """A server (not yet serving) for ``site_dir`` and the function, stage variable ``table``."""
    handler_class = type(
        "BoundDevRequestHandler",
        (DevRequestHandler,),
        {
            "function": staticmethod(function or load_handler()),
            "stage_variables": {"table": table},
            "quiet": quiet,
        },
    )
    return ThreadingHTTPServer((host, port), partial(handler_class, directory=str(site_dir)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--table", default="local", help="the stage variable `table`")
    parser.add_argument("--data-dir", help="sets DROMEDARY_DATA_DIR (default: ./.data)")
    args = parser.parse_args()
    os.environ.setdefault("DROMEDARY_DATA_DIR", args.data_dir or str(Path(".data").resolve()))
    if args.data_dir:
        os.environ["DROMEDARY_DATA_DIR"] = str(Path(args.data_dir).resolve())
    server = make_server(args.host, args.port, table=args.table, quiet=False)
    print(f"dromedary on http://{args.host}:{server.server_address[1]}/ (table {args.table})")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

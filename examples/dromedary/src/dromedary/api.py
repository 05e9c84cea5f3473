"""The function's entry point: ``handler(event, context)`` for API Gateway proxy events.

Routes (payload 1.0; 2.0 events work too):

* ``GET /data`` - the chart's items ``[{label, value, color, highlight}]``; ``?countsOnly``
  gives ``{label: count}``; ``?nocache`` reads the store instead of this container's copy,
  which is at most ``CACHE_SECONDS`` old.
* ``GET /increment?color=X`` - ``{"count": n}`` after adding one vote; no ``color`` gives
  ``{"count": 0}``; an unknown colour is ``400 {"error": "Unknown color"}``; a second vote from
  the same IP within 100 ms is ``429 {"error": "Request throttled"}``.
* ``GET /config.json`` - ``{"apiBaseurl": "", "version": ...}`` for a site the app serves itself.

Every response is JSON with ``Access-Control-Allow-Origin: *``, and errors are real 4xx/5xx
statuses. The table is the stage variable ``table`` (else ``DROMEDARY_TABLE``, else ``local``)
and the data directory ``DROMEDARY_DATA_DIR``, both read on every request, so one container
serves whichever stage invokes it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dromedary.colours import all_counts, chart_items, colour_exists
from dromedary.store import CountStore, StoreError
from dromedary.throttle import RequestThrottle

CACHE_SECONDS = 1.0
DEFAULT_TABLE = "local"
log = logging.getLogger("dromedary")

# Per-container copy of each table's counts: path -> (read at, counts).
_cache: dict[Path, tuple[float, dict[str, int]]] = {}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str]
    stage_variables: Mapping[str, str]
    source_ip: str

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Request:
        context = event.get("requestContext") or {}
        http = context.get("http") or {}  # payload 2.0
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        ip = (context.get("identity") or {}).get("sourceIp") or http.get("sourceIp")
        path = str(event.get("path") or event.get("rawPath") or "/")
        return cls(
            method=str(event.get("httpMethod") or http.get("method") or "GET").upper(),
            path=path.rstrip("/") or "/",
            query=event.get("queryStringParameters") or {},
            stage_variables=event.get("stageVariables") or {},
            source_ip=str(ip or headers.get("x-real-ip") or "unknown"),
        )

    def flag(self, name: str) -> bool:
        """``?name``, ``?name=`` and ``?name=true`` are set; ``?name=false`` or ``0`` is not."""
        return name in self.query and self.query[name].lower() not in ("false", "0")


def respond(status: int, body: object) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {
            "Content-Type": "application/json",
            "Access-Control-Allow-Origin": "*",
            "Cache-Control": "no-store",
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def handler(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    logging.getLogger("dromedary").setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    try:
        return route(Request.from_event(event))
    except StoreError as error:
        log.error("store error: %s", error)
        return respond(500, {"error": f"Storage unavailable: {error}"})
    except Exception:
        log.exception("unexpected error")
        return respond(500, {"error": "Internal error"})


ROUTES = ("/data", "/increment", "/config.json")


def route(request: Request) -> dict[str, Any]:
    if request.path not in ROUTES:
        return respond(404, {"error": f"Not found: {request.path}"})
    if request.method == "OPTIONS":
        return respond(204, None) | {"body": ""}
    if request.method not in ("GET", "HEAD"):
        answer = respond(405, {"error": f"Method {request.method} not allowed"})
        answer["headers"]["Allow"] = "GET, HEAD, OPTIONS"
        return answer
    if request.path == "/data":
        return data(request)
    if request.path == "/increment":
        return increment(request)
    return respond(200, {"apiBaseurl": "", "version": version()})


def store_for(request: Request) -> CountStore:
    """The stage's table, chosen on every request."""
    data_dir = os.environ.get("DROMEDARY_DATA_DIR")
    if not data_dir:
        raise StoreError("DROMEDARY_DATA_DIR is not set")
    table = request.stage_variables.get("table") or os.environ.get("DROMEDARY_TABLE")
    return CountStore(Path(data_dir), table or DEFAULT_TABLE)


def data(request: Request) -> dict[str, Any]:
    store = store_for(request)
    cached = _cache.get(store.path)
    if request.flag("nocache") or cached is None or time.time() - cached[0] > CACHE_SECONDS:
        counts = all_counts(store.read()["counts"])
        _cache[store.path] = (time.time(), counts)
    else:
        counts = cached[1]
    if request.flag("countsOnly"):
        return respond(200, counts)
    return respond(200, chart_items(counts))


def increment(request: Request) -> dict[str, Any]:
    colour = request.query.get("color")
    if not colour:
        return respond(200, {"count": 0})
    if not colour_exists(colour):
        return respond(400, {"error": "Unknown color"})
    store = store_for(request)
    with store.update() as document:
        now = time.time()
        throttle = RequestThrottle(document["throttle"])
        throttle.gc(now)
        if throttle.check(request.source_ip, now):
            return respond(429, {"error": "Request throttled"})
        counts = all_counts(document["counts"])
        counts[colour] += 1
        document["counts"] = {**document["counts"], **counts}
        throttle.log(request.source_ip, now)
    _cache[store.path] = (time.time(), counts)
    return respond(200, {"count": counts[colour]})


def version() -> str:
    """``DROMEDARY_VERSION``, else the ``VERSION`` file packaged beside this module (the commit
    id), else the code's modification time as ``YYYYMMDD-HHMMSS`` (UTC), the same in every
    container of one deployment."""
    explicit = os.environ.get("DROMEDARY_VERSION")
    if explicit:
        return explicit
    here = Path(__file__).resolve().parent
    try:
        return (here / "VERSION").read_text(encoding="utf-8").strip()
    except OSError:
        mtime = Path(__file__).stat().st_mtime
        return datetime.fromtimestamp(mtime, UTC).strftime("%Y%m%d-%H%M%S")

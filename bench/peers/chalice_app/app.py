"""bench/bench_api_front.py's peer: `GET /hello` answers `{"ok": true}` under `chalice local`.

Equivalent to the caravan function the benchmark publishes behind its API front (a handler
returning that body with status 200); Chalice runs it in-process behind its LocalGateway.
"""

from chalice import Chalice

app = Chalice(app_name="bench-hello")


@app.route("/hello")
def hello() -> dict[str, bool]:
    return {"ok": True}

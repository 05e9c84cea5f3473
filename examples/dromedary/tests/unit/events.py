"""API Gateway proxy events (payload 1.0, as AWS documents them) for the handler's tests."""

from __future__ import annotations

from typing import Any


def proxy_event(
    path: str,
    query: dict[str, str] | None = None,
    *,
    method: str = "GET",
    table: str | None = "test",
    source_ip: str = "192.0.2.10",
) -> dict[str, Any]:
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Host": "api.example", "User-Agent": "unit-test"},
        "multiValueHeaders": {"Host": ["api.example"], "User-Agent": ["unit-test"]},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": {"alias": "test", "table": table} if table else None,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "dromedary",
            "httpMethod": method,
            "identity": {"sourceIp": source_ip, "userAgent": "unit-test"},
            "path": f"/test{path}",
            "protocol": "HTTP/1.1",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "resourcePath": path,
            "stage": "test",
        },
        "body": None,
        "isBase64Encoded": False,
    }

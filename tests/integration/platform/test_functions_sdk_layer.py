"""Functions get the AWS SDK and AWS settings the way Lambda's runtime gives them, and still
nothing else of caravan's environment."""

from __future__ import annotations

import json
from pathlib import Path

from caravan.artifacts.zipfiles import zip_files
from caravan.platform.functions import FunctionRegistry, Invoker
from caravan.platform.functions.layer import RuntimeExtras, aws_sdk_layer
from caravan.platform.functions.runtime import WorkerRuntime

APP = b"""
import importlib.util, os

def handler(event, context):
    import boto3
    client = boto3.client("s3")
    return {
        "boto3": boto3.__version__,
        "endpoint": client.meta.endpoint_url,
        "key": os.environ.get("AWS_ACCESS_KEY_ID"),
        "pydantic": importlib.util.find_spec("pydantic") is not None,
        "caravan": importlib.util.find_spec("caravan") is not None,
    }
"""


async def test_a_function_imports_boto3_aimed_at_caravan_but_not_caravan_itself(
    tmp_path: Path,
) -> None:
    extras = RuntimeExtras(
        path=aws_sdk_layer(tmp_path / "layers"),
        env=lambda: {
            "AWS_ENDPOINT_URL": "http://127.0.0.1:7878",
            "AWS_ACCESS_KEY_ID": "caravan",
            "AWS_SECRET_ACCESS_KEY": "caravan",
        },
    )
    registry = FunctionRegistry(tmp_path / "functions")
    registry.create_function("sdk", handler="app.handler", code=zip_files({"app.py": APP}))
    invoker = Invoker(registry, runtime=WorkerRuntime(extras=extras))
    try:
        result = await invoker.invoke("sdk", b"{}")
    finally:
        await invoker.aclose()
    assert result.function_error is None, result.payload
    body = json.loads(result.payload)
    assert body["boto3"] and body["endpoint"] == "http://127.0.0.1:7878"
    assert body["key"] == "caravan"
    assert body["pydantic"] is False and body["caravan"] is False

"""What every execution environment gets besides the function's own code, as on Lambda.

AWS's Python runtime ships the AWS SDK (boto3) and gives each function credentials and, through
the standard ``AWS_ENDPOINT_URL`` variables, caravan points that SDK at the caravan server — so
code written for AWS (a pipeline action calling S3 and CodePipeline) runs unchanged.

The SDK is offered as a layer: a directory of links to the installed boto3 and its
dependencies, put on ``sys.path`` after the function's own code (a function that bundles its own
boto3 gets its own), and nothing else of caravan's environment is importable.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

SDK_DISTRIBUTIONS = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "urllib3",
    "six",
)


def _no_env() -> Mapping[str, str]:
    return {}


@dataclass(frozen=True)
class RuntimeExtras:
    """Added to every worker: import paths after the code directory, and variables that the
    function's own configuration cannot override (Lambda's reserved variables)."""

    path: tuple[str, ...] = ()
    env: Callable[[], Mapping[str, str]] = field(default=_no_env)


def aws_sdk_layer(root: Path) -> tuple[str, ...]:
    """A directory linking the installed AWS SDK's top-level modules; () when boto3 is absent."""
    origins = _sdk_origins()
    if "boto3" not in {o.name for o in origins}:
        return ()
    layer = root / "aws-sdk"
    layer.mkdir(parents=True, exist_ok=True)
    for origin in origins:
        link = layer / origin.name
        if link.is_symlink() and link.resolve() == origin.resolve():
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(origin, target_is_directory=origin.is_dir())
    return (str(layer),)


def _sdk_origins() -> list[Path]:
    """The package directories (or module files) of the SDK's distributions."""
    origins = []
    for dist_name in SDK_DISTRIBUTIONS:
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            continue
        for name in _top_level(dist):
            spec = importlib.util.find_spec(name)
            if spec is not None and spec.origin is not None:
                origin = Path(spec.origin)
                origins.append(origin.parent if origin.name == "__init__.py" else origin)
    return origins


def _top_level(dist: importlib.metadata.Distribution) -> set[str]:
    listed = (dist.read_text("top_level.txt") or "").split()
    if listed:
        return set(listed)
    names = set()
    for file in dist.files or ():
        first = Path(str(file)).parts[0]
        if first.endswith((".dist-info", ".data")) or first in ("..", "__pycache__"):
            continue
        names.add(first.removesuffix(".py"))
    return names


def worker_path_variable(extras: RuntimeExtras) -> dict[str, str]:
    return {"CARAVAN_RUNTIME_PATH": os.pathsep.join(extras.path)} if extras.path else {}

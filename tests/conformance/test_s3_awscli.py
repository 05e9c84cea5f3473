"""The AWS CLI against caravan's S3 endpoint over TLS: make a bucket, sync files up (one large
enough for a multipart upload), list, head, download and remove them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from s3_server import self_signed_certificate, serve

from caravan.artifacts.filesystem import FilesystemArtifactStore
from caravan.server.s3 import s3_app


def aws_command() -> str | None:
    beside_python = Path(sys.executable).with_name("aws")
    return str(beside_python) if beside_python.exists() else shutil.which("aws")


AWS = aws_command()
pytestmark = pytest.mark.skipif(AWS is None, reason="the AWS CLI (pip install awscli) is absent")


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[tuple[str, FilesystemArtifactStore, list[str]]]:
    """(endpoint, store, the options every command gets)."""
    tls = self_signed_certificate(tmp_path)
    if tls is None:
        pytest.skip("openssl is needed to make a certificate for the TLS server")
    store = FilesystemArtifactStore(tmp_path / "store")
    with serve(s3_app(store), tls=tls) as url:
        yield url, store, ["--endpoint-url", url, "--ca-bundle", str(tls[0])]


def aws(options: list[str], *args: str) -> str:
    nowhere = "/nonexistent/aws-config"
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")} | {
        "AWS_ACCESS_KEY_ID": "AKIDCLI",
        "AWS_SECRET_ACCESS_KEY": "cli-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": nowhere,
        "AWS_SHARED_CREDENTIALS_FILE": nowhere,
    }
    assert AWS is not None
    done = subprocess.run(
        [AWS, *args, *options], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_aws_cli_round_trips_files(
    cli: tuple[str, FilesystemArtifactStore, list[str]], tmp_path: Path
) -> None:
    _, store, options = cli
    upload = tmp_path / "up"
    (upload / "site").mkdir(parents=True)
    (upload / "site" / "index.html").write_text("<h1>hello</h1>")
    big = os.urandom(9 * 1024 * 1024)  # over the CLI's 8 MB threshold: a multipart upload
    (upload / "app.zip").write_bytes(big)

    aws(options, "s3", "mb", "s3://cli-bucket")
    aws(options, "s3", "sync", str(upload), "s3://cli-bucket/release/")
    listing = aws(options, "s3", "ls", "--recursive", "s3://cli-bucket/")
    assert "release/app.zip" in listing and "release/site/index.html" in listing

    head = json.loads(
        aws(options, "s3api", "head-object", "--bucket", "cli-bucket", "--key", "release/app.zip")
    )
    assert head["ContentLength"] == len(big)
    info = store.head("cli-bucket", "release/site/index.html")
    assert info is not None and info.content_type == "text/html"  # the CLI guesses types

    aws(options, "s3", "cp", "s3://cli-bucket/release/app.zip", str(tmp_path / "down.zip"))
    assert (tmp_path / "down.zip").read_bytes() == big

    aws(options, "s3", "rm", "--recursive", "s3://cli-bucket/release/")
    assert list(store.list("cli-bucket")) == []

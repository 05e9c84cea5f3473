"""Fixtures of the CodePipeline conformance suites: a real ``caravan server`` shared by the
session (a subprocess on 127.0.0.1, a free port, a fresh data directory), a boto3
``codepipeline`` client pointed at it (region us-east-1, dummy credentials), the environment of
an AWS CLI that sees nothing of this machine's AWS set-up, and a local git repository."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from codepipeline_server import CaravanServer, GitRepo, make_repo, running_server

DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIDCARAVANTEST", "AWS_SECRET_ACCESS_KEY": "dummy"}
REGION = "us-east-1"


@pytest.fixture(scope="session")
def caravan_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CaravanServer]:
    with running_server(tmp_path_factory.mktemp("caravan-server")) as server:
        yield server


@pytest.fixture(scope="session")
def aws_environment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of an AWS client that sees no profile or setting of this machine."""
    empty = tmp_path_factory.mktemp("aws") / "none"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(DUMMY_CREDENTIALS)
    env.update(
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=str(empty),
        AWS_SHARED_CREDENTIALS_FILE=str(empty),
        AWS_PAGER="",
    )
    return env


@pytest.fixture(scope="session")
def codepipeline(caravan_server: CaravanServer, aws_environment: dict[str, str]) -> Any:
    """A boto3 CodePipeline client of the server; it makes each call once (no retries)."""
    import boto3
    from botocore.config import Config

    # The client reads its settings while it is made: only then must the machine's be hidden.
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("AWS_")]:
            patch.delenv(name)
        for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            patch.setenv(name, aws_environment[name])
        session = boto3.session.Session(
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        )
        return session.client(
            "codepipeline",
            endpoint_url=caravan_server.url,
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
        )


@pytest.fixture(scope="session")
def git_repo(tmp_path_factory: pytest.TempPathFactory) -> GitRepo:
    """A repository with two commits on main, each writing its own README."""
    return make_repo(tmp_path_factory.mktemp("repo"))

"""The git Source action provider end to end: real repositories in, a zip artifact out."""

from __future__ import annotations

import base64
import hashlib
import io
import stat
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from git_helpers import HERMETIC, GitRepo, git_in, http_git_server, simple_repo

from caravan.actions.base import (
    ActionTypeKey,
    Job,
    JobArtifact,
    JobContext,
    JobFailed,
    JobResult,
    JobSucceeded,
)
from caravan.actions.git_source import ACTION_TYPES, git_source_provider
from caravan.artifacts.memory import MemoryArtifactStore
from caravan.model.statuses import FailureType

BUCKET, KEY = "caravan-artifacts", "demo/SourceOutput/source.zip"
GIT = ("Source", "Custom", "Git", "1")
GITHUB = ("Source", "ThirdParty", "GitHub", "1")
CODESTAR = ("Source", "AWS", "CodeStarSourceConnection", "1")
CODECOMMIT = ("Source", "AWS", "CodeCommit", "1")
ARN = "arn:aws:codestar-connections:local:000000000000:connection/demo"


@pytest.fixture(autouse=True)
def hermetic_git(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in HERMETIC.items():
        monkeypatch.setenv(name, value)


class Harness:
    """Runs the provider as the engine would: a fresh workdir per job, one shared cache."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.store = MemoryArtifactStore()
        self.logs: list[str] = []
        self.runs = 0
        self.settings: dict[str, Any] = {"cache_dir": tmp_path / "cache"}

    async def run(
        self,
        action_type: tuple[str, str, str, str],
        configuration: Mapping[str, str],
        *,
        revision: str | None = None,
        declaration_dir: Path | None = None,
        outputs: tuple[JobArtifact, ...] = (JobArtifact("SourceOutput", BUCKET, KEY),),
    ) -> JobResult:
        self.runs += 1
        workdir = self.tmp_path / f"work{self.runs}"
        workdir.mkdir()
        job = Job(
            id=f"job-{self.runs}",
            nonce="1",
            action_type=ActionTypeKey(*action_type),
            configuration=configuration,
            pipeline_name="demo",
            stage_name="Source",
            action_name="Source",
            action_execution_id=f"ae-{self.runs}",
            pipeline_execution_id=f"pe-{self.runs}",
            output_artifacts=outputs,
            source_revision=revision,
        )
        ctx = JobContext(
            artifacts=self.store,
            workdir=workdir,
            log=self.logs.append,
            settings=self.settings,
            declaration_dir=declaration_dir,
        )
        return await git_source_provider(job, ctx)

    def zip(self) -> zipfile.ZipFile:
        return zipfile.ZipFile(io.BytesIO(self.store.get_bytes(BUCKET, KEY)))

    def zip_sha(self) -> str:
        return hashlib.sha256(self.store.get_bytes(BUCKET, KEY)).hexdigest()

    @property
    def log_text(self) -> str:
        return "\n".join(self.logs)


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def succeeded(result: JobResult) -> JobSucceeded:
    assert isinstance(result, JobSucceeded), result
    return result


def failed(result: JobResult, kind: FailureType) -> JobFailed:
    assert isinstance(result, JobFailed), result
    assert result.type is kind, result.message
    return result


def test_serves_the_four_git_source_action_types() -> None:
    assert set(ACTION_TYPES) == {GIT, GITHUB, CODESTAR, CODECOMMIT}


async def test_branch_head_becomes_a_zip_with_modes_and_no_dot_git(
    tmp_path: Path, harness: Harness
) -> None:
    repo, _ = simple_repo(tmp_path / "dromedary")
    succeeded(await harness.run(GIT, {"Repository": str(repo.path), "Branch": "main"}))
    archive = harness.zip()
    names = sorted(archive.namelist())
    # The "docs" symlink to src/app is stored as its target's content (zipfiles' rule).
    assert names == ["README.md", "bin/run.sh", "docs/main.py", "src/app/main.py"]
    assert archive.read("bin/run.sh") == b"#!/bin/sh\necho hi\n"
    mode = {i.filename: stat.S_IMODE(i.external_attr >> 16) for i in archive.infolist()}
    assert mode["bin/run.sh"] == 0o755
    assert mode["README.md"] == 0o644


async def test_output_variables_and_revision_have_exact_values(
    tmp_path: Path, harness: Harness
) -> None:
    repo, head = simple_repo(tmp_path / "dromedary.git")
    result = succeeded(await harness.run(GIT, {"Repository": str(repo.path)}))
    assert result.output_variables == {
        "CommitId": head,
        "BranchName": "main",  # the repository's default branch: no Branch configured
        "CommitMessage": "Add the app\n\nWith a body line.",
        "AuthorDate": "2026-11-26T17:41:11Z",
        "CommitterDate": "2026-11-26T17:41:11Z",
        "RepositoryName": "dromedary",
    }
    assert result.summary == "Add the app"
    assert result.current_revision == {
        "revision": head,
        "changeIdentifier": head,
        "revisionSummary": "Add the app",
    }
    assert result.artifact_revisions == {"SourceOutput": head}
    assert f"branch main commit {head}: 3 files, 37 bytes" in harness.log_text


async def test_the_same_commit_gives_the_same_zip(tmp_path: Path, harness: Harness) -> None:
    repo, _ = simple_repo(tmp_path / "repo")
    succeeded(await harness.run(GIT, {"Repository": str(repo.path)}))
    first = harness.zip_sha()
    harness.settings["cache_dir"] = tmp_path / "other-cache"  # a fresh mirror, too
    (repo.path / "README.md").touch()  # a different mtime in the work tree changes nothing
    succeeded(await harness.run(GIT, {"Repository": str(repo.path)}))
    assert harness.zip_sha() == first


async def test_a_pinned_revision_is_exported_instead_of_the_head(
    tmp_path: Path, harness: Harness
) -> None:
    repo, first = simple_repo(tmp_path / "repo")
    repo.write("README.md", "# changed\n")
    repo.commit("Change the readme")
    result = succeeded(await harness.run(GIT, {"Repository": str(repo.path)}, revision=first[:10]))
    assert result.output_variables["CommitId"] == first
    assert result.output_variables["BranchName"] == "main"
    assert harness.zip().read("README.md") == b"# demo\n"


async def test_an_unknown_pinned_revision_is_revision_unavailable(
    tmp_path: Path, harness: Harness
) -> None:
    repo, _ = simple_repo(tmp_path / "repo")
    result = await harness.run(GIT, {"Repository": str(repo.path)}, revision="0123456789abcdef")
    message = failed(result, FailureType.REVISION_UNAVAILABLE).message
    assert "commit 0123456789abcdef does not exist" in message


async def test_a_missing_branch_names_it_and_lists_the_existing_ones(
    tmp_path: Path, harness: Harness
) -> None:
    repo, _ = simple_repo(tmp_path / "repo")
    repo.git("branch", "develop")
    result = await harness.run(GIT, {"Repository": str(repo.path), "Branch": "master"})
    message = failed(result, FailureType.CONFIGURATION_ERROR).message
    assert "branch 'master' does not exist" in message
    assert "existing branches: develop, main" in message


async def test_a_missing_repository_is_a_configuration_error(
    tmp_path: Path, harness: Harness
) -> None:
    result = await harness.run(GIT, {"Repository": str(tmp_path / "nowhere")})
    message = failed(result, FailureType.CONFIGURATION_ERROR).message
    assert f"no such directory {tmp_path / 'nowhere'}" in message
    result = await harness.run(GIT, {"Branch": "main"})
    assert (
        "configuration Repository is required"
        in failed(result, FailureType.CONFIGURATION_ERROR).message
    )


async def test_a_relative_repository_is_found_beside_the_declaration(
    tmp_path: Path, harness: Harness
) -> None:
    _, head = simple_repo(tmp_path / "project/app")
    result = await harness.run(GIT, {"Repository": "app"}, declaration_dir=tmp_path / "project")
    assert succeeded(result).output_variables["CommitId"] == head


async def test_a_file_url_is_fetched(tmp_path: Path, harness: Harness) -> None:
    repo, head = simple_repo(tmp_path / "repo")
    result = succeeded(await harness.run(GIT, {"Repository": repo.path.as_uri()}))
    assert result.output_variables["CommitId"] == head
    assert result.output_variables["RepositoryName"] == "repo"
    missing = await harness.run(GIT, {"Repository": (tmp_path / "gone").as_uri()})
    assert "git fetch failed" in failed(missing, FailureType.JOB_FAILED).message


async def test_the_seeds_github_source_resolves_through_the_setting(
    tmp_path: Path, harness: Harness
) -> None:
    repo, head = simple_repo(tmp_path / "checkouts/dromedary")
    harness.settings["git_repositories"] = {"stelligent/dromedary": str(repo.path)}
    config = {
        "Owner": "stelligent",
        "Repo": "dromedary",
        "Branch": "main",
        "OAuthToken": "ghp_supersecret",
    }
    result = succeeded(await harness.run(GITHUB, config))
    assert result.output_variables["CommitId"] == head
    assert result.output_variables["RepositoryName"] == "dromedary"
    assert "ghp_supersecret" not in harness.log_text


async def test_a_codestar_connection_source_resolves_through_the_setting(
    tmp_path: Path, harness: Harness
) -> None:
    repo, head = simple_repo(tmp_path / "repo")
    harness.settings["git_repositories"] = {"acme/shop": repo.path.as_uri()}
    config = {"ConnectionArn": ARN, "FullRepositoryId": "acme/shop", "BranchName": "main"}
    result = succeeded(await harness.run(CODESTAR, config))
    assert result.output_variables == {
        "CommitId": head,
        "BranchName": "main",
        "CommitMessage": "Add the app\n\nWith a body line.",
        "AuthorDate": "2026-11-26T17:41:11Z",
        "CommitterDate": "2026-11-26T17:41:11Z",
        "RepositoryName": "shop",
        "FullRepositoryName": "acme/shop",
        "FullRepositoryId": "acme/shop",
        "ConnectionArn": ARN,
        "ProviderType": "GitHub",
    }
    assert ".git/HEAD" not in harness.zip().namelist()


async def test_codebuild_clone_ref_keeps_the_git_directory(
    tmp_path: Path, harness: Harness
) -> None:
    repo, head = simple_repo(tmp_path / "repo")
    harness.settings["git_repositories"] = {"acme/shop": str(repo.path)}
    config = {
        "ConnectionArn": ARN,
        "FullRepositoryId": "acme/shop",
        "BranchName": "main",
        "OutputArtifactFormat": "CODEBUILD_CLONE_REF",
    }
    succeeded(await harness.run(CODESTAR, config))
    harness.zip().extractall(tmp_path / "unzipped")
    assert git_in(tmp_path / "unzipped", "rev-parse", "HEAD") == head
    assert git_in(tmp_path / "unzipped", "branch", "--show-current") == "main"
    bad = await harness.run(CODESTAR, {**config, "OutputArtifactFormat": "TARBALL"})
    assert "OutputArtifactFormat 'TARBALL'" in failed(bad, FailureType.CONFIGURATION_ERROR).message


async def test_codecommit_resolves_only_through_the_setting(
    tmp_path: Path, harness: Harness
) -> None:
    repo, head = simple_repo(tmp_path / "repo")
    unmapped = await harness.run(CODECOMMIT, {"RepositoryName": "shop", "BranchName": "main"})
    message = failed(unmapped, FailureType.CONFIGURATION_ERROR).message
    assert 'add git_repositories["shop"]' in message
    assert 'CARAVAN_GIT_REPOSITORIES="shop=<path or URL>"' in message
    harness.settings["git_repositories"] = {"shop": str(repo.path)}
    result = succeeded(
        await harness.run(CODECOMMIT, {"RepositoryName": "shop", "BranchName": "main"})
    )
    assert result.output_variables["CommitId"] == head
    assert result.output_variables["RepositoryName"] == "shop"


async def test_an_unresolvable_hosted_repository_names_the_key_to_add(
    tmp_path: Path, harness: Harness
) -> None:
    config = {"Owner": "acme", "Repo": "shop", "Branch": "main"}
    harness.settings["git_url_template"] = None  # offline: no URL is ever guessed
    message = failed(await harness.run(GITHUB, config), FailureType.CONFIGURATION_ERROR).message
    assert 'add git_repositories["acme/shop"]' in message
    # A template whose URL does not answer: the failure says how to map the name instead.
    harness.settings["git_url_template"] = (tmp_path / "mirrors").as_uri() + "/{owner}/{repo}.git"
    result = await harness.run(GITHUB, config)
    message = failed(result, FailureType.CONFIGURATION_ERROR).message
    assert "git fetch failed" in message
    assert 'add git_repositories["acme/shop"]' in message


async def test_credentials_in_a_url_never_reach_logs_or_failures(
    tmp_path: Path, harness: Harness
) -> None:
    repo, head = simple_repo(tmp_path / "srv/work")
    bare = tmp_path / "srv/shop.git"
    repo.git("clone", "-q", "--bare", str(repo.path), str(bare))
    git_in(bare, "update-server-info")
    token = "Basic " + base64.b64encode(b"ann:s3cret").decode()
    with http_git_server(tmp_path / "srv", token) as base:
        good = base.replace("http://", "http://ann:s3cret@") + "/shop.git"
        result = succeeded(await harness.run(GIT, {"Repository": good, "Branch": "main"}))
        assert result.output_variables["CommitId"] == head
        assert result.output_variables["RepositoryName"] == "shop"
        wrong = base.replace("http://", "http://ann:wr0ng@") + "/shop.git"
        failure = await harness.run(GIT, {"Repository": wrong, "Branch": "main"})
    message = failed(failure, FailureType.JOB_FAILED).message
    assert "Authentication failed" in message
    for secret in ("s3cret", "wr0ng"):
        assert secret not in harness.log_text
        assert secret not in message
    assert "http://***@127.0.0.1" in harness.log_text


async def test_a_second_run_fetches_new_commits_into_the_existing_mirror(
    tmp_path: Path, harness: Harness
) -> None:
    repo, first = simple_repo(tmp_path / "repo")
    config = {"Repository": str(repo.path), "Branch": "main"}
    assert succeeded(await harness.run(GIT, config)).output_variables["CommitId"] == first
    repo.write("NEW.txt", "new\n")
    second = repo.commit("Add NEW.txt", date="2026-11-27T08:00:00Z")
    result = succeeded(await harness.run(GIT, config))
    assert result.output_variables["CommitId"] == second
    assert result.output_variables["CommitterDate"] == "2026-11-27T08:00:00Z"
    assert "NEW.txt" in harness.zip().namelist()
    assert len(list((tmp_path / "cache/git-mirrors").glob("*.git"))) == 1


async def test_submodules_are_skipped_with_a_log_line(tmp_path: Path, harness: Harness) -> None:
    repo, head = simple_repo(tmp_path / "repo")
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{head},vendor/lib")
    repo.commit("Add a submodule", add=False)
    succeeded(await harness.run(GIT, {"Repository": str(repo.path)}))
    assert "Skipped submodule vendor/lib: submodules are not supported" in harness.log_text
    assert not any(n.startswith("vendor") for n in harness.zip().namelist())


async def test_a_symlink_leaving_the_repository_fails_the_job(
    tmp_path: Path, harness: Harness
) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.symlink("passwd", "/etc/passwd")
    repo.commit("Link outside")
    result = await harness.run(GIT, {"Repository": str(repo.path)})
    assert "passwd" in failed(result, FailureType.JOB_FAILED).message


async def test_a_source_action_without_an_output_artifact_is_misconfigured(
    tmp_path: Path, harness: Harness
) -> None:
    repo, _ = simple_repo(tmp_path / "repo")
    result = await harness.run(GIT, {"Repository": str(repo.path)}, outputs=())
    assert "declares no output artifact" in failed(result, FailureType.CONFIGURATION_ERROR).message


async def test_a_github_oauth_token_never_reaches_logs_or_failures(harness: Harness) -> None:
    # Port 1 on loopback refuses the connection at once: the token was in the URL git used.
    harness.settings["git_url_template"] = "https://127.0.0.1:1/{owner}/{repo}.git"
    config = {"Owner": "acme", "Repo": "shop", "Branch": "main", "OAuthToken": "ghp_t0ken"}
    result = await harness.run(GITHUB, config)
    message = failed(result, FailureType.CONFIGURATION_ERROR).message
    assert "127.0.0.1" in message
    assert "ghp_t0ken" not in message
    assert "ghp_t0ken" not in harness.log_text

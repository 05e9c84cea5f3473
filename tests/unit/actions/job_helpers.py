"""Building jobs, contexts and artifacts for provider tests (real zips in a real store)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from caravan.actions.base import ActionTypeKey, Job, JobArtifact, JobContext
from caravan.artifacts.memory import MemoryArtifactStore
from caravan.artifacts.zipfiles import zip_files

BUCKET = "caravan-artifacts"


class Harness:
    """A store, a working directory and a captured log for one job."""

    def __init__(self, tmp_path: Path, build_projects: Mapping[str, Any] | None = None) -> None:
        self.store = MemoryArtifactStore()
        self.log: list[str] = []
        self.ctx = JobContext(
            artifacts=self.store,
            workdir=tmp_path / "work",
            log=self.log.append,
            build_projects=dict(build_projects or {}),
        )
        self.ctx.workdir.mkdir()

    def input(self, name: str, files: Mapping[str, bytes | tuple[bytes, int]]) -> JobArtifact:
        key = f"pipe/{name}/in.zip"
        self.store.put_bytes(BUCKET, key, zip_files(files))
        return JobArtifact(name=name, bucket=BUCKET, key=key)

    def read(self, artifact: JobArtifact) -> dict[str, str]:
        data = self.store.get_bytes(artifact.bucket, artifact.key)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {n: archive.read(n).decode() for n in archive.namelist() if not n.endswith("/")}


def output(name: str, files: Sequence[str] = ()) -> JobArtifact:
    return JobArtifact(name=name, bucket=BUCKET, key=f"pipe/{name}/out.zip", files=tuple(files))


def make_job(
    category: str,
    provider: str,
    *,
    configuration: Mapping[str, str] | None = None,
    inputs: Sequence[JobArtifact] = (),
    outputs: Sequence[JobArtifact] = (),
    commands: Sequence[str] = (),
    environment_variables: Mapping[str, str] | None = None,
    output_variables: Sequence[str] = (),
) -> Job:
    return Job(
        id="job-1",
        nonce="1",
        action_type=ActionTypeKey(category, "AWS", provider, "1"),
        configuration=dict(configuration or {}),
        pipeline_name="Pipe",
        stage_name="Build",
        action_name="Act",
        action_execution_id="ae-1",
        pipeline_execution_id="pe-1",
        input_artifacts=tuple(inputs),
        output_artifacts=tuple(outputs),
        commands=tuple(commands),
        environment_variables=dict(environment_variables or {}),
        output_variables=tuple(output_variables),
    )

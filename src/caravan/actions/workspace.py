"""Glue between jobs and working directories: input artifacts in, output artifacts out.

``extract_inputs`` unpacks each input artifact into ``<workdir>/src/<name>``;
``collect_files`` copies what an artifact declaration (``files`` globs, ``base-directory``,
``discard-paths``, ``exclude-paths``) selects into a fresh directory; ``store_outputs`` zips such
directories deterministically into the locations CodePipeline assigned to the output artifacts.
The functions block on file I/O: call them from a thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath

from caravan.actions.base import Job, JobContext
from caravan.actions.buildspec import ArtifactSpec
from caravan.artifacts.zipfiles import compile_glob, extract_zip, select_files, write_zip
from caravan.errors import InvalidInputError, NotFoundError

_GLOB_CHARS = frozenset("*?[{")


def extract_inputs(job: Job, ctx: JobContext) -> dict[str, Path]:
    """Input artifact name -> its extracted directory; the first one is the primary source.

    Raises NotFoundError for an artifact missing from the store, ArchiveError for a bad zip.
    """
    dirs: dict[str, Path] = {}
    for artifact in job.input_artifacts:
        if ctx.artifacts.head(artifact.bucket, artifact.key) is None:
            raise NotFoundError(
                f"input artifact {artifact.name} is missing from the artifact store "
                f"(s3://{artifact.bucket}/{artifact.key})"
            )
        dest = ctx.workdir / "src" / artifact.name
        if dest.exists():  # left by a run that was interrupted (the engine restarted)
            shutil.rmtree(dest)
        extract_zip(ctx.artifacts.local_path(artifact.bucket, artifact.key), dest)
        dirs[artifact.name] = dest
    return dirs


def store_outputs(
    job: Job,
    ctx: JobContext,
    dirs: Mapping[str, Path],
    include: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, str]:
    """Zip ``dirs[name]`` for every output artifact of ``job`` and store it; name -> sha256.

    ``include`` optionally narrows an artifact to glob-selected files of its directory.
    """
    revisions: dict[str, str] = {}
    for artifact in job.output_artifacts:
        if artifact.name not in dirs:
            raise InvalidInputError(f"output artifact {artifact.name} has no content")
        zip_path = ctx.workdir / "out" / f"{artifact.name}.zip"
        selection = include.get(artifact.name) if include else None
        digest = write_zip(dirs[artifact.name], zip_path, include=selection)
        ctx.artifacts.put_file(
            artifact.bucket, artifact.key, zip_path, content_type="application/zip"
        )
        revisions[artifact.name] = digest
    return revisions


def collect_files(root: Path, artifact: ArtifactSpec, dest: Path, *, label: str) -> list[str]:
    """Copy the files ``artifact`` selects under ``root`` into ``dest``; their paths there.

    Patterns are relative to ``root`` (or its base-directory) with the glob rules of
    ``caravan.artifacts.zipfiles`` (``**/*`` is everything); a literal directory name selects
    its whole content. A symlink inside the sources is collected as the file it points to, as
    the zip would store it. Raises InvalidInputError when a pattern matches nothing.
    """
    base = artifact.base_directory
    if base is not None:
        _check_pattern(base, f"{label}.base-directory")
        if not (root / base).is_dir():
            raise InvalidInputError(f"no matching base directory path found for {base}")
    members = select_files(root, base=Path(base) if base else None)
    excluded = _matching(members, artifact.exclude_paths)
    selected: dict[str, str] = {}  # name in the artifact -> name under the base
    for pattern in artifact.files:
        _check_pattern(pattern, f"{label}.files")
        matched = _matching(members, [pattern])
        if not matched:
            raise InvalidInputError(
                f"no files matched {label}.files pattern {pattern!r} "
                "(CodeBuild: no matching artifact paths found)"
            )
        for name in matched - excluded:
            if artifact.discard_paths and name.endswith("/"):
                continue  # flattened: directories vanish
            target = PurePosixPath(name).name if artifact.discard_paths else name
            selected[target] = name
    source_base = root / base if base else root
    dest.mkdir(parents=True, exist_ok=True)
    for target, name in sorted(selected.items()):
        _copy(source_base / name, dest / target)
    return sorted(selected)


def _check_pattern(pattern: str, where: str) -> None:
    pure = PurePosixPath(pattern)
    if pure.is_absolute() or ".." in pure.parts:
        raise InvalidInputError(f"{where} {pattern!r} must stay inside the sources")


def _matching(members: Iterable[str], patterns: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for pattern in patterns:
        regex = compile_glob(pattern)
        literal = _literal_prefix(pattern)
        found.update(
            name
            for name in members
            if regex.fullmatch(name.rstrip("/"))
            or (literal is not None and name.startswith(literal))
        )
    return found


def _literal_prefix(pattern: str) -> str | None:
    """A literal directory pattern ("dist", ".") selects everything below it; a glob does not."""
    if _GLOB_CHARS & set(pattern):
        return None
    text = pattern.strip()
    while text.startswith("./"):
        text = text[2:]
    text = text.strip("/")
    return f"{text}/" if text else ""


def _copy(source: Path, target: Path) -> None:
    if source.is_dir():  # an empty directory the pattern selected
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    real = source.resolve()  # select_files checked that links stay inside the sources
    try:
        os.link(real, target)  # cheap, and the build is over: nothing writes the file again
    except OSError:
        shutil.copy2(real, target)

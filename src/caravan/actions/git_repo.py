"""Reading git repositories for source actions: a bare mirror per repository, kept in a cache.

``open_mirror(url, cache_dir)`` locks (in this process and across processes) and yields a
``GitMirror``: ``fetch`` updates every branch and tag from the remote, ``resolve_branch`` and
``resolve_revision`` turn names into commit ids, ``commit_info`` reads a commit's metadata,
``export_tree`` writes the files of a commit into a directory (no ``.git``; exec bits and
symlinks as in git; submodules skipped) and ``clone_at`` writes a checkout that keeps ``.git``.

Every git command runs through ``caravan.actions.git_command.run_git`` (an async subprocess in
its own process group, never prompting for credentials); any URL that appears in a message has
its ``user:password@`` part redacted (``caravan.actions.git_urls``). The remote URL is given on
each fetch and never written into the mirror's config, so a token in a URL is not stored on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import tarfile
import threading
import uuid
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from caravan.actions.git_command import GitCommandError, run_git
from caravan.actions.git_urls import redact, repository_name, strip_credentials
from caravan.errors import ArchiveError, NotFoundError

try:  # POSIX: several caravan processes may share one cache directory.
    import fcntl
except ImportError:  # pragma: no cover - Windows: only the in-process lock applies
    fcntl = None  # type: ignore[assignment]

MAX_COMMIT_MESSAGE = 100 * 1024  # bytes; CodePipeline's CommitMessage limit
_LOCK_POLL = 0.05
_HEX_REVISION = re.compile(r"^[0-9a-fA-F]{4,64}$")


class BranchNotFoundError(NotFoundError):
    """The branch a source action names does not exist in the repository."""

    reference = "git-branch-not-found"

    def __init__(self, branch: str, existing: list[str], where: str) -> None:
        self.branch = branch
        self.existing = existing
        listed = ", ".join(existing) if existing else "none: the repository has no branches"
        super().__init__(
            f"branch {branch!r} does not exist in {where}; existing branches: {listed}"
        )


class RevisionNotFoundError(NotFoundError):
    """A pinned commit id is malformed, unknown, ambiguous or not reachable from any ref."""

    reference = "git-revision-not-found"


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    author_date: str  # ISO 8601 UTC, e.g. 2026-11-26T17:41:11Z
    committer_date: str
    message: str  # at most MAX_COMMIT_MESSAGE bytes of UTF-8, surrounding whitespace trimmed

    @property
    def summary(self) -> str:
        return self.message.split("\n", 1)[0].strip()


@dataclass(frozen=True)
class ExportStats:
    files: int
    bytes: int
    skipped_submodules: tuple[str, ...] = ()
    uses_lfs: bool = False


# In-process turns without polling; asyncio locks belong to one event loop, hence per loop.
_loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Path, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


@contextlib.asynccontextmanager
async def open_mirror(url: str, cache_dir: Path) -> AsyncIterator[GitMirror]:
    """Lock the mirror of ``url`` under ``cache_dir`` (creating it if needed) for the caller."""
    key = strip_credentials(url)
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", repository_name(key))[:40] or "repo"
    root = cache_dir / "git-mirrors"
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{stem}-{digest}.git"
    locks = _loop_locks.setdefault(asyncio.get_running_loop(), {})
    lock = locks.setdefault(path, asyncio.Lock())
    async with lock, _file_lock(root / f"{stem}-{digest}.flock"):
        mirror = GitMirror(url, path)
        await mirror.ensure_usable()
        yield mirror


@contextlib.asynccontextmanager
async def _file_lock(path: Path) -> AsyncIterator[None]:
    """An exclusive flock, awaited without blocking the event loop (contention is rare)."""
    with path.open("a") as handle:
        if fcntl is not None:
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(_LOCK_POLL)
        yield  # closing the file releases the lock


class GitMirror:
    """A bare repository holding every branch and tag of one remote. Use via ``open_mirror``."""

    def __init__(self, url: str, path: Path) -> None:
        self.url = url
        self.path = path

    @property
    def display_url(self) -> str:
        return redact(self.url)

    async def git(self, *args: str) -> bytes:
        return await run_git("--git-dir", str(self.path), *args)

    async def ensure_usable(self) -> None:
        """Create the mirror, or repair what a killed fetch left behind."""
        if self.path.exists():
            try:
                await self.git("rev-parse", "--is-bare-repository")
            except GitCommandError:
                shutil.rmtree(self.path)  # not a repository any more: start again
        if not self.path.exists():
            # Built beside, then renamed: a half-initialised mirror never has the final name.
            staging = self.path.with_name(f"{self.path.name}.{uuid.uuid4().hex}.tmp")
            await run_git("init", "--bare", "--quiet", str(staging))
            for name, value in (("gc.autoDetach", "false"), ("core.logAllRefUpdates", "false")):
                await run_git("--git-dir", str(staging), "config", name, value)
            staging.rename(self.path)
        self._remove_stale_locks()

    def _remove_stale_locks(self) -> None:
        """A killed git leaves ``*.lock`` files; we hold the mirror's lock, so none is live."""
        candidates = [self.path / "refs", self.path]
        for base in candidates:
            pattern = "**/*.lock" if base.name == "refs" else "*.lock"
            for stale in base.glob(pattern):
                stale.unlink(missing_ok=True)

    async def fetch(self) -> None:
        """Update every branch and tag from the remote; removed branches are pruned."""
        await self.git(
            "-c",
            "gc.autoDetach=false",  # gc runs now, under our lock, not behind our back
            "-c",
            "maintenance.autoDetach=false",
            "fetch",
            "--quiet",
            "--prune",
            "--no-recurse-submodules",
            "--end-of-options",
            self.url,
            "+refs/heads/*:refs/heads/*",
            "+refs/tags/*:refs/tags/*",
        )

    async def default_branch(self) -> str | None:
        """The branch the remote's HEAD points at, or None if it names none."""
        out = await run_git("ls-remote", "--symref", "--end-of-options", self.url, "HEAD")
        for line in out.decode("utf-8", errors="replace").splitlines():
            target, _, name = line.partition("\t")
            if name == "HEAD" and target.startswith("ref: refs/heads/"):
                return target.removeprefix("ref: refs/heads/")
        return None

    async def branches(self) -> list[str]:
        out = await self.git("for-each-ref", "--format=%(refname:lstrip=2)", "refs/heads")
        return sorted(out.decode("utf-8", errors="replace").split())

    async def _commit_of(self, revision: str) -> str | None:
        try:
            out = await self.git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
        except GitCommandError:
            return None
        return out.decode().strip() or None

    async def resolve_branch(self, branch: str) -> str:
        """The commit at the head of ``branch``; BranchNotFoundError lists the existing ones."""
        # show-ref takes the name literally: "main~1" or "main^{tree}" are not branches.
        try:
            out = await self.git("show-ref", "--verify", "--hash", f"refs/heads/{branch}")
        except GitCommandError:
            out = b""
        sha = await self._commit_of(out.decode().strip()) if out.strip() else None
        if sha is None:
            raise BranchNotFoundError(branch, await self.branches(), self.display_url)
        return sha

    async def resolve_revision(self, revision: str) -> str:
        """The full id of a (possibly abbreviated) commit id reachable from a branch or tag."""
        where = f"in {self.display_url}"
        if not _HEX_REVISION.match(revision):
            raise RevisionNotFoundError(f"{revision!r} is not a commit id (4-64 hex digits)")
        sha = await self._commit_of(revision)
        if sha is None:
            raise RevisionNotFoundError(
                f"commit {revision} does not exist (or is ambiguous) {where}"
            )
        reachable = await self.git(
            "for-each-ref", "--count=1", "--format=%(refname)", f"--contains={sha}"
        )
        if not reachable.strip():
            raise RevisionNotFoundError(
                f"commit {sha} is not reachable from any branch or tag {where}"
            )
        return sha

    async def commit_info(self, sha: str) -> CommitInfo:
        out = await self.git(
            "-c",
            "log.showSignature=false",
            "log",
            "-1",
            "--encoding=UTF-8",
            "--format=%H%x00%at%x00%ct%x00%B",
            sha,
            "--",
        )
        full, author, committer, message = out.decode("utf-8", errors="replace").split("\0", 3)
        return CommitInfo(full, _iso_utc(author), _iso_utc(committer), _trim_message(message))

    async def export_tree(self, sha: str, dest: Path) -> ExportStats:
        """Write the files of commit ``sha`` into ``dest`` (created), without ``.git``."""
        listing = await self.git("ls-tree", "-r", "-z", "--full-tree", sha)
        submodules = tuple(
            entry.split("\t", 1)[1]
            for entry in listing.decode("utf-8", errors="surrogateescape").split("\0")
            if entry.startswith("160000 ")
        )
        dest.mkdir(parents=True, exist_ok=True)
        tar_path = dest.with_name(f"{dest.name}.tar")
        await self.git("archive", "--format=tar", f"--output={tar_path}", sha)
        stop = threading.Event()
        try:
            files, size = await asyncio.to_thread(_unpack, tar_path, dest, set(submodules), stop)
        except BaseException:
            stop.set()  # a cancelled job: the thread stops writing at the next entry
            raise
        finally:
            tar_path.unlink(missing_ok=True)
        return ExportStats(files, size, submodules, _uses_lfs(dest))

    async def clone_at(self, sha: str, branch: str, dest: Path) -> ExportStats:
        """A checkout of ``sha`` on ``branch`` with its ``.git`` (CODEBUILD_CLONE_REF)."""
        await run_git(
            "clone", "--quiet", "--no-checkout", "--end-of-options", str(self.path), str(dest)
        )
        await run_git("-C", str(dest), "checkout", "--quiet", "-B", branch, sha)
        # The clone's origin is the cache; point it at the real remote, minus credentials.
        await run_git("-C", str(dest), "remote", "set-url", "origin", strip_credentials(self.url))
        files = [p for p in dest.rglob("*") if ".git" not in p.relative_to(dest).parts]
        regular = [p for p in files if p.is_file() and not p.is_symlink()]
        return ExportStats(
            len(regular), sum(p.stat().st_size for p in regular), (), _uses_lfs(dest)
        )


def _unpack(tar_path: Path, dest: Path, skip: set[str], stop: threading.Event) -> tuple[int, int]:
    """Write the members of git's tar into ``dest``: files 0644/0755, symlinks kept as links."""
    files = size = 0
    root = dest.resolve()
    checked = {root}  # directories known to be real directories inside root
    with tarfile.open(tar_path, mode="r:") as archive:
        for member in archive:
            if stop.is_set():
                break
            name = member.name.rstrip("/")
            # Directories are made for what they hold: git tracks no empty ones, so an empty
            # directory would only come from a submodule, and submodules are not exported.
            if member.isdir() or name in skip:
                continue
            target = _member_target(root, name, checked)
            try:
                if member.issym():
                    target.symlink_to(member.linkname)
                elif member.isfile() and (source := archive.extractfile(member)) is not None:
                    with source, target.open("xb") as out:  # "x": never through a link
                        shutil.copyfileobj(source, out)
                    target.chmod(0o755 if member.mode & 0o100 else 0o644)
                    files += 1
                    size += member.size
            except FileExistsError:
                raise ArchiveError("git tree holds this entry twice", entry=name) from None
    return files, size


def _member_target(root: Path, name: str, checked: set[Path]) -> Path:
    """Where an entry goes, its directory made; ArchiveError if that would leave ``root``.

    git never writes such trees, but a hostile repository's objects can hold them: a name with
    ``..``, or a directory reached through a symlink of the same tree.
    """
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or ".." in parts or ".git" in parts:
        raise ArchiveError("git tree entry escapes the export directory", entry=name)
    target = root.joinpath(*parts)
    parent = target.parent
    if parent not in checked:
        real = Path(os.path.realpath(parent))
        if real != root and root not in real.parents:
            raise ArchiveError("git tree entry is reached through a symlink", entry=name)
        parent.mkdir(parents=True, exist_ok=True)
        checked.add(parent)
    return target


def _uses_lfs(root: Path) -> bool:
    attributes = root / ".gitattributes"
    if attributes.is_symlink() or not attributes.is_file():
        return False
    return "filter=lfs" in attributes.read_text(encoding="utf-8", errors="replace")


def _iso_utc(epoch: str) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _trim_message(message: str) -> str:
    data = message.strip().encode("utf-8")
    if len(data) <= MAX_COMMIT_MESSAGE:
        return message.strip()
    return data[:MAX_COMMIT_MESSAGE].decode("utf-8", errors="ignore").rstrip()

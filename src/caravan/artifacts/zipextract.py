"""Safe extraction of zip archives (``extract_zip``) and the limits that bound it.

Hostile archives are refused with an ``ArchiveError`` naming the entry and the rule: traversal,
absolute paths, NUL bytes, duplicates and file/directory clashes, too many entries, too many
bytes, an excessive compression ratio (counted while streaming, never trusted from headers),
encrypted or corrupt entries. Symlink entries are recreated as links when their target stays
inside the tree (checked on the real, fully resolved path after every link exists; no entry may
be written through a link); any other link is refused. Everything is extracted into a temporary
sibling of ``dest`` that is renamed into place only when complete, so a rejected archive leaves
nothing behind. ``dest`` must be missing or an empty directory.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import IO, Literal

from caravan.artifacts.zipwrite import CHUNK, is_within
from caravan.errors import ArchiveError, InvalidInputError

_MAX_LINK_TARGET = 4096


@dataclass(frozen=True)
class ExtractLimits:
    """Bounds that make a zip bomb fail fast instead of filling the disk."""

    max_entries: int = 100_000
    max_total_bytes: int = 5 * 1024**3
    max_ratio: float = 200.0  # uncompressed : compressed, per entry ...
    ratio_min_size: int = 1024**2  # ... checked once an entry has produced this many bytes


DEFAULT_LIMITS = ExtractLimits()


_Kind = Literal["file", "dir", "link"]
_DRIVE = re.compile(r"^[A-Za-z]:")
_SEPARATORS = re.compile(r"[/\\]")


@dataclass(frozen=True)
class _Planned:
    info: zipfile.ZipInfo
    path: str  # normalized relative POSIX path
    kind: _Kind
    executable: bool


def extract_zip(
    source: Path | bytes, dest: Path, *, limits: ExtractLimits = DEFAULT_LIMITS
) -> list[str]:
    """Extract ``source`` into ``dest`` safely; the sorted relative paths of files and links."""
    _check_destination(dest)
    with _open_archive(source) as (archive, archive_size):
        plan = _plan(archive.infolist(), limits)
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
        try:
            _materialize(archive, plan, staging, limits, archive_size)
            staging.chmod(0o755)  # mkdtemp makes it private; dest is an ordinary directory
            if dest.exists():
                dest.rmdir()
            staging.rename(dest)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return sorted(p.path for p in plan if p.kind != "dir")


def _check_destination(dest: Path) -> None:
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise InvalidInputError(f"extraction destination {dest} is not a directory")
    if dest.is_dir() and any(dest.iterdir()):
        raise InvalidInputError(f"extraction destination {dest} is not empty")


# What zipfile raises on malformed input, beyond BadZipFile.
_CORRUPT = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    ValueError,
    OverflowError,
    IndexError,
    KeyError,
    NotImplementedError,
    RuntimeError,
    OSError,
)


@contextmanager
def _open_archive(source: Path | bytes) -> Iterator[tuple[zipfile.ZipFile, int]]:
    label = "archive" if isinstance(source, bytes | bytearray) else str(source)
    with ExitStack() as stack:
        try:
            if isinstance(source, bytes | bytearray):
                handle: IO[bytes] = io.BytesIO(source)
            else:
                handle = stack.enter_context(Path(source).open("rb"))
        except OSError as error:
            raise ArchiveError(f"cannot read archive {label}: {error.strerror}") from None
        try:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(0)
            archive = stack.enter_context(zipfile.ZipFile(handle))
        except _CORRUPT as error:
            raise ArchiveError(f"not a zip archive: {label} ({error})") from None
        yield archive, size


def _plan(infos: Sequence[zipfile.ZipInfo], limits: ExtractLimits) -> list[_Planned]:
    if len(infos) > limits.max_entries:
        raise ArchiveError(
            f"too many entries: {len(infos)} (limit {limits.max_entries})",
            entry=infos[limits.max_entries].filename,
        )
    plan = [p for p in (_plan_entry(info) for info in infos) if p is not None]
    _check_clashes(plan)
    _check_declared_sizes(plan, limits)
    return plan


def _plan_entry(info: zipfile.ZipInfo) -> _Planned | None:
    name = info.filename
    if "\x00" in info.orig_filename:  # zipfile cuts the name at the NUL; the trick is hostile
        raise ArchiveError("unsafe entry: NUL byte in name", entry=info.orig_filename)
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise ArchiveError("unsafe entry: absolute path", entry=name)
    parts = [p for p in _SEPARATORS.split(name) if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError("unsafe entry: path traversal ('..')", entry=name)
    mode = info.external_attr >> 16
    is_dir = name.endswith(("/", "\\")) or stat.S_ISDIR(mode)
    if not parts:
        if is_dir:
            return None  # "./" names the destination itself
        raise ArchiveError("unsafe entry: empty name", entry=name)
    path = "/".join(parts)
    if stat.S_ISLNK(mode):
        if is_dir:
            raise ArchiveError("symlink entry named like a directory", entry=name)
        return _Planned(info, path, "link", False)
    if is_dir:
        return _Planned(info, path, "dir", False)
    return _Planned(info, path, "file", bool(mode & stat.S_IXUSR))


def _check_clashes(plan: Sequence[_Planned]) -> None:
    leaves: dict[str, _Planned] = {}
    directories: set[str] = set()
    for entry in plan:
        if entry.kind == "dir":
            directories.add(entry.path)
        elif entry.path in leaves:
            raise ArchiveError("duplicate entry would overwrite another", entry=entry.info.filename)
        else:
            leaves[entry.path] = entry
        directories.update(str(p) for p in PurePosixPath(entry.path).parents if str(p) != ".")
    links = {path for path, entry in leaves.items() if entry.kind == "link"}
    for entry in plan:
        if any(str(parent) in links for parent in PurePosixPath(entry.path).parents):
            raise ArchiveError("entry lies beneath a symlink entry", entry=entry.info.filename)
    for path, entry in leaves.items():
        if path in directories:
            raise ArchiveError(
                "entry is both a file and a directory in the archive", entry=entry.info.filename
            )


def _check_declared_sizes(plan: Sequence[_Planned], limits: ExtractLimits) -> None:
    """Fail fast on an honest header; the streaming counters catch a lying one."""
    total = 0
    for entry in plan:
        total += entry.info.file_size
        if total > limits.max_total_bytes:
            raise ArchiveError(
                f"archive expands beyond {limits.max_total_bytes} bytes", entry=entry.info.filename
            )


def _materialize(
    archive: zipfile.ZipFile,
    plan: Sequence[_Planned],
    staging: Path,
    limits: ExtractLimits,
    archive_size: int,
) -> None:
    budget = _Budget(limits, archive_size)
    for entry in plan:
        if entry.kind == "dir":
            _guarded(entry, partial((staging / entry.path).mkdir, parents=True, exist_ok=True))
    for entry in plan:
        if entry.kind == "file":
            _guarded(entry, partial(_extract_file, archive, entry, staging, budget))
    # Links come last so that nothing is ever written through one.
    links = [entry for entry in plan if entry.kind == "link"]
    for entry in links:
        _guarded(entry, partial(_extract_link, archive, entry, staging))
    root = Path(os.path.realpath(staging))
    for entry in links:
        if not is_within(Path(os.path.realpath(staging / entry.path)), root):
            raise ArchiveError("symlink points outside the archive", entry=entry.info.filename)


def _guarded(entry: _Planned, action: Callable[[], object]) -> None:
    """Run one entry's extraction, turning any failure into an ArchiveError naming it."""
    name = entry.info.filename
    try:
        action()
    except ArchiveError:
        raise
    except RuntimeError as error:  # encrypted ("password required"), unknown compression method
        raise ArchiveError(f"unsupported entry ({error})", entry=name) from None
    except FileExistsError:
        raise ArchiveError(
            "duplicate entry would overwrite another (names differ only in case?)", entry=name
        ) from None
    except OSError as error:
        raise ArchiveError(f"cannot extract entry: {error.strerror or error}", entry=name) from None
    except _CORRUPT as error:
        raise ArchiveError(f"corrupt entry ({error})", entry=name) from None


class _Budget:
    """Counts the bytes actually produced, archive-wide and per entry."""

    def __init__(self, limits: ExtractLimits, archive_size: int) -> None:
        self.limits = limits
        self.archive_size = archive_size
        self.total = 0

    def spend(self, entry: _Planned, produced: int, chunk: int) -> None:
        self.total += chunk
        limits, name = self.limits, entry.info.filename
        if self.total > limits.max_total_bytes:
            raise ArchiveError(f"archive expands beyond {limits.max_total_bytes} bytes", entry=name)
        # compress_size is only a header claim; the real input can never exceed the archive.
        compressed = max(min(entry.info.compress_size, self.archive_size), 1)
        if produced > limits.ratio_min_size and produced > limits.max_ratio * compressed:
            raise ArchiveError(f"compression ratio exceeds {limits.max_ratio:g}:1", entry=name)
        # Whatever the headers say, the whole archive may not amplify beyond the ratio either.
        if self.total > limits.ratio_min_size and self.total > limits.max_ratio * self.archive_size:
            raise ArchiveError(
                f"archive expands more than {limits.max_ratio:g}:1 (compression bomb)", entry=name
            )


def _extract_file(
    archive: zipfile.ZipFile, entry: _Planned, staging: Path, budget: _Budget
) -> None:
    target = staging / entry.path
    target.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(target, flags | getattr(os, "O_CLOEXEC", 0), 0o600)
    with os.fdopen(fd, "wb") as sink, archive.open(entry.info) as source:
        produced = 0
        while chunk := source.read(CHUNK):
            produced += len(chunk)
            budget.spend(entry, produced, len(chunk))
            sink.write(chunk)
        os.fchmod(sink.fileno(), 0o755 if entry.executable else 0o644)


def _extract_link(archive: zipfile.ZipFile, entry: _Planned, staging: Path) -> None:
    name = entry.info.filename
    with archive.open(entry.info) as source:
        raw = source.read(_MAX_LINK_TARGET + 1)
    if len(raw) > _MAX_LINK_TARGET:
        raise ArchiveError("symlink target is too long", entry=name)
    try:
        target = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ArchiveError("symlink target is not valid UTF-8", entry=name) from None
    if not target or "\x00" in target:
        raise ArchiveError("symlink target is empty or holds a NUL byte", entry=name)
    if target.startswith(("/", "\\")) or _DRIVE.match(target):
        raise ArchiveError("symlink points outside the archive (absolute target)", entry=name)
    depth = len(PurePosixPath(entry.path).parents) - 1
    for part in _SEPARATORS.split(target):
        depth += -1 if part == ".." else 0 if part in ("", ".") else 1
        if depth < 0:
            raise ArchiveError("symlink points outside the archive", entry=name)
    link = staging / entry.path
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)

"""Deterministic zip archives, and their safe extraction.

Writing: the same tree gives byte-identical zips on any machine running the same zlib — entries
sorted by POSIX path, every timestamp 1980-01-01 00:00:00, modes reduced to 0o644 / 0o755 (the
owner exec bit is kept: scripts and build outputs need it), no extra fields, ZIP_DEFLATED at
level 6. Directories get an entry ("dir/") only when empty. A symlink whose target stays inside
the tree is stored as its target's content (a linked directory is walked); a link that leaves the
tree, dangles or loops is an ``ArchiveError``.

Selecting files (``include``): CodeBuild-style globs relative to the zip's base, matched against
whole relative paths. ``*`` and ``?`` stay within one path segment, ``**`` crosses directories
(``**/`` also matches no directory at all), ``[abc]`` / ``[!abc]`` sets, ``{a,b}`` alternatives,
``\\`` escapes. ``*`` matches dotfiles too. An empty directory is kept when a pattern matches its
path. A pattern matching nothing is fine; so is an empty selection (the zip is then empty).

Extraction (``extract_zip``) refuses hostile archives with an ``ArchiveError`` naming the entry
and the rule: traversal, absolute paths, NUL bytes, duplicates and file/directory clashes, too
many entries, too many bytes, an excessive compression ratio (counted while streaming, never
trusted from headers), encrypted or corrupt entries. Symlink entries are recreated as links when
their target stays inside the tree (checked on the real, fully resolved path after every link
exists; no entry may be written through a link); any other link is refused. Everything is
extracted into a temporary sibling of ``dest`` that is renamed into place only when complete, so
a rejected archive leaves nothing behind. ``dest`` must be missing or an empty directory.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import IO, Literal

from caravan.errors import ArchiveError, InvalidInputError

FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
COMPRESS_LEVEL = 6
_CHUNK = 1024 * 1024
_MAX_LINK_TARGET = 4096
_UNIX = 3  # ZipInfo.create_system for Unix: tools honour the mode in external_attr
_MSDOS_DIRECTORY = 0x10


@dataclass(frozen=True)
class ExtractLimits:
    """Bounds that make a zip bomb fail fast instead of filling the disk."""

    max_entries: int = 100_000
    max_total_bytes: int = 5 * 1024**3
    max_ratio: float = 200.0  # uncompressed : compressed, per entry ...
    ratio_min_size: int = 1024**2  # ... checked once an entry has produced this many bytes


DEFAULT_LIMITS = ExtractLimits()


# --------------------------------------------------------------------------------------- globs


def compile_glob(pattern: str) -> re.Pattern[str]:
    """The regular expression matching the relative POSIX paths selected by ``pattern``."""
    text = pattern.strip()
    while text.startswith("./"):
        text = text[2:]
    text = text.strip("/")
    segments = [segment for segment in text.split("/") if segment]
    pieces: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            pieces.append(".*" if last else "(?:.*/)?")
        else:
            pieces.append(_translate_segment(segment) + ("" if last else "/"))
    return re.compile("".join(pieces), re.DOTALL)


def _translate_segment(segment: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(segment):
        char = segment[i]
        if char == "\\" and i + 1 < len(segment):
            out.append(re.escape(segment[i + 1]))
            i += 2
            continue
        if segment.startswith("**", i):  # "**" inside a segment crosses directories too
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and (end := segment.find("]", i + 2)) != -1:
            body = segment[i + 1 : end]
            negate = body.startswith(("!", "^"))
            body = body[1:] if negate else body
            out.append(("[^/" if negate else "[") + body.replace("\\", "\\\\") + "]")
            i = end + 1
            continue
        elif char == "{" and (end := segment.find("}", i)) != -1:
            options = segment[i + 1 : end].split(",")
            out.append("(?:" + "|".join(_translate_segment(o) for o in options) + ")")
            i = end + 1
            continue
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def _matcher(include: Sequence[str] | None) -> Callable[[str], bool]:
    if include is None:
        return lambda _path: True
    if isinstance(include, str):  # a lone pattern would otherwise be split into characters
        include = [include]
    compiled = [compile_glob(p) for p in include]
    return lambda path: any(regex.fullmatch(path) for regex in compiled)


# ------------------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class _Member:
    """One entry to write: a file read from ``source`` or given as ``data``, or an empty dir."""

    name: str
    executable: bool = False
    source: Path | None = None
    data: bytes | None = None

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")


def select_files(
    root: Path, *, include: Sequence[str] | None = None, base: Path | None = None
) -> list[str]:
    """The relative POSIX paths ``write_zip`` would store (empty directories end with "/")."""
    return [m.name for m in _collect(root, base, include)]


def write_zip(
    root: Path,
    dest: Path,
    *,
    include: Sequence[str] | None = None,
    base: Path | None = None,
) -> str:
    """Zip the tree under ``root`` (or its subdirectory ``base``) into ``dest``; its sha256 hex.

    Paths in the zip, and the ``include`` globs, are relative to ``base`` (default: ``root``);
    symlinks may point anywhere inside ``root``. ``dest`` is replaced atomically.
    """
    dest_real = Path(os.path.realpath(dest))
    members = [m for m in _collect(root, base, include) if m.source != dest_real]
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "w+b") as handle:
            _write_members(members, handle)
            handle.seek(0)
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        temp.chmod(0o644)  # mkstemp makes it private; a zip is an ordinary file
        temp.replace(dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return digest


def zip_bytes(
    root: Path, *, include: Sequence[str] | None = None, base: Path | None = None
) -> bytes:
    """The same zip as ``write_zip`` would write, in memory."""
    buffer = io.BytesIO()
    _write_members(_collect(root, base, include), buffer)
    return buffer.getvalue()


def zip_files(files: Mapping[str, bytes | tuple[bytes, int]]) -> bytes:
    """A deterministic zip of in-memory contents: ``{"a/run.sh": (b"...", 0o755), "b": b"..."}``.

    A name ending in "/" is an (empty) directory entry. Names must be relative POSIX paths.
    """
    members: list[_Member] = []
    for name, value in files.items():
        data, mode = value if isinstance(value, tuple) else (value, 0o644)
        parts = name.rstrip("/").split("/")
        if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise InvalidInputError(f"zip entry name must be a relative POSIX path: {name!r}")
        if name.endswith("/"):
            members.append(_Member(name))
        else:
            members.append(_Member(name, executable=bool(mode & stat.S_IXUSR), data=bytes(data)))
    buffer = io.BytesIO()
    _write_members(sorted(members, key=lambda m: m.name), buffer)
    return buffer.getvalue()


def _collect(root: Path, base: Path | None, include: Sequence[str] | None) -> list[_Member]:
    root_real = Path(os.path.realpath(root))
    if not root_real.is_dir():
        raise InvalidInputError(f"cannot zip {root}: not a directory")
    start = root_real if base is None else Path(os.path.realpath(root_real / base))
    if not _is_within(start, root_real):
        raise InvalidInputError(f"base directory {base} is outside {root}")
    if not start.is_dir():
        raise InvalidInputError(f"base directory {base} does not exist in {root}")
    # Every real directory from root down to base is an ancestor: a link back to one is a loop.
    ancestors = frozenset([start, *(p for p in start.parents if _is_within(p, root_real))])
    members: list[_Member] = []
    _walk(root_real, start, "", ancestors, members)
    selected = _matcher(include)
    chosen = [m for m in members if selected(m.name.rstrip("/"))]
    return sorted(chosen, key=lambda m: m.name)


def _walk(
    root: Path, directory: Path, prefix: str, ancestors: frozenset[Path], out: list[_Member]
) -> None:
    try:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda e: e.name)
    except OSError as error:
        raise ArchiveError(
            f"cannot read directory: {error.strerror}", entry=prefix or "."
        ) from None
    if not entries and prefix:
        out.append(_Member(prefix))
    for entry in entries:
        name = prefix + entry.name
        _check_name(name)
        path = Path(entry.path)
        if entry.is_symlink():
            path = _resolve_link(root, path, name)
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            real = Path(os.path.realpath(path))
            if real in ancestors:
                raise ArchiveError("symlink loops back to a parent directory", entry=name)
            _walk(root, real, name + "/", ancestors | {real}, out)
        elif stat.S_ISREG(info.st_mode):
            out.append(_Member(name, bool(info.st_mode & stat.S_IXUSR), source=path))
        else:
            raise ArchiveError("not a regular file, directory or symlink", entry=name)


def _resolve_link(root: Path, link: Path, name: str) -> Path:
    target = Path(os.path.realpath(link))
    if not _is_within(target, root):
        raise ArchiveError(f"symlink points outside {root}", entry=name)
    if not target.exists():
        raise ArchiveError("symlink target does not exist (or the link loops)", entry=name)
    return target


def _check_name(name: str) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ArchiveError("file name is not valid UTF-8", entry=name) from None


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _write_members(members: Sequence[_Member], handle: IO[bytes]) -> None:
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member in members:
            info = _zip_info(member)
            if member.source is not None:
                _copy_file(archive, info, member.name, member.source)
            else:
                data = member.data or b""
                info.file_size = len(data)
                with archive.open(info, "w") as sink:
                    sink.write(data)


def _copy_file(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, path: Path) -> None:
    try:
        with path.open("rb") as source:
            # The size decides up front whether the entry needs ZIP64 fields.
            info.file_size = os.fstat(source.fileno()).st_size
            with archive.open(info, "w") as sink:
                shutil.copyfileobj(source, sink, _CHUNK)
    except OSError as error:
        raise ArchiveError(f"cannot read file: {error.strerror}", entry=name) from None


def _zip_info(member: _Member) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(member.name, date_time=FIXED_DATE_TIME)
    info.create_system = _UNIX
    info.compress_type = zipfile.ZIP_DEFLATED
    info._compresslevel = COMPRESS_LEVEL  # type: ignore[attr-defined]  # no public setter in 3.11
    if member.is_dir:
        info.compress_type = zipfile.ZIP_STORED  # nothing to compress; what every tool writes
        info.external_attr = ((stat.S_IFDIR | 0o755) << 16) | _MSDOS_DIRECTORY
    else:
        mode = 0o755 if member.executable else 0o644
        info.external_attr = (stat.S_IFREG | mode) << 16
    return info


# ---------------------------------------------------------------------------------- extraction

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
        if not _is_within(Path(os.path.realpath(staging / entry.path)), root):
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
        while chunk := source.read(_CHUNK):
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

"""Writing deterministic zip archives of a directory tree or of in-memory contents.

The same tree gives byte-identical zips on any machine running the same zlib — entries sorted by
POSIX path, every timestamp 1980-01-01 00:00:00, modes reduced to 0o644 / 0o755 (the owner exec
bit is kept: scripts and build outputs need it), no extra fields, ZIP_DEFLATED at level 6.
Directories get an entry ("dir/") only when empty. A symlink whose target stays inside the tree
is stored as its target's content (a linked directory is walked); a link that leaves the tree,
dangles or loops is an ``ArchiveError``.

Files are selected with the globs of ``caravan.artifacts.globs`` (``include``), relative to the
zip's base. An empty directory is kept when a pattern matches its path. An empty selection is
fine (the zip is then empty).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from caravan.artifacts.globs import matcher
from caravan.errors import ArchiveError, InvalidInputError

FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
COMPRESS_LEVEL = 6
CHUNK = 1024 * 1024  # bytes per read when copying into or out of an archive
_UNIX = 3  # ZipInfo.create_system for Unix: tools honour the mode in external_attr
_MSDOS_DIRECTORY = 0x10


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
    if not is_within(start, root_real):
        raise InvalidInputError(f"base directory {base} is outside {root}")
    if not start.is_dir():
        raise InvalidInputError(f"base directory {base} does not exist in {root}")
    # Every real directory from root down to base is an ancestor: a link back to one is a loop.
    ancestors = frozenset([start, *(p for p in start.parents if is_within(p, root_real))])
    members: list[_Member] = []
    _walk(root_real, start, "", ancestors, members)
    selected = matcher(include)
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
    if not is_within(target, root):
        raise ArchiveError(f"symlink points outside {root}", entry=name)
    if not target.exists():
        raise ArchiveError("symlink target does not exist (or the link loops)", entry=name)
    return target


def _check_name(name: str) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ArchiveError("file name is not valid UTF-8", entry=name) from None


def is_within(path: Path, root: Path) -> bool:
    """Whether ``path`` is ``root`` or lies beneath it (compared as given, not resolved)."""
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
                shutil.copyfileobj(source, sink, CHUNK)
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

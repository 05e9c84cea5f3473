"""Static sites: immutable published versions and one atomic pointer to the current one.

    store = SiteStore(data_dir / "sites")
    v = store.publish("dromedary-test", Path("dist/site.zip"), config=site_config(...),
                      version_label="3f2c1e0")
    store.activate("dromedary-test", "2")             # instant rollback
    store.current("dromedary-test"), store.versions("dromedary-test")

On disk, per site::

    <root>/<site>/versions/<n>/files/...           the complete tree of version n
    <root>/<site>/versions/<n>/manifest.json       label, time, each file's metadata
    <root>/<site>/current.json                     {"version": "<n>"}, replaced by os.replace

``publish`` builds the whole version in a staging directory (subfolders included, config.json
written with the rest), renames it into ``versions/`` and only then swaps ``current.json`` with
one ``os.replace``. A reader that resolves the pointer once per request therefore sees the whole
old or the whole new version, never a mix, and files dropped from the new version are gone with
the switch (seed-system.md §12 item 15). Versions are never modified; ``activate`` points back
at any kept one. Pruning keeps the newest ``keep`` versions and never the current one.

Object metadata is fixed at publish, as S3 keeps ``Content-Type`` and ``Cache-Control`` as
system metadata set at upload (serverless.md §4.1). The policy:

* ``Content-Type`` from the name: ``text/html; charset=utf-8``, ``application/json``,
  ``text/javascript; charset=utf-8``, ``text/css; charset=utf-8`` ... then Python's built-in
  table, else ``application/octet-stream``;
* ``Cache-Control``: ``config.json`` ``no-cache, no-store, must-revalidate``; every ``.html``
  page (``index.html`` included) ``no-cache`` — browsers revalidate with the ETag, so a deploy is
  seen at once; every other file ``public, max-age=<asset_max_age>`` (a year by default, right
  for content-hashed asset names; pass ``asset_max_age=0`` for ``no-cache`` everywhere when the
  site's asset names are not hashed);
* ``ETag``: the quoted MD5 of the content, as S3 gives for a single-part upload.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mimetypes
import os
import re
import shutil
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from caravan.artifacts.zipfiles import extract_zip
from caravan.errors import InvalidInputError, NotFoundError
from caravan.platform.sites.config import (
    CONFIG_CACHE_CONTROL,
    CONFIG_CONTENT_TYPE,
    CONFIG_NAME,
    encode_config,
)

DEFAULT_KEEP = 20
ONE_YEAR = 31_536_000
_SITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".wasm": "application/wasm",
    ".webmanifest": "application/manifest+json",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
}
_MIME = mimetypes.MimeTypes()  # the built-in table only: the same answer on every machine


class SiteNotFoundError(NotFoundError):
    reference = "site-not-found"
    aws_type = "NoSuchBucket"


class SiteVersionNotFoundError(NotFoundError):
    reference = "site-version-not-found"
    aws_type = "NoSuchVersion"


@dataclass(frozen=True)
class FileMeta:
    content_type: str
    cache_control: str
    etag: str
    size: int


@dataclass(frozen=True)
class SiteVersion:
    """One published version of a site; its files never change."""

    site: str
    version_id: str
    label: str
    created: datetime
    files: Mapping[str, FileMeta]  # "index.html", "css/app.css", ... -> metadata
    root: Path  # the directory holding the files

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "versionId": self.version_id,
            "label": self.label,
            "created": self.created.isoformat(),
            "files": len(self.files),
        }


def content_type_for(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in _TYPES:
        return _TYPES[suffix]
    guessed, _ = _MIME.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


class SiteStore:
    """Named sites under ``root``, each a list of published versions and a current pointer."""

    def __init__(
        self, root: Path, *, keep: int = DEFAULT_KEEP, asset_max_age: int = ONE_YEAR
    ) -> None:
        if keep < 1:
            raise InvalidInputError(f"keep must be at least 1, not {keep}")
        self.root = Path(root)
        self.keep = keep
        self.asset_max_age = asset_max_age
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()  # one publish/activate/prune at a time in this process
        self._cache: dict[tuple[str, str], SiteVersion] = {}

    # ------------------------------------------------------------------------------ reading

    def sites(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if (p / "versions").is_dir())

    def current(self, site: str) -> SiteVersion | None:
        """The version being served, or None before the first publish."""
        pointer = self._site_dir(site) / "current.json"
        try:
            version_id = json.loads(pointer.read_bytes())["version"]
        except FileNotFoundError:
            return None
        return self.version(site, str(version_id))

    def version(self, site: str, version_id: str) -> SiteVersion:
        cached = self._cache.get((site, version_id))
        if cached is not None:
            return cached
        if not version_id.isdigit():
            raise SiteVersionNotFoundError(f"site {site!r} has no version {version_id!r}")
        directory = self._site_dir(site) / "versions" / version_id
        try:
            manifest = json.loads((directory / "manifest.json").read_bytes())
        except FileNotFoundError:
            raise SiteVersionNotFoundError(f"site {site!r} has no version {version_id!r}") from None
        loaded = _from_manifest(site, version_id, manifest, directory / "files")
        self._cache[(site, version_id)] = loaded
        return loaded

    def versions(self, site: str) -> list[SiteVersion]:
        """Every kept version, oldest first."""
        return [self.version(site, v) for v in self._version_ids(site)]

    # ------------------------------------------------------------------------------ changing

    def publish(
        self,
        site: str,
        source: Path | bytes,
        *,
        config: Mapping[str, Any] | None = None,
        version_label: str,
    ) -> SiteVersion:
        """Publish a directory or a zip (path or bytes) as the site's new current version."""
        site_dir = self._site_dir(site)
        config_bytes = encode_config(config) if config is not None else None
        (site_dir / "versions").mkdir(parents=True, exist_ok=True)
        staging = site_dir / f".staging-{uuid.uuid4().hex}"
        try:
            files = staging / "files"
            _fill(files, source)
            if config_bytes is not None:
                _write_file(files / CONFIG_NAME, config_bytes)
            manifest = self._manifest(version_label, files)
            _write_file(staging / "manifest.json", json.dumps(manifest, indent=1).encode())
            with self._lock:  # publishes in this process become current in their order
                version_id = self._install(site_dir, staging)
                published = self.activate(site, version_id)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self.prune(site)
        return published

    def activate(self, site: str, version_id: str) -> SiteVersion:
        """Make a kept version current (a rollback when it is an older one)."""
        version = self.version(site, version_id)
        site_dir = self._site_dir(site)
        with self._lock:
            temporary = site_dir / f".current-{uuid.uuid4().hex}.json"
            _write_file(temporary, json.dumps({"version": version_id}).encode())
            temporary.replace(site_dir / "current.json")  # the one atomic switch (os.replace)
            _sync_directory(site_dir)
        return version

    def prune(self, site: str, keep: int | None = None) -> list[str]:
        """Delete all but the newest ``keep`` versions, never the current one; the deleted ids."""
        keep = self.keep if keep is None else keep
        with self._lock:
            current = self.current(site)
            ids = self._version_ids(site)
            doomed = [
                v
                for v in ids[: max(0, len(ids) - keep)]
                if current is None or v != current.version_id
            ]
            for version_id in doomed:
                self._cache.pop((site, version_id), None)
                shutil.rmtree(self._site_dir(site) / "versions" / version_id, ignore_errors=True)
        return doomed

    # ------------------------------------------------------------------------------ helpers

    def _site_dir(self, site: str) -> Path:
        if not isinstance(site, str) or not _SITE.match(site) or ".." in site:
            raise InvalidInputError(
                f"site name {site!r} must be 1-128 letters, digits, '.', '_' or '-'"
            )
        return self.root / site

    def _version_ids(self, site: str) -> list[str]:
        versions = self._site_dir(site) / "versions"
        if not versions.is_dir():
            raise SiteNotFoundError(f"site {site!r} does not exist")
        return sorted((p.name for p in versions.iterdir() if p.name.isdigit()), key=int)

    def _install(self, site_dir: Path, staging: Path) -> str:
        """Rename the staged version to the next free number (safe against a racing publish)."""
        versions = site_dir / "versions"
        while True:
            ids = [int(p.name) for p in versions.iterdir() if p.name.isdigit()]
            version_id = str(max(ids, default=0) + 1)
            try:
                staging.rename(versions / version_id)
            except OSError:  # taken meanwhile by another publisher: try the next number
                if not (versions / version_id).exists():
                    raise
                continue
            _sync_directory(versions)
            return version_id

    def _manifest(self, label: str, files: Path) -> dict[str, Any]:
        entries = {}
        for name in _walk(files):
            data = (files / name).read_bytes()
            entries[name] = {
                "contentType": CONFIG_CONTENT_TYPE
                if name == CONFIG_NAME
                else content_type_for(name),
                "cacheControl": self._cache_control(name),
                "etag": f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"',
                "size": len(data),
            }
        return {"label": str(label), "created": datetime.now(UTC).isoformat(), "files": entries}

    def _cache_control(self, name: str) -> str:
        if name == CONFIG_NAME:
            return CONFIG_CACHE_CONTROL
        if name.lower().endswith((".html", ".htm")) or self.asset_max_age <= 0:
            return "no-cache"
        return f"public, max-age={self.asset_max_age}"


def _from_manifest(
    site: str, version_id: str, manifest: Mapping[str, Any], root: Path
) -> SiteVersion:
    files = {
        name: FileMeta(meta["contentType"], meta["cacheControl"], meta["etag"], int(meta["size"]))
        for name, meta in manifest["files"].items()
    }
    created = datetime.fromisoformat(manifest["created"])
    return SiteVersion(site, version_id, manifest["label"], created, files, root)


def _fill(files: Path, source: Path | bytes) -> None:
    """Put the site's tree into ``files`` (missing): from a zip (path or bytes) or a directory."""
    if isinstance(source, bytes):
        extract_zip(source, files)
        return
    source = Path(source)
    if source.is_file():
        extract_zip(source, files)
    elif source.is_dir():
        _copy_tree(source, files)
    else:
        raise InvalidInputError(f"site source {source} is neither a directory nor a zip file")


def _copy_tree(source: Path, dest: Path) -> None:
    """Copy regular files (links to files inside ``source`` as their content), fsynced."""
    base = source.resolve()
    dest.mkdir(parents=True)
    for directory, subdirs, names in os.walk(source):
        here = Path(directory)
        for name in sorted(subdirs + names):
            path = here / name
            relative = path.relative_to(source).as_posix()
            if "\\" in relative:
                raise InvalidInputError(f"site file {relative!r}: '\\' is not allowed in a name")
            if path.is_symlink() and not path.resolve().is_relative_to(base):
                raise InvalidInputError(f"site file {relative!r} links outside the site")
            if path.is_symlink() and path.is_dir():
                raise InvalidInputError(f"site file {relative!r} is a link to a directory")
            target = dest / relative
            if path.is_dir():
                target.mkdir()
            elif path.is_file():
                _write_file(target, path.read_bytes())


def _walk(files: Path) -> list[str]:
    """Every servable file below ``files`` as a POSIX relative name (links to files included)."""
    found = []
    for directory, _, names in os.walk(files):
        for name in names:
            path = Path(directory) / name
            if path.is_file():
                found.append(path.relative_to(files).as_posix())
    return sorted(found)


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # a fresh file, never writing through a link a zip brought
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())  # durable before the pointer makes it visible


def _sync_directory(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

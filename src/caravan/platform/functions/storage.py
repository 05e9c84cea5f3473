"""The on-disk layout of the function registry, and the writes that keep it crash-consistent.

    <root>/functions/<name>/function.json          $LATEST's configuration + its code directory
    <root>/functions/<name>/latest/<token>/        $LATEST's code.zip and extracted code/
    <root>/functions/<name>/versions/<n>/          config.json, code.zip, code/ (immutable)
    <root>/functions/<name>/aliases/<alias>.json   one alias each

Every record is written to a temporary sibling, flushed and then renamed over the old one
(``os.replace``), and every directory (a new function, a new $LATEST, a published version) is
built under a ``.partial-`` name and renamed into place when complete. A crash therefore leaves
either the old record or the new one; leftovers (``.partial-*``, ``.trash-*``) are swept when the
registry is opened. Extracted code is made read-only (advisory when caravan runs as root).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from caravan.artifacts.zipfiles import extract_zip
from caravan.platform.functions.records import AliasRecord, VersionRecord

PARTIAL = ".partial-"
TRASH = ".trash-"


def write_json(path: Path, data: Any, *, sort_keys: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically: readers see the old record or the new one.
    ``sort_keys=False`` keeps mappings in their order where the order means something."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f"{PARTIAL}{path.name}", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=sort_keys)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def function_json(latest: VersionRecord, token: str) -> dict[str, Any]:
    """function.json: $LATEST's record and the name of its code directory under latest/."""
    return {"Latest": latest.to_json(), "LatestCode": token}


def load_function(
    fn_dir: Path,
) -> tuple[VersionRecord, str, list[VersionRecord], list[AliasRecord]]:
    """Read one function's records: ($LATEST, its code token, versions, aliases)."""
    data = read_json(fn_dir / "function.json")
    token = data["LatestCode"]
    latest = VersionRecord.from_json(data["Latest"], fn_dir / "latest" / token / "code")
    for parent in (fn_dir / "latest", fn_dir / "versions", fn_dir / "aliases"):
        sweep_leftovers(parent)
    for child in (fn_dir / "latest").iterdir():
        if child.name != token:  # superseded $LATEST code: no worker can be using it now
            remove_tree(child)
    versions = [
        VersionRecord.from_json(read_json(child / "config.json"), child / "code")
        for child in _children(fn_dir / "versions")
        if child.name.isdigit() and (child / "config.json").is_file()
    ]
    aliases = [
        AliasRecord.from_json(read_json(child))
        for child in _children(fn_dir / "aliases")
        if child.suffix == ".json" and not child.name.startswith(".")
    ]
    return latest, token, versions, aliases


def _children(parent: Path) -> list[Path]:
    return sorted(parent.iterdir()) if parent.is_dir() else []


def staging_dir(parent: Path) -> Path:
    """A fresh directory to build something in before renaming it into place."""
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=PARTIAL, dir=parent))


def store_code(code: bytes, into: Path) -> Path:
    """Keep ``code.zip`` and its safe extraction ``code/`` (read-only) under ``into``."""
    code_dir = into / "code"
    extract_zip(code, code_dir)  # raises ArchiveError for a corrupt or hostile zip
    (into / "code.zip").write_bytes(code)
    make_read_only(code_dir)
    return code_dir


def make_read_only(tree: Path) -> None:
    for path in _walk(tree):
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def remove_tree(tree: Path) -> None:
    """Remove a tree, read-only code included; first moved aside so removal looks atomic."""
    if not tree.exists():
        return
    trash = tree.with_name(f"{TRASH}{uuid.uuid4().hex}")
    tree.rename(trash)
    _rm(trash)


def sweep_leftovers(parent: Path) -> None:
    """Remove what a crash left behind directly under ``parent``."""
    if not parent.is_dir():
        return
    for child in parent.iterdir():
        if not child.name.startswith((PARTIAL, TRASH)):
            continue
        if child.is_dir() and not child.is_symlink():
            _rm(child)
        else:
            child.unlink(missing_ok=True)


def _rm(tree: Path) -> None:
    # Read-only directories cannot have their entries removed: make them writable first.
    for path in _walk(tree):
        if path.is_dir() and not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR | stat.S_IXUSR)
    shutil.rmtree(tree, ignore_errors=True)


def _walk(tree: Path) -> Iterator[Path]:
    yield tree
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in (*dirnames, *filenames):
            yield Path(dirpath) / name

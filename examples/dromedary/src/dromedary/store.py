"""The vote store: one JSON file per table in a data directory.

``<data dir>/<table>.json`` holds ``{"counts": {colour: n}, "throttle": {ip: expiry}}``. Every
write replaces the file atomically (a temporary file, fsync, ``os.replace``), so a reader sees
the old or the new document, never half of one; read-modify-write cycles hold an exclusive lock
on ``.<table>.lock`` so that concurrent containers never lose an increment.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_TABLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class StoreError(Exception):
    """The store is misconfigured or its file is unreadable."""


def _empty() -> dict[str, Any]:
    return {"counts": {}, "throttle": {}}


class CountStore:
    def __init__(self, data_dir: Path, table: str) -> None:
        if not _TABLE.fullmatch(table):
            raise StoreError(f"table name {table!r} must match {_TABLE.pattern}")
        self.data_dir = data_dir
        self.table = table
        self.path = data_dir / f"{table}.json"

    def read(self) -> dict[str, Any]:
        """The table's document (empty when it was never written)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return _empty()
        except OSError as error:
            raise StoreError(f"cannot read {self.path}: {error.strerror}") from None
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise StoreError(f"{self.path} is not JSON: {error}") from None
        if not isinstance(document, dict):
            raise StoreError(f"{self.path} must hold a JSON object")
        return {**_empty(), **document}

    @contextlib.contextmanager
    def update(self) -> Iterator[dict[str, Any]]:
        """Yield the document under an exclusive lock; write it back when the block ends
        without an exception."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            lock = (self.data_dir / f".{self.table}.lock").open("a")
        except OSError as error:
            raise StoreError(f"cannot use data directory {self.data_dir}: {error}") from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            document = self.read()
            yield document
            self._write(document)

    def _write(self, document: dict[str, Any]) -> None:
        fd, name = tempfile.mkstemp(dir=self.data_dir, prefix=f".{self.table}.", suffix=".tmp")
        temporary = Path(name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(document, file, sort_keys=True)
                file.flush()
                os.fsync(file.fileno())
            temporary.replace(self.path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

"""Deterministic zip archives, and their safe extraction: the public zip API in one place.

Callers import from here; the code lives in three modules, one concept each:

- ``caravan.artifacts.globs`` — CodeBuild-style globs selecting files (``compile_glob``);
- ``caravan.artifacts.zipwrite`` — byte-identical zips of a tree or of in-memory contents
  (``write_zip``, ``zip_bytes``, ``zip_files``, ``select_files``);
- ``caravan.artifacts.zipextract`` — extraction that refuses hostile archives (``extract_zip``,
  ``ExtractLimits``, ``DEFAULT_LIMITS``).
"""

from __future__ import annotations

from caravan.artifacts.globs import compile_glob
from caravan.artifacts.zipextract import DEFAULT_LIMITS, ExtractLimits, extract_zip
from caravan.artifacts.zipwrite import select_files, write_zip, zip_bytes, zip_files

__all__ = [
    "DEFAULT_LIMITS",
    "ExtractLimits",
    "compile_glob",
    "extract_zip",
    "select_files",
    "write_zip",
    "zip_bytes",
    "zip_files",
]

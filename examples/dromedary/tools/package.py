"""Package dromedary into the three trees the pipeline ships: ``python3 tools/package.py [dist]``.

* ``dist/function`` - the function's code: the ``dromedary`` package, the installed
  dependencies from ``deps/`` (when the Dependencies action made any) and ``dromedary/VERSION``
  (``COMMIT_ID`` when it is a commit id, else the build time as ``YYYYMMDD-HHMMSS``);
* ``dist/site`` - the static site, unchanged;
* ``dist/api`` - ``openapi.yaml``.

Only sources are copied: no ``__pycache__``, nothing of the build machine.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMIT = re.compile(r"[0-9a-f]{40}")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


def version() -> str:
    commit = os.environ.get("COMMIT_ID", "")
    if COMMIT.fullmatch(commit):
        return commit
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def package(dist: Path) -> None:
    if dist.exists():
        shutil.rmtree(dist)
    function = dist / "function"
    shutil.copytree(ROOT / "src" / "dromedary", function / "dromedary", ignore=SKIP)
    deps = ROOT / "deps"
    if deps.is_dir():
        shutil.copytree(deps, function, ignore=SKIP, dirs_exist_ok=True)
    (function / "dromedary" / "VERSION").write_text(version() + "\n", encoding="utf-8")
    shutil.copytree(ROOT / "site", dist / "site", ignore=SKIP)
    (dist / "api").mkdir()
    shutil.copy2(ROOT / "openapi.yaml", dist / "api" / "openapi.yaml")


def main(argv: list[str]) -> int:
    dist = Path(argv[1]) if len(argv) > 1 else ROOT / "dist"
    package(dist)
    for tree in ("function", "site", "api"):
        files = sorted(p.relative_to(dist / tree) for p in (dist / tree).rglob("*") if p.is_file())
        print(f"{tree}: {', '.join(map(str, files))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""dromedary's lint, standard library only: ``python3 tools/check.py``; exit 1 on any finding.

* every Python file compiles, and text files have no tabs, trailing spaces or lines over 100
  characters;
* the function's modules do nothing when imported: their top level holds only imports,
  definitions, constants and the docstring (Lambda imports them once per container);
* the site loads nothing from another origin (no CDN, no external library).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINE = 100
TEXT_SUFFIXES = {".py", ".js", ".css", ".html", ".yaml", ".yml", ".md", ".txt"}
SKIP_DIRS = {"__pycache__", "deps", "dist", ".git"}
SVG_NAMESPACE = "http://www.w3.org/2000/svg"  # an identifier, never fetched
TOP_LEVEL_OK = (
    ast.Import,
    ast.ImportFrom,
    ast.FunctionDef,
    ast.ClassDef,
    ast.Assign,
    ast.AnnAssign,
)


def files() -> Iterator[Path]:
    for path in sorted(ROOT.rglob("*")):
        parts = set(path.relative_to(ROOT).parts)
        if path.is_file() and path.suffix in TEXT_SUFFIXES and not parts & SKIP_DIRS:
            yield path


def text_findings(path: Path, text: str) -> Iterator[str]:
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{path.relative_to(ROOT)}:{number}"
        if "\t" in line:
            yield f"{where}: tab character"
        if line != line.rstrip():
            yield f"{where}: trailing whitespace"
        if len(line) > MAX_LINE and path.suffix in {".py", ".js", ".css", ".html"}:
            yield f"{where}: line longer than {MAX_LINE} characters"


def python_findings(path: Path, text: str) -> Iterator[str]:
    name = path.relative_to(ROOT)
    try:
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as error:
        yield f"{name}:{error.lineno}: {error.msg}"
        return
    if name.parts[:1] != ("src",):
        return
    for node in tree.body:
        docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        if not docstring and not isinstance(node, TOP_LEVEL_OK):
            yield f"{name}:{node.lineno}: code runs at import ({type(node).__name__})"


def site_findings(path: Path, text: str) -> Iterator[str]:
    if path.relative_to(ROOT).parts[:1] != ("site",):
        return
    for marker in ("http://", "https://", 'src="//', 'href="//', "url(//"):
        for number, line in enumerate(text.splitlines(), start=1):
            if marker in line.replace(SVG_NAMESPACE, ""):
                yield f"{path.relative_to(ROOT)}:{number}: loads from another origin ({marker})"


def main() -> int:
    findings: list[str] = []
    for path in files():
        text = path.read_text(encoding="utf-8")
        findings.extend(text_findings(path, text))
        if path.suffix == ".py":
            findings.extend(python_findings(path, text))
        findings.extend(site_findings(path, text))
    for finding in findings:
        print(finding)
    print(f"check: {len(findings)} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())

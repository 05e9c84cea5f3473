"""Unit tests of the function's code (standard library only); they import it from ``src/``."""

import sys
from pathlib import Path

_SOURCE = str(Path(__file__).resolve().parents[2] / "src")
if _SOURCE not in sys.path:
    sys.path.insert(0, _SOURCE)

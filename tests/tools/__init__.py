"""Tests of tools/: its benchmark package is imported as `benchmarks`, as tools/benchmark.py and
tools/tune.py import it (their folder first on the path)."""

import sys

from ..conftest import REPO

if str(REPO / "tools") not in sys.path:
    sys.path.insert(0, str(REPO / "tools"))

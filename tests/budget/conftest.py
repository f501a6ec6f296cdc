"""The process tests here drive the benchmarks' harness (``benchmarks/_shared_budget``), whose
modules import each other as top-level modules: tests/benchmarks/conftest.py puts their
directory on the path, for these tests too."""

from __future__ import annotations

import tests.benchmarks.conftest  # noqa: F401

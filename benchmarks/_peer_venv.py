"""The Python >= 3.13 venv that kalshi-python-async runs in (its releases require 3.13).

``ensure_venv()`` finds an interpreter (``$KALSHI_BENCH_PYTHON``, ``python3.13`` or
``python3.14`` on PATH, pyenv's 3.13+ versions), makes ``benchmarks/.venv-py313/`` (git-ignored)
with it, installs ``kalshi-python-async==3.34.0`` and uvloop (at this interpreter's version) from
PyPI, and reuses the venv while those import at those versions. Where any of it fails the
answer says why, for the table. Building it takes about 10 s, once.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIN_PYTHON = (3, 13)
KPA_VERSION = "3.34.0"
VENV_DIR = Path(__file__).resolve().parent / ".venv-py313"
NEEDS = f"needs Python >= {MIN_PYTHON[0]}.{MIN_PYTHON[1]}"
_PROBE_S = 30.0
_INSTALL_S = 600.0
# Prints the interpreter's version and the installed versions of what the contender needs.
_PROBE = (
    "import importlib.metadata as m, json, platform, sys\n"
    "def v(d):\n"
    "    try:\n"
    "        return m.version(d)\n"
    "    except m.PackageNotFoundError:\n"
    "        return None\n"
    "print(json.dumps({'python': list(sys.version_info[:2]),\n"
    "    'version': platform.python_version(),\n"
    "    'kalshi-python-async': v('kalshi-python-async'), 'uvloop': v('uvloop')}))\n"
)


@dataclass(frozen=True, slots=True)
class PeerPython:
    """The venv's interpreter and its version, or None and the reason ("skipped: ...")."""

    python: str | None
    reason: str = ""
    version: str | None = None


def _probe(python: str) -> dict[str, Any] | None:
    try:
        done = subprocess.run(
            [python, "-c", _PROBE], capture_output=True, text=True, timeout=_PROBE_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    with contextlib.suppress(ValueError):
        found: dict[str, Any] = json.loads(done.stdout)
        return found
    return None


def _new_enough(python: str) -> bool:
    found = _probe(python)
    return found is not None and tuple(found["python"]) >= MIN_PYTHON


def _pyenv_pythons() -> list[str]:
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return []
    try:
        root = subprocess.run(
            [pyenv, "root"], capture_output=True, text=True, timeout=_PROBE_S, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return []

    def numeric(path: Path) -> tuple[int, ...]:
        return tuple(int(p) for p in path.name.split(".") if p.isdigit())

    versions = sorted(Path(root, "versions").glob("3.*"), key=numeric, reverse=True)
    return [str(v / "bin" / "python") for v in versions if numeric(v)[:2] >= MIN_PYTHON]


def find_python() -> str | None:
    """The first Python >= 3.13 that runs: $KALSHI_BENCH_PYTHON, PATH, then pyenv."""
    candidates = [os.environ.get("KALSHI_BENCH_PYTHON")]
    candidates += [shutil.which(name) for name in ("python3.13", "python3.14")]
    candidates += _pyenv_pythons()
    return next((c for c in candidates if c and _new_enough(c)), None)


def _venv_python() -> Path:
    return VENV_DIR / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _requirements(found: dict[str, Any]) -> list[str]:
    """What the venv still lacks: the SDK at our pinned version, uvloop at ours (if we have it)."""
    wanted = {"kalshi-python-async": KPA_VERSION}
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        wanted["uvloop"] = importlib.metadata.version("uvloop")
    return [f"{name}=={v}" for name, v in wanted.items() if found.get(name) != v]


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip() and "WARNING" not in line]
    return lines[-1].strip() if lines else "no output"


def ensure_venv() -> PeerPython:
    """The venv's interpreter with kalshi-python-async installed, building what is missing."""
    venv_python = str(_venv_python())
    found = _probe(venv_python) if Path(venv_python).exists() else None
    if found is None or tuple(found["python"]) < MIN_PYTHON:
        base = find_python()
        if base is None:
            return PeerPython(None, f"skipped: {NEEDS} (none found; KALSHI_BENCH_PYTHON names one)")
        print(f"  building {VENV_DIR} with {base} (once)", file=sys.stderr, flush=True)
        try:
            made = subprocess.run(
                [base, "-m", "venv", "--clear", str(VENV_DIR)],
                capture_output=True,
                text=True,
                timeout=_INSTALL_S,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return PeerPython(None, f"skipped: {NEEDS}; could not make its venv: {exc}")
        if made.returncode != 0 or (found := _probe(venv_python)) is None:
            why = _last_line(made.stderr)
            return PeerPython(None, f"skipped: {NEEDS}; could not make its venv: {why}")
    missing = _requirements(found)
    if missing:
        print(f"  installing {' '.join(missing)} into {VENV_DIR}", file=sys.stderr, flush=True)
        pip = [venv_python, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        try:
            done = subprocess.run(
                [*pip, *missing], capture_output=True, text=True, timeout=_INSTALL_S, check=False
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return PeerPython(None, f"skipped: pip install {' '.join(missing)}: {exc}")
        if done.returncode != 0:
            why = _last_line(done.stderr)
            return PeerPython(None, f"skipped: pip install {' '.join(missing)} failed: {why}")
    return PeerPython(venv_python, version=found["version"])

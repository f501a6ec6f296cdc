"""The machine a benchmark ran on: cores, CPU, load, OS, Python, library versions, the commit.

    machine = describe_machine("uvloop")
    print(format_machine(machine))

Nothing here imports kalshi_router (the peers' child asks it for versions too).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

LIBRARIES: tuple[str, ...] = (
    "kalshi-router",
    "aiohttp",
    "aiolimiter",
    "msgspec",
    "cryptography",
    "uvloop",
)
# What the benchmarks compare the router with: optional (the ``bench`` extra), recorded if there.
PEER_LIBRARIES: tuple[str, ...] = (
    "orjson",
    "pydantic",
    "matplotlib",
    "pykalshi",
    "kalshi-python-async",
)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str:
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=10
    )
    return done.stdout.strip()


def _code_version() -> str | None:
    """The git commit of the library, with "+dirty" if kalshi_router/ has local changes."""
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        changes = _git("status", "--porcelain", "--", "kalshi_router")
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if changes else "")


def describe_machine(loop: str | None = None) -> dict[str, Any]:
    """Cores, CPU, OS, Python and library versions (and the event loop, if given)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    description: dict[str, Any] = {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "libraries": {name: installed_version(name) for name in LIBRARIES},
        "peer_libraries": {name: installed_version(name) for name in PEER_LIBRARIES},
        "code": _code_version(),
        # Other work on the machine shows up as jitter and CPU: say how busy it was.
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if loop is not None:
        description["loop"] = loop
    return description


def format_machine(description: Mapping[str, Any]) -> str:
    libraries = description.get("libraries", {})
    versions = ", ".join(f"{name} {v or '-'}" for name, v in libraries.items())
    peers = ", ".join(
        f"{name} {v or '-'}" for name, v in description.get("peer_libraries", {}).items()
    )
    cores = f"{description['logical_cores']} logical cores"
    if description.get("usable_cores") not in (None, description["logical_cores"]):
        cores += f" ({description['usable_cores']} usable)"
    loop = f", loop {description['loop']}" if "loop" in description else ""
    if load := description.get("load_average"):
        cores += f", load {' '.join(f'{x:.2f}' for x in load)}"
    code = f", code {description['code']}" if description.get("code") else ""
    return (
        f"machine: {description['cpu']}, {cores}, {description['platform']}\n"
        f"python:  {description['python']}{loop}\n"
        f"libs:    {versions}{code}" + (f"\npeers:   {peers}" if peers else "")
    )

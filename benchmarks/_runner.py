"""Running benchmark code: a coroutine on a fresh uvloop or asyncio loop, a contender in a child
interpreter of its own, and (for run.py) a whole script in another.

    result = run_on(main(), "uvloop")
    answer = run_child([script, "--loop", "uvloop"], "router", spec, timeout_s=600)
    job = Job.start("bench_wire.py", ["--number", "300"], workdir / "wire.json")
    data = job.result()

Nothing here imports kalshi_router: the peers' child (``_peers``) runs under a Python 3.13 venv
without it, and uses this module too.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shlex
import subprocess
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
HERE = Path(__file__).resolve().parent
LOOPS: tuple[str, ...] = ("uvloop", "asyncio")
CHILD_TIMEOUT_S = 600.0
"""How long a contender's child may take (the slowest configurations of a long run)."""


def uvloop_available() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def loop_in_use(loop: str) -> str:
    """The loop ``run_on`` runs for ``loop``: uvloop where it can be imported, else asyncio."""
    return "uvloop" if loop == "uvloop" and uvloop_available() else "asyncio"


def default_loop() -> str:
    return loop_in_use("uvloop")


def run_on(main: Coroutine[Any, Any, T], loop: str) -> T:
    """Run ``main`` on a fresh event loop of the kind ``loop_in_use(loop)`` names."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if loop_in_use(loop) == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def run_child(
    script_args: Sequence[str],
    contender: str,
    spec: Mapping[str, Any],
    timeout_s: float,
    python: str = sys.executable,
) -> Any:
    """Run ``python SCRIPT [OPTIONS] --contender NAME`` in a fresh interpreter, ``spec`` as JSON
    on its stdin, and return the JSON it prints on stdout: each contender gets a process (and
    CPU clock) of its own. The spec carries the private key, so it goes by pipe, never argv.
    ``python`` is the interpreter (another venv's, for a peer that needs another Python)."""
    done = subprocess.run(
        [python, *script_args, "--contender", contender],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"contender {contender} exited {done.returncode}:\n{done.stderr[-4000:]}"
        )
    return json.loads(done.stdout)


def read_child_spec() -> dict[str, Any]:
    """The spec ``run_child`` wrote to this process's stdin."""
    spec: dict[str, Any] = json.load(sys.stdin)
    return spec


@dataclass(frozen=True, slots=True)
class Job:
    """One benchmark script running in its own interpreter; its JSON goes to ``out``, its own
    table to ``out.log`` (run.py prints its own), its progress to our stderr."""

    command: list[str]
    out: Path
    proc: subprocess.Popen[bytes]

    @classmethod
    def start(cls, script: str, options: Sequence[str], out: Path) -> Job:
        argv = [sys.executable, str(HERE / script), *options, "--json", str(out)]
        with out.with_suffix(".log").open("wb") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log)
        return cls(["python", f"benchmarks/{script}", *options], out, proc)

    def result(self) -> dict[str, Any]:
        code = self.proc.wait()
        if code != 0 or not self.out.exists():
            tail = self.out.with_suffix(".log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{shlex.join(self.command)} exited {code}:\n{tail}")
        data: dict[str, Any] = json.loads(self.out.read_text())
        data.pop("machine", None)  # the same machine as run.py's own record
        return data

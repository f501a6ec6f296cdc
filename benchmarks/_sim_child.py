"""A simulator child process driven by one JSON line each way: the plumbing that ``_fill_sim``
and ``_kill_sim`` share.

    class MySim(SimChild):                         # the parent (the measured process)
        def __init__(self, key: BenchKey) -> None:
            super().__init__(SCRIPT, "my simulator", {"key_id": key.key_id, ...})

    async with MySim(key) as sim:
        answer = await sim.ask({"cmd": "books"}, timeout_s=10)

The child reads its hello (the first line) and each command from ``stdin_lines()`` and answers
each with ``say``; its first answer carries ``url``. An answer with ``error`` raises in the
parent. The child's stderr goes to a temporary log, shown when it exits early.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any, Self

LINE_LIMIT = 1 << 26
"""A line may carry every stamp of a run (about 60 bytes a trade)."""


# -- the child ---------------------------------------------------------------------------------


def say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def stdin_lines() -> asyncio.StreamReader:
    """This process's stdin, read on the loop."""
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


# -- the parent --------------------------------------------------------------------------------


class SimChild:
    """``python script`` in a subprocess; ``async with`` runs it (see the module docstring)."""

    def __init__(
        self, script: str, name: str, hello: dict[str, Any], start_timeout_s: float = 30.0
    ) -> None:
        self._script = script
        self._name = name
        self._hello = hello
        self._timeout = start_timeout_s
        self._proc: asyncio.subprocess.Process | None = None
        self._log: Path | None = None
        self.url = ""

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("the simulator is not running")
        return self._proc.pid

    async def ask(self, message: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send one command; its answer."""
        proc = self._proc
        assert proc is not None
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(json.dumps(message).encode() + b"\n")
        await proc.stdin.drain()
        line = await asyncio.wait_for(proc.stdout.readline(), timeout_s)
        if not line:
            tail = self._log.read_text(errors="replace")[-4000:] if self._log else ""
            raise RuntimeError(f"the {self._name} exited:\n{tail}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the {self._name}: {answer['error']}")
        return answer

    async def __aenter__(self) -> Self:
        fd, name = tempfile.mkstemp(prefix="kalshi-bench-simchild-", suffix=".log")
        os.close(fd)
        self._log = Path(name)
        with self._log.open("wb") as log:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                self._script,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                limit=LINE_LIMIT,
            )
        try:
            self.url = (await self.ask(self._hello, self._timeout))["url"]
        except BaseException:
            await self._stop()
            raise
        return self

    async def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin is not None and not proc.stdin.is_closing():
                with contextlib.suppress(ConnectionError):
                    proc.stdin.write(b'{"cmd": "quit"}\n')
                    proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 5.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._log is not None:
            self._log.unlink(missing_ok=True)
            self._log = None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

"""The simulator in its own process, for the benchmarks to measure the router against.

    key = BenchKey.generate("rsa")
    async with SimProcess("premier", [key]) as sim:
        router = OrderRouter.connect(Config(), key.signer(), base_url=sim.url)
        ...
        spent = (await sim.stats())["tokens_spent"]["write"]

The simulator runs in a subprocess (``python -m kalshi_router sim``) so that the process under
measurement spends its CPU on the router alone, and so that the two event loops cannot delay
each other. Importing this module has no side effects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
from _keys import BenchKey

from kalshi_router.sim.buckets import TIERS, Tier

TIER_NAMES: tuple[str, ...] = ("basic", "advanced", "premier", "paragon", "prime")
SimOption = str | int | float | bool
# "Limits off": a write bucket no benchmark can drain (10^9 tokens is 10^8 orders) refilled
# faster than any loopback run can spend, so neither the sim nor the router ever waits on it.
UNLIMITED_WRITES: dict[str, SimOption] = {
    "write_refill": 100_000_000,
    "write_capacity": 1_000_000_000,
}

# serve_forever prints this line once the socket is bound; with --port 0 it names the real port.
_LISTENING = re.compile(r"listening on (http://(\S+?):(\d+)(/trade-api/v2))")
_POLL_S = 0.02


def tier(name: str) -> Tier:
    """The simulator's figures for a tier (refill and capacity of both buckets)."""
    try:
        return TIERS[name]
    except KeyError:
        raise ValueError(f"unknown tier {name!r}; known: {', '.join(TIER_NAMES)}") from None


class SimStartError(RuntimeError):
    """The simulator subprocess did not come up; the message holds the end of its log."""


def _toml_value(value: SimOption) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    # A JSON string is a valid TOML basic string (same escapes for what json.dumps emits).
    return json.dumps(value)


def _cpu_seconds_of(pid: int) -> float | None:
    """User + system CPU of a live process from /proc (Linux); None where unavailable."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


class SimProcess:
    """``kalshi-router sim`` in a subprocess on a loopback port; ``async with`` runs it.

    ``keys`` are registered through the config file's ``[sim] api_keys`` table (public key
    files in a private temporary directory). ``sim_options`` are further scalar ``[sim]``
    keys (``seed``, ``write_refill``, ``rejected_requests_spend_tokens``, ...). Faults can be
    set after start with ``PUT /_sim/faults``.
    """

    def __init__(
        self,
        tier: str,
        keys: Sequence[BenchKey],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        sim_options: Mapping[str, SimOption] | None = None,
        start_timeout_s: float = 30.0,
    ) -> None:
        if tier not in TIER_NAMES:
            raise ValueError(f"unknown tier {tier!r}; known: {', '.join(TIER_NAMES)}")
        self.tier = tier
        self._keys = list(keys)
        self._host = host
        self._port = port
        self._options: dict[str, SimOption] = {"seed": seed, **(sim_options or {})}
        self._start_timeout_s = start_timeout_s
        self._dir: Path | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._session: aiohttp.ClientSession | None = None
        self._url: str | None = None
        self._origin: str | None = None

    # -- where it is -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The API root for the router: ``http://127.0.0.1:PORT/trade-api/v2``."""
        if self._url is None:
            raise RuntimeError("the simulator is not running")
        return self._url

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``, where the ``/_sim/`` control routes live."""
        if self._origin is None:
            raise RuntimeError("the simulator is not running")
        return self._origin

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("the simulator is not running")
        return self._proc.pid

    @property
    def log_path(self) -> Path | None:
        return None if self._dir is None else self._dir / "sim.log"

    # -- life cycle --------------------------------------------------------------------------

    def _write_config(self, directory: Path) -> Path:
        lines = ["[sim]", f"tier = {_toml_value(self.tier)}"]
        lines += [f"{name} = {_toml_value(value)}" for name, value in self._options.items()]
        entries = []
        for i, key in enumerate(self._keys):
            path = directory / f"key{i}.pub"
            path.write_bytes(key.public_pem)
            key_id, key_path = _toml_value(key.key_id), _toml_value(str(path))
            entries.append(f"{{key_id = {key_id}, public_key_path = {key_path}}}")
        lines.append(f"api_keys = [{', '.join(entries)}]")
        config = directory / "sim.toml"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return config

    def _log_tail(self, limit: int = 4000) -> str:
        path = self.log_path
        if path is None or not path.exists():
            return ""
        return path.read_text(encoding="utf-8", errors="replace")[-limit:]

    async def start(self) -> None:
        """Spawn the simulator and return once it answers on its port."""
        if self._proc is not None:
            return
        self._dir = Path(tempfile.mkdtemp(prefix="kalshi-bench-sim-"))
        config = self._write_config(self._dir)
        argv = [sys.executable, "-m", "kalshi_router", "sim", "--host", self._host]
        argv += ["--port", str(self._port), "--tier", self.tier, "--config", str(config)]
        # Output goes to a file, not a pipe: nobody reads a pipe while the benchmark runs, and
        # a full pipe would block the simulator mid-run.
        with (self._dir / "sim.log").open("wb") as log:
            self._proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        try:
            await self._wait_listening()
        except BaseException:
            await self.stop()
            raise

    async def _wait_listening(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self._start_timeout_s
        while self._url is None:
            if self._proc.returncode is not None:
                raise SimStartError(
                    f"simulator exited with {self._proc.returncode}:\n{self._log_tail()}"
                )
            if time.monotonic() > deadline:
                raise SimStartError(
                    f"simulator not listening after {self._start_timeout_s} s:\n{self._log_tail()}"
                )
            if match := _LISTENING.search(self._log_tail()):
                self._url = match.group(1)
                self._origin = self._url.removesuffix(match.group(4))
                break
            await asyncio.sleep(_POLL_S)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        # The line is printed after the bind, but ask once anyway: it proves the app answers.
        async with self._session.get(self.url + "/exchange/status") as response:
            if response.status != 200:
                raise SimStartError(f"GET /exchange/status answered {response.status}")

    async def stats(self) -> dict[str, Any]:
        """``GET /_sim/stats``: requests by route and status, ``rate_limited``, tokens spent."""
        if self._session is None:
            raise RuntimeError("the simulator is not running")
        async with self._session.get(self.origin + "/_sim/stats") as response:
            response.raise_for_status()
            data: dict[str, Any] = await response.json()
            return data

    async def set_faults(self, faults: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /_sim/faults`` with a FaultConfig (omitted fields: defaults); the config back."""
        if self._session is None:
            raise RuntimeError("the simulator is not running")
        async with self._session.put(self.origin + "/_sim/faults", json=dict(faults)) as response:
            if response.status != 200:
                raise RuntimeError(f"PUT /_sim/faults: {response.status} {await response.text()}")
            data: dict[str, Any] = await response.json()
            return data

    def stats_sync(self) -> dict[str, Any]:
        """``stats()`` for callers without a running loop (blocks)."""
        with urllib.request.urlopen(self.origin + "/_sim/stats", timeout=10) as response:
            data: dict[str, Any] = json.load(response)
            return data

    def cpu_seconds(self) -> float | None:
        """CPU the simulator process has used so far (Linux only; else None)."""
        return None if self._proc is None else _cpu_seconds_of(self._proc.pid)

    async def stop(self, timeout_s: float = 5.0) -> int | None:
        """Interrupt the simulator (as Ctrl-C would), kill it if it lingers; its exit code."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        code: int | None = None
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(proc.wait(), timeout_s)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
            code = proc.returncode
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        self._url = self._origin = None
        return code

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

"""Shared helpers for the benchmark scripts: the simulator in its own process, and the machine.

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

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import aiohttp

from kalshi_router.intent import OrderIntent
from kalshi_router.outcome import Accepted, Rejected
from kalshi_router.sim.buckets import TIERS, Tier
from kalshi_router.wire.signer import Signer, generate_key, load_private_key

__all__ = [
    "TIER_NAMES",
    "UNLIMITED_WRITES",
    "BenchKey",
    "SignedPoster",
    "SimProcess",
    "SimStartError",
    "answer_labels",
    "child_key",
    "comma_list",
    "describe_machine",
    "format_machine",
    "format_ratio",
    "key_spec",
    "outcome_label",
    "percentile",
    "ratio",
    "read_child_spec",
    "run_child",
    "run_on",
    "stdlib_order",
    "table",
]

TIER_NAMES: tuple[str, ...] = ("basic", "advanced", "premier", "paragon", "prime")
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
T = TypeVar("T")
KeyKind = Literal["rsa", "ed25519"]
SimOption = str | int | float | bool

# serve_forever prints this line once the socket is bound; with --port 0 it names the real port.
_LISTENING = re.compile(r"listening on (http://(\S+?):(\d+)(/trade-api/v2))")
_POLL_S = 0.02


def tier(name: str) -> Tier:
    """The simulator's figures for a tier (refill and capacity of both buckets)."""
    try:
        return TIERS[name]
    except KeyError:
        raise ValueError(f"unknown tier {name!r}; known: {', '.join(TIER_NAMES)}") from None


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted samples (0.0 when there are none)."""
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * q // 1))  # ceil(n * q), at least the first sample
    return ordered[min(len(ordered), int(rank)) - 1]


@dataclass(frozen=True, slots=True)
class BenchKey:
    """An API key pair made for one run: the sim is told the public half, the router signs."""

    key_id: str
    kind: KeyKind
    private_pem: bytes
    public_pem: bytes

    @classmethod
    def generate(cls, kind: KeyKind = "rsa", key_id: str = "bench-key") -> BenchKey:
        private_pem, public_pem = generate_key(kind)
        return cls(key_id, kind, private_pem, public_pem)

    def signer(self) -> Signer:
        return Signer(self.key_id, load_private_key(self.private_pem))


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


# -- the machine --------------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _code_version() -> str | None:
    """The git commit of the library, with "+dirty" if kalshi_router/ has local changes."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "status", "--porcelain", "--", "kalshi_router"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
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
        "libraries": {name: _version(name) for name in LIBRARIES},
        "peer_libraries": {name: _version(name) for name in PEER_LIBRARIES},
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


# -- contenders in their own processes ------------------------------------------------------------

# "Limits off": a write bucket no benchmark can drain (10^9 tokens is 10^8 orders) refilled
# faster than any loopback run can spend, so neither the sim nor the router ever waits on it.
UNLIMITED_WRITES: dict[str, SimOption] = {
    "write_refill": 100_000_000,
    "write_capacity": 1_000_000_000,
}


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


def child_key(spec: Mapping[str, Any]) -> BenchKey:
    """The parent's key, as ``key_spec`` passed it (one key per run, registered in the sim)."""
    return BenchKey(
        spec["key_id"], spec["kind"], spec["private_pem"].encode(), spec["public_pem"].encode()
    )


def key_spec(key: BenchKey) -> dict[str, str]:
    return {
        "key_id": key.key_id,
        "kind": key.kind,
        "private_pem": key.private_pem.decode(),
        "public_pem": key.public_pem.decode(),
    }


def outcome_label(outcome: object) -> str:
    """Accepted as "accepted", Rejected as "rejected:CODE", else the outcome's type name."""
    if isinstance(outcome, Accepted):
        return "accepted"
    if isinstance(outcome, Rejected):
        return f"rejected:{outcome.code}"
    return type(outcome).__name__.lower()


# -- the naive client: what a bot writes without a router ----------------------------------------


def stdlib_order(intent: OrderIntent) -> dict[str, str]:
    """A V2 create order as a plain dict for stdlib ``json`` (the fields an OrderIntent sets)."""
    return {
        "ticker": intent.ticker,
        "side": intent.side,
        "count": str(intent.count),
        "price": str(intent.price),
        "time_in_force": intent.time_in_force,
        "self_trade_prevention_type": intent.self_trade_prevention,
        "client_order_id": intent.client_order_id,
    }


class SignedPoster:
    """One aiohttp session signing each POST with the bench key: the naive contenders and the
    latency floor. No retries, no queue: a request, its answer, stdlib ``json`` both ways."""

    def __init__(self, base_url: str, signer: Signer, *, connections: int = 1) -> None:
        self._base_url = base_url.rstrip("/")
        self._root = urllib.parse.urlsplit(self._base_url).path
        self._signer = signer
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        connector = aiohttp.TCPConnector(limit=self._connections)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=10)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, path: str, payload: Any) -> tuple[int, Any]:
        """POST ``payload`` as JSON to ``path`` (below the API root); status and decoded body."""
        if self._session is None:
            raise RuntimeError("use 'async with SignedPoster(...)'")
        headers = self._signer.headers("POST", self._root + path)
        headers["Content-Type"] = "application/json"
        body = json.dumps(payload).encode()
        async with self._session.post(self._base_url + path, data=body, headers=headers) as resp:
            raw = await resp.read()
        return resp.status, (json.loads(raw) if raw else None)


def answer_labels(status: int, answer: Any, batched: bool) -> list[str]:
    """What a naive contender counts for one answer: per item for a batch, else one label."""
    if status != 201:
        code = answer.get("error", {}).get("code") if isinstance(answer, dict) else None
        return [f"http:{status}" + (f":{code}" if code else "")]
    items = answer["orders"] if batched else [answer]
    return [
        f"rejected:{item['error'].get('code')}" if item.get("error") else "accepted"
        for item in items
    ]


# -- options --------------------------------------------------------------------------------------


def comma_list(allowed: Sequence[str], none_ok: bool = False) -> Callable[[str], list[str]]:
    """An argparse type: a comma list of ``allowed`` names, in the order given, without
    repeats; "none" is the empty list where ``none_ok``."""

    def parse(text: str) -> list[str]:
        if none_ok and text.strip() == "none":
            return []
        values = list(dict.fromkeys(x.strip() for x in text.split(",") if x.strip()))
        if not values or any(v not in allowed for v in values):
            choices = ", ".join(allowed) + (" or none" if none_ok else "")
            raise argparse.ArgumentTypeError(f"choose from {choices}: {text!r}")
        return values

    return parse


# -- output ---------------------------------------------------------------------------------------


def ratio(value: float | None, reference: float | None) -> float | None:
    """``value`` over the reference figure; None when either is missing or the reference is 0."""
    if value is None or not reference:
        return None
    return value / reference


def format_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]

    def line(cells: Sequence[str]) -> str:
        first = f"{cells[0]:<{widths[0]}}"
        rest = "".join(f"  {v:>{w}}" for v, w in zip(cells[1:], widths[1:], strict=True))
        return first + rest

    return "\n".join([title, line(columns), *(line(r) for r in rows)])


def run_on(main: Coroutine[Any, Any, T], loop: str) -> T:
    """Run ``main`` on a fresh "uvloop" or "asyncio" event loop."""
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    return asyncio.run(main)

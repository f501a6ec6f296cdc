"""bench_soak's service: ``serve()`` exactly as ``kalshi-router serve`` runs it, in a child
process, and what the parent reads of it (RSS, fds, sockets, asyncio tasks).

    service = Service(directory, sim.url, key, keep_outcomes=10_000)
    await service.start()            # python bench_soak.py --serve CONFIG PROBE
    sample = await service.sample("idle")
    code = await service.stop()

The child answers SIGUSR2 by writing its task count to a file: a signal, not a polling task,
so that the probe adds no task of its own (SIGUSR1 is serve's kill switch).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _keys import BenchKey
from _runner import HERE

from kalshi_router.config import load_config
from kalshi_router.service.logs import setup_logging
from kalshi_router.service.serve import serve

TOKEN = "soak-token-not-a-secret"
ANNOUNCE = "kalshi-router serving on "
SCRIPT = str(HERE / "bench_soak.py")  # its --serve CONFIG PROBE runs serve_with_probe


async def serve_with_probe(config_path: str, probe_path: Path) -> int:
    """``serve()`` as the CLI runs it; SIGUSR2 writes the loop's task count to ``probe_path``
    (a signal, not a polling task, so that the probe adds no task of its own)."""
    loop = asyncio.get_running_loop()

    def probe() -> None:
        tmp = probe_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"tasks": len(asyncio.all_tasks(loop)), "at": time.time()}))
        tmp.replace(probe_path)

    loop.add_signal_handler(signal.SIGUSR2, probe)
    try:
        config = load_config(config_path)
        setup_logging(config.service.log_level)
        return await serve(config)
    finally:
        loop.remove_signal_handler(signal.SIGUSR2)


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def _remote_ports(pid: int) -> dict[str, int]:
    """``socket:[inode]`` -> remote port, for every TCP socket in ``pid``'s network namespace."""
    ports = {}
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            ports[f"socket:[{fields[9]}]"] = int(fields[2].rpartition(":")[2], 16)
    return ports


def _fds(pid: int, exchange_port: int) -> tuple[int, int, int, list[str]]:
    """Open file descriptors of ``pid``, how many are sockets, how many of those are connected
    to the exchange (``exchange_port``), and what the non-sockets are."""
    fds = sockets = exchange = 0
    files = []
    remote = _remote_ports(pid)
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(entry)
        except OSError:  # closed between listing and reading
            continue
        fds += 1
        if target.startswith("socket:"):
            sockets += 1
            exchange += remote.get(target) == exchange_port
        else:
            files.append(target)
    return fds, sockets, exchange, sorted(files)


class Service:
    """The service child: started, probed, stopped."""

    def __init__(self, directory: Path, sim_url: str, key: BenchKey, keep_outcomes: int) -> None:
        self._dir = directory
        port = urlsplit(sim_url).port
        assert port is not None, sim_url
        self._exchange_port = port
        key_path = directory / "soak-key.pem"
        key_path.write_bytes(key.private_pem)
        key_path.chmod(0o600)
        self._config = directory / "serve.toml"
        self._config.write_text(
            f"""
[exchange]
target = "url"
base_url = "{sim_url}"
[credentials]
key_type = "{key.kind}"
[router]
deadline_s = 60
queue_size = 20000
[service]
port = 0
keep_outcomes = {keep_outcomes}
log_level = "warning"
token_file = "{directory / "token"}"
"""
        )
        self._env = {
            **os.environ,
            # Anything the service keeps under ~ (its journal, by default) goes in the run's
            # own directory, and goes away with it.
            "HOME": str(directory),
            "KALSHI_API_KEY_ID": key.key_id,
            "KALSHI_PRIVATE_KEY_PATH": str(key_path),
            "KALSHI_ROUTER_TOKEN": TOKEN,
            "PYTHONUNBUFFERED": "1",
        }
        self._probe = directory / "probe.json"
        self.log = directory / "serve.log"
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    async def start(self) -> None:
        argv = [sys.executable, SCRIPT, "--serve", str(self._config), str(self._probe)]
        with self.log.open("wb") as log:
            self._proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once, output to a file
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self._env
            )
        for _ in range(1500):
            if self._proc.poll() is not None:
                raise RuntimeError(f"serve exited {self._proc.returncode}: {self.log.read_text()}")
            for line in self.log.read_text().splitlines():
                if line.startswith(ANNOUNCE):
                    self.url = line.removeprefix(ANNOUNCE)
                    return
            await asyncio.sleep(0.02)
        raise RuntimeError(f"serve did not start: {self.log.read_text()}")

    async def tasks(self) -> int:
        before = self._probe.stat().st_mtime_ns if self._probe.exists() else 0
        os.kill(self.pid, signal.SIGUSR2)
        for _ in range(500):
            if self._probe.exists() and self._probe.stat().st_mtime_ns != before:
                count: int = json.loads(self._probe.read_text())["tasks"]
                return count
            await asyncio.sleep(0.01)
        raise RuntimeError("the service did not answer the task probe")

    def rss_kb(self) -> int:
        return _status_kb(self.pid, "VmRSS")

    async def sample(self, label: str) -> dict[str, Any]:
        fds, sockets, exchange, files = _fds(self.pid, self._exchange_port)
        return {
            "at": label,
            "rss_kb": self.rss_kb(),
            "fds": fds,
            "sockets": sockets,
            # The router's pool to the exchange: it opens connections as the load calls for
            # them (up to its limit), so it may grow under load without leaking.
            "exchange_sockets": exchange,
            "tasks": await self.tasks(),
            "files": files,
        }

    async def stop(self) -> int:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGTERM)
        for _ in range(1500):
            if (code := self._proc.poll()) is not None:
                return code
            await asyncio.sleep(0.02)
        self._proc.kill()
        return self._proc.wait()

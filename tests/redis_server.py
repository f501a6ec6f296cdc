"""Real Redis servers for the shared-budget tests.

``redis_url``: the server at ``REDIS_URL`` when that is set, else a ``redis-server`` started on a
free loopback port (``tests.ports``) for the test session. ``redis_server``: a private server
the test may stop, restart or kill (always started here, never the one at ``REDIS_URL``).
Without a ``redis-server`` binary (and no ``REDIS_URL`` for the first), the tests are skipped
saying so, except under CI (``CI=true``), where a missing Redis is a failure: CI must not go
green by not testing the shared budget.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ports import bindable_port


def _unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why}; CI needs Redis (.ci/run makes sure there is one)")
    pytest.skip(why)


class RedisServer:
    """A ``redis-server`` of our own on loopback, keeping nothing on disk."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self._binary = binary
        self._workdir = workdir
        self.port = bindable_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self._process is None, "already running"
        self._process = subprocess.Popen(
            [
                self._binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._workdir),
                "--logfile",
                str(self._workdir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer on port {self.port} within 10 s")

    def stop(self, *, kill: bool = False) -> None:
        """Stop it (SIGTERM, or SIGKILL with ``kill``); its data is gone either way."""
        process, self._process = self._process, None
        if process is None:
            return
        if kill:
            process.kill()
        else:
            process.terminate()
        process.wait(timeout=10)

    def restart(self) -> None:
        """Stop and start again on the same port: a new run id and an empty keyspace."""
        self.stop()
        self.start()


def _binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        _unavailable("redis-server is not installed and REDIS_URL is not set")
    assert binary is not None
    return binary


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := os.environ.get("REDIS_URL"):
        yield url
        return
    server = RedisServer(_binary(), tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(_binary(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()

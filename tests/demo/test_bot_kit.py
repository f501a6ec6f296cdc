"""Your own bot against the simulator in one step: ``kalshi-router sim --new-key DIR`` writes a
key pair the running simulator accepts and the bot's config, and prints the environment to set
(issue 11: the simulator accepted no key until an ``api_keys`` table was written by hand).
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kalshi_router.config import load_config
from kalshi_router.demo.bot_kit import PRIVATE_KEY_FILE, write_bot_kit
from kalshi_router.intent import OrderIntent
from kalshi_router.outcome import Accepted
from kalshi_router.router import OrderRouter
from kalshi_router.wire.signer import Signer

EXPORT = re.compile(r"^  export (KALSHI_[A-Z_]+)=(.+)$")


class Started:
    def __init__(self, lines: list[str], process: asyncio.subprocess.Process) -> None:
        self.lines = lines
        self.process = process

    def environment(self) -> dict[str, str]:
        found = (EXPORT.match(line) for line in self.lines)
        return {m[1]: shlex.split(m[2])[0] for m in found if m}

    def config_path(self) -> Path:
        (line,) = (line for line in self.lines if line.startswith("bot config: "))
        return Path(line.removeprefix("bot config: "))


@pytest.fixture
async def started(tmp_path: Path) -> AsyncIterator[Started]:
    """``kalshi-router sim --port 0 --new-key DIR`` in a subprocess, up to its last line."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kalshi_router",
        "sim",
        "--port",
        "0",
        "--new-key",
        str(tmp_path / "kit"),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        while not lines or not lines[-1].startswith("bot config: "):
            line = await asyncio.wait_for(process.stdout.readline(), 30)
            assert line, f"the simulator stopped: {lines}"
            lines.append(line.decode().rstrip("\n"))
        yield Started(lines, process)
    finally:
        process.terminate()
        await process.wait()


def check_private(key_path: Path, printed: str) -> None:
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    for line in key_path.read_text().splitlines()[1:-1]:
        assert line not in printed


async def test_the_printed_environment_and_config_place_an_order(started: Started) -> None:
    environment = started.environment()
    assert set(environment) == {"KALSHI_API_KEY_ID", "KALSHI_PRIVATE_KEY_PATH"}
    check_private(Path(environment["KALSHI_PRIVATE_KEY_PATH"]), "\n".join(started.lines))

    config = load_config(started.config_path())
    assert config.exchange.target == "url"
    assert config.exchange.base_url in started.lines[0]  # "... listening on <url>"
    signer = Signer.from_env(environ=environment)
    async with OrderRouter.connect(config, signer) as router:
        outcome = await router.place(OrderIntent.bid("KXBOT-26DEC31-T50", "0.40", 2))
    assert isinstance(outcome, Accepted), outcome


def test_the_kit_loads_as_a_config_and_rewrites_a_loose_key_file(tmp_path: Path) -> None:
    old = tmp_path / PRIVATE_KEY_FILE
    old.write_text("from an earlier run")
    old.chmod(0o644)
    kit = write_bot_kit(tmp_path, "http://127.0.0.1:8765/trade-api/v2", "ed25519")
    assert stat.S_IMODE(kit.private_key_path.stat().st_mode) == 0o600
    assert kit.private_key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    config = load_config(kit.config_path)
    assert (config.exchange.base_url, config.exchange.verify_tls) == (
        "http://127.0.0.1:8765/trade-api/v2",
        False,
    )
    assert Signer.from_env(environ=kit.environment()).key_id == kit.key_id
    text = "\n".join(kit.describe())
    assert f"export KALSHI_API_KEY_ID={kit.key_id}" in text
    assert f"bot config: {kit.config_path}" in text

"""``kalshi-router serve`` as a subprocess against ``kalshi-router sim`` as another: the client,
raw HTTP and raw WebSocket; metrics; SIGTERM under load (one outcome per intent, a clean exit,
books that agree); refusals at start; JSON logs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kalshi_router.config import Config, ExchangeConfig, ServiceConfig
from kalshi_router.intent import OrderIntent
from kalshi_router.outcome import Accepted, Closed, Outcome, Unknown
from kalshi_router.service.client import RouterClient, open_router
from kalshi_router.service.protocol import ResultsBody, StreamAck, StreamOutcome, StreamReply
from kalshi_router.stats import RouterStats
from kalshi_router.wire.signer import generate_key

TOKEN = "e2e-token-not-a-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TICKER = "KXE2E-26DEC31-T50"
KEY_ID = "e2e-key"
PRIVATE_PEM, PUBLIC_PEM = generate_key("ed25519")
DRAIN_S = 1.0
# After the drain: the last answers and closing handshakes (serve's own grace is 5 s, but
# with well-behaved clients this takes well under a second).
EXIT_GRACE_S = 2.0
_replies = msgspec.json.Decoder(StreamReply)


def run_cli(
    *args: str, env: Mapping[str, str], timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kalshi_router", *args],
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=timeout,
        check=False,
    )


def base_env(home: Path) -> dict[str, str]:
    """The test's environment without any real credentials or token, and a home of its own
    (a token file must never land in the real ~/.cache)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KALSHI_")}
    return {**env, "HOME": str(home), "PYTHONUNBUFFERED": "1"}


def serve_env(tmp_path: Path, *, token: bool = True) -> dict[str, str]:
    key = tmp_path / "e2e-key.pem"
    key.write_bytes(PRIVATE_PEM)
    key.chmod(0o600)
    env = {
        **base_env(tmp_path),
        "KALSHI_API_KEY_ID": KEY_ID,
        "KALSHI_PRIVATE_KEY_PATH": str(key),
    }
    return env | {"KALSHI_ROUTER_TOKEN": TOKEN} if token else env


class Command:
    """A ``kalshi-router`` command in a subprocess, ready once it prints ``announce`` + URL.

    Output goes to files, not pipes: nobody reads a pipe while the test runs, and a full one
    would block the process (mid-drain, say)."""

    def __init__(self, directory: Path, name: str, argv: list[str], env: dict[str, str]) -> None:
        self._argv = [sys.executable, "-m", "kalshi_router", name, *argv]
        self._env = env
        self._announce = f"kalshi-router {'serving on' if name == 'serve' else 'sim listening on'} "
        self.stdout = directory / f"{name}.out"
        self.stderr = directory / f"{name}.err"
        self.url = ""
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def proc(self) -> asyncio.subprocess.Process:
        assert self._proc is not None
        return self._proc

    async def __aenter__(self) -> Self:
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self._proc = await asyncio.create_subprocess_exec(
                *self._argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=self._env
            )
        for _ in range(1000):
            if self.proc.returncode is not None:
                raise AssertionError(f"{self._argv} exited {self.proc.returncode}: {self.log()}")
            for line in self.stdout.read_text().splitlines():
                if line.startswith(self._announce):
                    self.url = line.removeprefix(self._announce)
                    return self
            await asyncio.sleep(0.02)
        raise AssertionError(f"{self._argv} did not announce itself: {self.log()}")

    def log(self) -> str:
        return self.stderr.read_text()

    async def stop(self, signum: signal.Signals = signal.SIGTERM) -> tuple[int, float]:
        """Signal the process; its exit code and how long it took to exit."""
        started = time.monotonic()
        self.proc.send_signal(signum)
        async with asyncio.timeout(DRAIN_S + 10):
            code = await self.proc.wait()
        return code, time.monotonic() - started

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
            await self._proc.wait()


class Sim(Command):
    """``kalshi-router sim`` on a free port, knowing our key through its config file."""

    def __init__(self, directory: Path, tier: str) -> None:
        public = directory / "e2e-key.pub"
        public.write_bytes(PUBLIC_PEM)
        config = directory / "sim.toml"
        config.write_text(
            f'[sim]\ntier = "{tier}"\n'
            f'api_keys = [{{key_id = "{KEY_ID}", public_key_path = "{public}"}}]\n'
        )
        super().__init__(
            directory, "sim", ["--port", "0", "--config", str(config)], {**base_env(directory)}
        )

    @property
    def origin(self) -> str:
        """Where the /_sim/ control routes are."""
        return self.url.removesuffix("/trade-api/v2")


def serve(tmp_path: Path, config: Path, *args: str, token: bool = True) -> Command:
    argv = ["--config", str(config), *args]
    return Command(tmp_path, "serve", argv, serve_env(tmp_path, token=token))


def serve_config(tmp_path: Path, sim: Sim) -> Path:
    path = tmp_path / "serve.toml"
    path.write_text(
        f"""
[exchange]
target = "url"
base_url = "{sim.url}"

[router]
drain_timeout_s = {DRAIN_S}
# Generous: under load nothing may expire; what the drain leaves is closed or unknown.
deadline_s = 60
backoff_base_s = 0.01
backoff_cap_s = 0.1

[service]
host = "127.0.0.1"
port = 0
token_file = "{tmp_path / "token"}"
"""
    )
    return path


def order(client_order_id: str) -> dict[str, Any]:
    # Below the house's bids: it rests, and only its id decides what the books show.
    return {
        "ticker": TICKER,
        "side": "bid",
        "price": "0.30",
        "count": "1",
        "client_order_id": client_order_id,
    }


async def sim_orders(session: aiohttp.ClientSession, sim: Sim) -> dict[str, list[str]]:
    """The exchange's order ids for each of our client_order_ids, from the simulator's books."""
    async with session.get(f"{sim.origin}/_sim/orders") as response:
        assert response.status == 200
        orders = await response.json()
    books: dict[str, list[str]] = {}
    for placed in orders:
        if placed["user_id"] == KEY_ID:
            books.setdefault(placed["client_order_id"], []).append(placed["order_id"])
    return books


async def read_stream(socket: aiohttp.ClientWebSocketResponse) -> list[StreamReply]:
    """Every reply until the service closes the stream."""
    replies = []
    async for message in socket:
        assert message.type == aiohttp.WSMsgType.TEXT
        replies.append(_replies.decode(message.data))
    return replies


# --- a working service -------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_serve_through_client_http_and_websocket(
    tmp_path: Path, signum: signal.Signals
) -> None:
    async with (
        Sim(tmp_path, "premier") as sim,
        serve(tmp_path, serve_config(tmp_path, sim)) as service,
        aiohttp.ClientSession() as session,
    ):
        async with RouterClient(service.url, token=TOKEN) as client:
            placed = await client.place(OrderIntent.bid(TICKER, "0.30", 1, client_order_id="e2e-1"))
            refused = await client.place(OrderIntent.bid(TICKER, "0.305", 1))
        assert isinstance(placed, Accepted)
        assert not refused.ok

        body = {"items": [order("e2e-2"), order("e2e-3")]}
        async with session.post(f"{service.url}/v1/orders", json=body, headers=AUTH) as response:
            assert response.status == 200
            results = msgspec.json.decode(await response.read(), type=ResultsBody).results
        assert [type(r.outcome) for r in results] == [Accepted, Accepted]

        async with session.ws_connect(f"{service.url}/v1/stream", headers=AUTH) as socket:
            await socket.send_json({"type": "submit", "id": 9, "item": order("e2e-4")})
            ack = _replies.decode((await socket.receive(timeout=10)).data)
            outcome = _replies.decode((await socket.receive(timeout=10)).data)
        assert ack == StreamAck(9, "e2e-4")
        assert isinstance(outcome, StreamOutcome)
        assert isinstance(outcome.outcome, Accepted)

        async with session.get(f"{service.url}/v1/orders/e2e-3", headers=AUTH) as response:
            assert (await response.json())["outcome"]["order_id"] == results[1].outcome.order_id  # type: ignore[union-attr]
        async with session.get(f"{service.url}/metrics") as response:
            assert response.status == 401
        async with session.get(f"{service.url}/metrics", headers=AUTH) as response:
            text = await response.text()
        samples = {
            (s.name, s.labels.get("outcome"), s.labels.get("code")): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        assert samples[("kalshi_router_outcomes_total", "accepted", "")] == 4
        assert samples[("kalshi_router_outcomes_total", "rejected", "invalid_price")] == 1
        assert samples[("kalshi_router_submit_to_outcome_seconds_count", None, None)] == 5
        assert samples[("kalshi_router_tokens_spent", None, None)] == 50

        books = await sim_orders(session, sim)
        assert sorted(books) == [f"e2e-{n}" for n in range(1, 5)]
        assert books["e2e-1"] == [placed.order_id]
        code, _ = await service.stop(signum)
    assert code == 0, service.log()
    assert "stopped" in service.log()


async def test_the_default_path_embedded_sim_and_a_generated_token(tmp_path: Path) -> None:
    """What a new user runs: no token set, the simulator in-process, the client finding the
    token where the service wrote it."""
    token_file = tmp_path / "token"
    config = tmp_path / "serve.toml"
    config.write_text(f'[service]\nport = 0\ntoken_file = "{token_file}"\n')
    async with serve(tmp_path, config, token=False) as service:
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        generated = token_file.read_text()
        assert len(generated) >= 40
        port = int(service.url.rpartition(":")[2])
        settings = ServiceConfig(port=port, token_file=str(token_file))
        client = open_router(Config(exchange=ExchangeConfig(target="service"), service=settings))
        assert isinstance(client, RouterClient)
        async with client:
            assert isinstance(await client.place(OrderIntent.bid(TICKER, "0.30", 1)), Accepted)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{service.url}/v1/stats", headers=AUTH) as response,
        ):
            assert response.status == 401
        code, _ = await service.stop()
    assert code == 0, service.log()
    assert generated not in service.log()
    assert "embedded simulator at http://127.0.0.1:" in service.log()


# --- SIGTERM under load ------------------------------------------------------------------------


async def test_sigterm_under_load_settles_every_intent_once(tmp_path: Path) -> None:
    # Basic (about 10 orders a second) and 400 ms per request: at the signal, most of the
    # 75 intents are queued and some are on the wire.
    async with (
        Sim(tmp_path, "basic") as sim,
        serve(tmp_path, serve_config(tmp_path, sim), "--log-format", "json") as service,
        aiohttp.ClientSession() as session,
    ):
        latency = {"latency": {"kind": "fixed", "fixed_ms": 400}}
        async with session.put(f"{sim.origin}/_sim/faults", json=latency) as response:
            assert response.status == 200
        client = RouterClient(service.url, token=TOKEN)
        await client.connect()
        by_client = [
            OrderIntent.bid(TICKER, "0.30", 1, client_order_id=f"e2e-c{n}") for n in range(45)
        ]
        client_futures = client.submit_many(by_client)
        http_items = [order(f"e2e-h{n}") for n in range(20)]
        http = asyncio.create_task(
            session.post(f"{service.url}/v1/orders", json={"items": http_items}, headers=AUTH)
        )
        socket = await session.ws_connect(f"{service.url}/v1/stream", headers=AUTH)
        for n in range(10):
            await socket.send_json({"type": "submit", "id": n, "item": order(f"e2e-w{n}")})
        ws_replies = asyncio.create_task(read_stream(socket))
        total = 75

        async def held() -> int:
            async with session.get(f"{service.url}/v1/stats", headers=AUTH) as response:
                stats = msgspec.json.decode(await response.read(), type=RouterStats)
            assert sum(stats.outcomes.values()) < total, "too fast: nothing left to drain"
            return stats.queue_depth + stats.in_flight + sum(stats.outcomes.values())

        for _ in range(500):
            if await held() == total:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the service never held every intent")
        code, took = await service.stop()

        outcomes: dict[str, list[Outcome]] = {}
        for intent, result in zip(
            by_client, await asyncio.gather(*client_futures, return_exceptions=True), strict=True
        ):
            assert not isinstance(result, BaseException), result
            outcomes.setdefault(intent.client_order_id, []).append(result)
        await client.aclose()
        async with await http as response:
            assert response.status == 200
            answered = msgspec.json.decode(await response.read(), type=ResultsBody).results
        for item in answered:
            assert item.outcome is not None, item
            key = http_items[item.index]["client_order_id"]
            outcomes.setdefault(key, []).append(item.outcome)
        for reply in await ws_replies:
            if isinstance(reply, StreamOutcome):
                outcomes.setdefault(reply.key, []).append(reply.outcome)
        assert socket.close_code == aiohttp.WSCloseCode.GOING_AWAY
        books = await sim_orders(session, sim)

    assert code == 0, service.log()
    assert took < DRAIN_S + EXIT_GRACE_S, f"exit took {took:.2f} s"
    # Exactly one outcome per intent, whatever channel it came by.
    assert len(outcomes) == total
    assert {key: len(found) for key, found in outcomes.items() if len(found) != 1} == {}
    kinds = Counter(type(found[0]).__name__ for found in outcomes.values())
    assert set(kinds) <= {"Accepted", "Closed", "Unknown"}, kinds
    assert kinds["Accepted"] > 0
    assert kinds["Closed"] > 0, "the drain should have left queued intents"
    assert sum(kinds.values()) == total
    # The books agree: no id twice, every accepted one there as the order the client was told
    # of, no closed one there, nothing there that the client was told failed.
    assert {key: ids for key, ids in books.items() if len(ids) != 1} == {}
    final = {key: found[0] for key, found in outcomes.items()}
    accepted = {k: o.order_id for k, o in final.items() if isinstance(o, Accepted)}
    assert {k: books.get(k, [None])[0] for k in accepted} == accepted
    assert {k for k, o in final.items() if isinstance(o, Closed)}.isdisjoint(books)
    assert set(books) <= {k for k, o in final.items() if isinstance(o, Accepted | Unknown)}

    # JSON lines only; a line that names an order carries its id as a field; every intent that
    # did not go through has a line of its own; no secret is written.
    log = service.log()
    lines = [json.loads(line) for line in log.splitlines() if line]
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    for line in lines:
        named = set(re.findall(r"e2e-[chw]\d+", line["message"]))
        carried = {line.get("client_order_id"), *line.get("client_order_ids", [])}
        assert named <= carried, line
    logged = {line.get("client_order_id") for line in lines}
    assert {k for k, o in final.items() if isinstance(o, Closed | Unknown)} <= logged
    assert TOKEN not in log
    assert "PRIVATE KEY" not in log


# --- refusals at start -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "args", "credentials", "message"),
    [
        pytest.param(
            "",
            ["--host", "0.0.0.0"],
            False,
            "0.0.0.0 is not loopback; set a bearer token in $KALSHI_ROUTER_TOKEN",
            id="non-loopback-without-token",
        ),
        pytest.param(
            '[service]\nhots = "127.0.0.1"\n',
            [],
            True,
            "unknown field `hots` - at `$.service`",
            id="bad-config-key",
        ),
        pytest.param(
            '[exchange]\ntarget = "service"\n',
            [],
            True,
            'exchange.target: "service" is for clients',
            id="serve-as-its-own-client",
        ),
        pytest.param(
            '[exchange]\ntarget = "url"\nbase_url = "http://127.0.0.1:{port}/trade-api/v2"\n',
            [],
            False,
            "KALSHI_API_KEY_ID",
            id="no-credentials",
        ),
        pytest.param(
            '[exchange]\ntarget = "url"\nbase_url = "http://127.0.0.1:{port}/trade-api/v2"\n',
            [],
            True,
            "cannot read GET /account/limits",
            id="exchange-unreachable",
        ),
    ],
)
def test_refusals_at_start_exit_2_with_the_reason(
    tmp_path: Path,
    unused_tcp_port: int,
    config: str,
    args: list[str],
    credentials: bool,
    message: str,
) -> None:
    path = tmp_path / "serve.toml"
    path.write_text(config.format(port=unused_tcp_port))
    env = serve_env(tmp_path) if credentials else base_env(tmp_path)
    result = run_cli("serve", "--config", str(path), "--port", "0", *args, env=env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert result.stdout == ""
    # Nothing was left for the garbage collector to complain about (an HTTP session made
    # for a router that never started), and no token file was written.
    assert "Unclosed" not in result.stderr
    assert not (tmp_path / ".cache").exists()


def test_a_port_in_use_exits_2_naming_it(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**base_env(tmp_path), "KALSHI_ROUTER_TOKEN": TOKEN}
        result = run_cli("serve", "--port", str(port), env=env)
    assert result.returncode == 2, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    # The embedded simulator and the router it started were closed, not left to the collector.
    assert "Unclosed" not in result.stderr

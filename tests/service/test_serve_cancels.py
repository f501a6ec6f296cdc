"""A real ``kalshi-router serve`` (following orders) against ``kalshi-router sim``, both
subprocesses: a bot process that opted in to cancel on disconnect is killed with SIGKILL and its
resting orders are cancelled at the simulator N s later, another bot's are not; on SIGTERM the
service cancels every open order first with ``[service] cancel_on_shutdown = true`` and leaves
them resting with the default; the setting without ``[orders] track`` is refused at start."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kalshi_router.intent import OrderIntent
from kalshi_router.outcome import Accepted
from kalshi_router.service.client import RouterClient
from kalshi_router.stats import RouterStats
from tests.service.test_serve_e2e import (
    AUTH,
    KEY_ID,
    TICKER,
    TOKEN,
    Sim,
    base_env,
    run_cli,
    serve,
    serve_config,
    serve_env,
)

N_S = 0.3
BOT = """
import asyncio, sys
from kalshi_router.intent import OrderIntent
from kalshi_router.service.client import RouterClient

async def main(url: str, token: str, ticker: str, seconds: str) -> None:
    async with RouterClient(url, token=token, name="doomed",
                            cancel_on_disconnect=float(seconds)) as bot:
        for n in range(3):
            intent = OrderIntent.bid(ticker, "0.30", 1, client_order_id=f"doomed-{n}")
            outcome = await bot.place(intent)
            assert outcome.ok, outcome
        print("placed", flush=True)
        await asyncio.Event().wait()

asyncio.run(main(*sys.argv[1:]))
"""


def tracked_config(tmp_path: Path, sim: Sim, service: str = "") -> Path:
    """``serve``'s config, following orders; ``service``: more ``[service]`` settings."""
    path = serve_config(tmp_path, sim)
    text = path.read_text().replace("[service]\n", f"[service]\n{service}")
    path.write_text(text + "\n[orders]\ntrack = true\n")
    return path


async def statuses(session: aiohttp.ClientSession, sim: Sim) -> dict[str, str]:
    """Each of our orders' status at the simulator, by client_order_id."""
    async with session.get(f"{sim.origin}/_sim/orders") as response:
        assert response.status == 200
        orders = await response.json()
    return {o["client_order_id"]: o["status"] for o in orders if o["user_id"] == KEY_ID}


async def until(session: aiohttp.ClientSession, sim: Sim, keys: list[str], status: str) -> None:
    for _ in range(1000):
        found = await statuses(session, sim)
        if all(found.get(key) == status for key in keys):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not all {status}: {await statuses(session, sim)}")


async def place(client: RouterClient, keys: list[str]) -> None:
    for key in keys:
        outcome = await client.place(OrderIntent.bid(TICKER, "0.30", 1, client_order_id=key))
        assert isinstance(outcome, Accepted), outcome


async def test_a_bot_killed_with_sigkill_has_its_orders_cancelled_and_no_other_bots(
    tmp_path: Path,
) -> None:
    doomed = [f"doomed-{n}" for n in range(3)]
    kept = ["survivor-0", "survivor-1"]
    script = tmp_path / "bot.py"
    script.write_text(BOT)
    async with (
        Sim(tmp_path, "premier") as sim,
        serve(tmp_path, tracked_config(tmp_path, sim)) as service,
        aiohttp.ClientSession() as session,
        RouterClient(service.url, token=TOKEN, name="survivor", cancel_on_disconnect=N_S) as other,
    ):
        await place(other, kept)
        bot = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            service.url,
            TOKEN,
            TICKER,
            str(N_S),
            stdin=subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            env=base_env(tmp_path),
        )
        try:
            assert bot.stdout is not None
            line = await asyncio.wait_for(bot.stdout.readline(), 30)
            assert line == b"placed\n", service.log()
            await until(session, sim, doomed + kept, "resting")
            killed_at = time.monotonic()
            bot.send_signal(signal.SIGKILL)
            await until(session, sim, doomed, "canceled")
            took = time.monotonic() - killed_at
        finally:
            if bot.returncode is None:
                bot.kill()
            await bot.wait()
        print(
            f"\nkill -9 of a bot connected to serve: its 3 orders cancelled at the simulator "
            f"{took:.3f} s after the kill (N = {N_S} s)"
        )
        assert bot.returncode == -signal.SIGKILL
        assert took >= N_S - 0.01  # never before its N
        assert await statuses(session, sim) == dict.fromkeys(doomed, "canceled") | dict.fromkeys(
            kept, "resting"
        )
        async with session.get(f"{service.url}/v1/stats", headers=AUTH) as response:
            stats = msgspec.json.decode(await response.read(), type=RouterStats)
        assert stats.clients["doomed"].disconnect_cancels == 3
        assert stats.clients["survivor"].disconnect_cancels == 0
        async with session.get(f"{service.url}/metrics", headers=AUTH) as response:
            samples = {
                (sample.name, sample.labels.get("client")): sample.value
                for family in text_string_to_metric_families(await response.text())
                for sample in family.samples
            }
        assert samples[("kalshi_router_client_disconnect_cancels_total", "doomed")] == 3
        code, _ = await service.stop()
    assert code == 0, service.log()
    assert "client doomed had no stream for 0.3 s: cancelled 3 open orders" in service.log()
    assert "Traceback" not in service.log()


@pytest.mark.parametrize("cancel", [True, False], ids=["cancel_on_shutdown", "default-keeps"])
async def test_sigterm_cancels_every_open_order_only_when_configured(
    tmp_path: Path, cancel: bool
) -> None:
    setting = f"cancel_on_shutdown = {str(cancel).lower()}\n" if cancel else ""
    keys = ["named-0", "named-1", "http-0"]
    async with (
        Sim(tmp_path, "premier") as sim,
        serve(tmp_path, tracked_config(tmp_path, sim, setting)) as service,
        aiohttp.ClientSession() as session,
    ):
        # Still connected at SIGTERM, and opted in: the service going is not the bot going.
        async with RouterClient(
            service.url, token=TOKEN, name="quoter", cancel_on_disconnect=0.05
        ) as client:
            await place(client, keys[:2])
            item = {"ticker": TICKER, "side": "bid", "price": "0.30", "count": 1}
            body = {"items": [{**item, "client_order_id": "http-0"}]}
            async with session.post(f"{service.url}/v1/orders", json=body, headers=AUTH) as r:
                assert r.status == 200
            await until(session, sim, keys, "resting")
            code, took = await service.stop()
        assert code == 0, service.log()
        print(f"\nserve with cancel_on_shutdown={cancel}: exited {took:.3f} s after SIGTERM")
        assert await statuses(session, sim) == dict.fromkeys(
            keys, "canceled" if cancel else "resting"
        )
    log = service.log()
    assert "Traceback" not in log
    if cancel:
        assert "cancel_on_shutdown: 3 open orders, 3 cancels sent, 3 confirmed" in log
    else:
        assert "cancel_on_shutdown" not in log
        assert "had no stream" not in log


def test_cancel_on_shutdown_without_orders_track_is_refused_at_start(tmp_path: Path) -> None:
    path = tmp_path / "serve.toml"
    path.write_text("[service]\ncancel_on_shutdown = true\n")
    result = run_cli("serve", "--config", str(path), "--port", "0", env=serve_env(tmp_path))
    assert result.returncode == 2, result.stderr
    assert "service.cancel_on_shutdown: cancels the open orders the router follows" in result.stderr
    assert "[orders] track = true" in result.stderr
    assert result.stdout == ""

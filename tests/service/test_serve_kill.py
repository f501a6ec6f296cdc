"""A real ``kalshi-router serve`` against ``kalshi-router sim``, both subprocesses: SIGUSR1 is the
kill switch (every resting order pulled at the simulator, the report logged, the service still
running and halted), and SIGTERM afterwards keeps its meaning (drain, exit 0)."""

from __future__ import annotations

import signal
from pathlib import Path

import aiohttp
import msgspec

from kalshi_router.intent import OrderIntent
from kalshi_router.outcome import Rejected
from kalshi_router.service.client import RouterClient
from kalshi_router.service.protocol import TradingStateReply
from tests.service.conftest import eventually
from tests.service.test_serve_cancels import place, statuses, tracked_config, until
from tests.service.test_serve_e2e import AUTH, TICKER, TOKEN, Sim, serve


async def test_sigusr1_pulls_every_resting_order_and_the_service_stays_up_halted(
    tmp_path: Path,
) -> None:
    keys = [f"quote-{n}" for n in range(4)]
    async with (
        Sim(tmp_path, "premier") as sim,
        serve(tmp_path, tracked_config(tmp_path, sim)) as service,
        aiohttp.ClientSession() as session,
        RouterClient(service.url, token=TOKEN, name="quoter") as bot,
    ):
        await place(bot, keys)
        await until(session, sim, keys, "resting")
        service.proc.send_signal(signal.SIGUSR1)
        await until(session, sim, keys, "canceled")
        await eventually(lambda: "kill switch report: " in service.log())
        assert service.proc.returncode is None  # still serving
        refused = await bot.place(OrderIntent.bid(TICKER, "0.30", 1))
        assert isinstance(refused, Rejected)
        assert refused.code == "risk.halted"
        async with session.get(f"{service.url}/v1/trading_state", headers=AUTH) as response:
            state = msgspec.json.decode(await response.read(), type=TradingStateReply)
        assert state.state == "halted"
        await eventually(lambda: bot.trading_state == "halted")
        assert await statuses(session, sim) == dict.fromkeys(keys, "canceled")
        code, _ = await service.stop()
    assert code == 0, service.log()
    log = service.log()
    assert "signal SIGUSR1: kill switch" in log
    report = next(line for line in log.splitlines() if "kill switch report: " in line)
    assert '"reason":"signal SIGUSR1","done":true' in report
    assert '"cancel_all":"sent"' in report
    assert "signal received: draining" in log  # SIGTERM: the drain, as before
    assert "Traceback" not in log


async def test_sigusr1_during_a_kill_in_progress_starts_no_second_one(tmp_path: Path) -> None:
    async with (
        Sim(tmp_path, "premier") as sim,
        serve(tmp_path, tracked_config(tmp_path, sim)) as service,
        aiohttp.ClientSession() as session,
    ):
        # Every write takes 300 ms at the exchange: the first kill is still running.
        latency = {"latency": {"kind": "fixed", "fixed_ms": 300}}
        async with session.put(f"{sim.origin}/_sim/faults", json=latency) as response:
            assert response.status == 200
        service.proc.send_signal(signal.SIGUSR1)
        await eventually(lambda: "signal SIGUSR1: kill switch" in service.log())
        service.proc.send_signal(signal.SIGUSR1)
        await eventually(lambda: "kill switch report: " in service.log())
        code, _ = await service.stop()
    assert code == 0, service.log()
    log = service.log()
    assert "a kill switch started by a signal is still running" in log
    assert log.count("kill switch report: ") == 1

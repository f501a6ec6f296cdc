"""``service.desk.Desk`` over a scripted router: a kill halts at once whatever else runs, a state
change waits for the kills in progress, a kill that starts while a resume reconciles leaves the
router halted, a signal starts one kill at a time and its report is logged."""

from __future__ import annotations

import asyncio
import logging
from typing import cast

import pytest

from kalshi_router.errors import ConfigError
from kalshi_router.risk.config import TradingState
from kalshi_router.risk.kill import KillReport
from kalshi_router.router import OrderRouter
from kalshi_router.service.desk import SIGNAL_REASON, Desk


def report(reason: str, done: bool = True) -> KillReport:
    return KillReport(
        reason=reason,
        done=done,
        seconds=0.01,
        creates_closed=0,
        cancel_all="sent",
        cancels_sent=0,
        cancels_confirmed=0,
        rounds=1,
    )


class ScriptedRouter:
    """The router's controls; ``kill`` and ``resume`` wait for the test to let them go."""

    def __init__(self) -> None:
        self.trading_state: TradingState = "active"
        self.calls: list[str] = []
        self.kill_may_end = asyncio.Event()
        self.reconciled = asyncio.Event()
        self.reconciled.set()

    def set_trading_state(self, state: TradingState) -> None:
        self.calls.append(f"set {state}")
        self.trading_state = state

    async def kill(
        self, reason: str, *, subaccount: int | None = None, timeout_s: float = 30.0
    ) -> KillReport:
        self.calls.append(f"kill {reason} {subaccount} {timeout_s:g}")
        self.trading_state = "halted"  # before its first await, as OrderRouter.kill
        await self.kill_may_end.wait()
        return report(reason)

    async def resume(self, state: TradingState = "active") -> None:
        self.calls.append(f"resume {state}")
        await self.reconciled.wait()
        self.trading_state = state


def desk_of(router: ScriptedRouter, reports: list[KillReport] | None = None) -> Desk:
    seen = reports if reports is not None else []
    return Desk(cast(OrderRouter, router), kill_timeout_s=7.0, reported=seen.append)


async def test_a_state_change_waits_for_the_kill_in_progress() -> None:
    router = ScriptedRouter()
    reports: list[KillReport] = []
    desk = desk_of(router, reports)
    kill = asyncio.create_task(desk.kill("test", subaccount=2))
    await asyncio.sleep(0)
    assert desk.trading_state == "halted"
    change = asyncio.create_task(desk.set_state("active"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not change.done()
    assert router.calls == ["kill test 2 7"]
    router.kill_may_end.set()
    assert (await kill).reason == "test"
    assert await change == "halted"
    assert router.calls == ["kill test 2 7", "resume active"]
    assert router.trading_state in ("active",)
    assert [r.reason for r in reports] == ["test"]


async def test_a_kill_during_a_resume_leaves_the_router_halted() -> None:
    router = ScriptedRouter()
    router.trading_state = "halted"
    router.reconciled.clear()
    router.kill_may_end.set()
    desk = desk_of(router)
    change = asyncio.create_task(desk.set_state("active"))
    await asyncio.sleep(0)
    assert router.calls == ["resume active"]
    killed = await desk.kill("meanwhile")
    router.reconciled.set()
    assert await change == "halted"
    assert killed.done
    assert desk.trading_state == "halted"
    assert router.calls[-1] == "set halted"


async def test_changes_that_need_no_reconciling_are_set_at_once() -> None:
    router = ScriptedRouter()
    desk = desk_of(router)
    assert await desk.set_state("reducing") == "active"
    assert await desk.set_state("halted") == "reducing"
    assert await desk.set_state("reducing", resume=False) == "halted"  # from halted: resumes
    assert await desk.set_state("active", resume=True) == "reducing"
    assert router.calls == ["set reducing", "set halted", "resume reducing", "resume active"]
    with pytest.raises(ConfigError, match=r"^state: must be one of active, reducing, halted"):
        await desk.set_state("paused")  # type: ignore[arg-type]


async def test_a_signal_starts_one_kill_at_a_time_and_its_report_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    router = ScriptedRouter()
    desk = desk_of(router)
    with caplog.at_level(logging.WARNING, logger="kalshi_router.service"):
        desk.kill_soon()
        desk.kill_soon()  # still running: not a second one
        await asyncio.sleep(0)
        finished = asyncio.create_task(desk.finished())
        await asyncio.sleep(0)
        assert not finished.done()
        router.kill_may_end.set()
        await finished
    assert router.calls == [f"kill {SIGNAL_REASON} None 7"]
    messages = [r.getMessage() for r in caplog.records]
    assert f"{SIGNAL_REASON}: a kill switch started by a signal is still running" in messages
    logged = [m for m in messages if m.startswith("kill switch report: ")]
    assert len(logged) == 1
    assert '"reason":"signal SIGUSR1","done":true' in logged[0]
    desk.kill_soon()  # the first is over: a new one starts
    await desk.finished()
    assert len(router.calls) == 2

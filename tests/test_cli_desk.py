"""``cli_desk``: ``kill`` and ``state`` against the service in-process; a kill that is not done
exits 1 and says what still rests. (Against a real ``serve``: tests/test_cli.py.)"""

from __future__ import annotations

import io

import pytest

from kalshi_router.cli_desk import kill_command, report_lines, state_command
from kalshi_router.config import Config, ServiceConfig
from kalshi_router.risk.kill import KillReport
from tests.service.conftest import TOKEN, MakeService, Running, exit_stack, make_service

__all__ = ["exit_stack", "make_service"]  # the fixtures, used here


def config_for(running: Running) -> Config:
    port = running.http.make_url("").port
    assert port is not None
    return Config(service=ServiceConfig(port=port))


def not_done(reason: str) -> KillReport:
    return KillReport(
        reason=reason,
        done=False,
        seconds=30.0,
        creates_closed=2,
        cancel_all="failed: HTTP 503 service_unavailable: down",
        cancels_sent=14,
        cancels_confirmed=1,
        rounds=9,
        still_resting=[f"order-{n}" for n in range(13)],
    )


async def test_a_kill_that_is_not_done_exits_1_and_lists_what_rests(
    make_service: MakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = await make_service()
    asked: list[tuple[str, int | None, float]] = []

    async def gives_up(reason: str, *, subaccount: int | None, timeout_s: float) -> KillReport:
        asked.append((reason, subaccount, timeout_s))
        return not_done(reason)

    monkeypatch.setattr(running.router, "kill", gives_up)
    monkeypatch.setenv("KALSHI_ROUTER_TOKEN", TOKEN)
    out = io.StringIO()
    code = await kill_command(
        config_for(running), "desk.toml", reason="drill", subaccount=3, timeout_s=1.5, out=out
    )
    assert code == 1
    assert asked == [("drill", 3, 1.5)]
    lines = out.getvalue().splitlines()
    assert lines[0] == "kill switch (drill): NOT DONE after 30.000 s: 13 still resting"
    assert lines[1:4] == [
        "  queued creates closed: 2",
        "  cancel-all: failed: HTTP 503 service_unavailable: down",
        "  cancelled one by one: 14 (1 confirmed), in 9 rounds",
    ]
    shown = " ".join(f"order-{n}" for n in range(10))
    assert lines[4] == f"  still resting: {shown} and 3 more"


async def test_state_prints_and_sets(
    make_service: MakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = await make_service()
    monkeypatch.setenv("KALSHI_ROUTER_TOKEN", TOKEN)
    out = io.StringIO()
    assert await state_command(config_for(running), "reducing", out=out) == 0
    assert await state_command(config_for(running), None, out=out) == 0
    assert out.getvalue() == "trading state: reducing (was active)\ntrading state: reducing\n"
    assert running.router.trading_state == "reducing"


def test_a_report_that_is_done_reads_in_four_lines() -> None:
    done = KillReport(
        reason="r",
        done=True,
        seconds=0.0123,
        creates_closed=0,
        cancel_all="sent",
        cancels_sent=2,
        cancels_confirmed=2,
        rounds=2,
    )
    assert report_lines(done) == [
        "kill switch (r): every resting order confirmed cancelled in 0.012 s",
        "  queued creates closed: 0",
        "  cancel-all: sent",
        "  cancelled one by one: 2 (2 confirmed), in 2 rounds",
    ]

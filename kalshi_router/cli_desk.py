"""``kalshi-router kill`` and ``kalshi-router state``: the desk's controls of the running service
that a config's ``[service]`` names (its host and port or Unix socket, and its token, found as
``open_router``'s client finds them).

``kill`` waits for the service's report and prints it in a few lines; it exits 0 when every
resting order was confirmed cancelled, 1 when not (or when the service could not be reached or
refused), 2 for a bad option or config. ``state`` prints the trading state, and sets it first
when given one (from ``halted`` to trading, the service reconciles first); 0, or 1 when the
service could not be reached or refused.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TextIO

from kalshi_router.client_names import HEADER
from kalshi_router.config import Config
from kalshi_router.errors import ServiceError
from kalshi_router.risk.config import TradingState
from kalshi_router.risk.kill import KillReport
from kalshi_router.service.client.desk_calls import DeskCalls, service_at
from kalshi_router.service.token import read_token

__all__ = ["kill_command", "report_lines", "state_command"]

CLI_NAME = "kalshi-router-cli"
"""The ``X-Client-Name`` the commands send: the service's log says who acted."""
_SHOWN = 10


async def kill_command(
    config: Config,
    path: str,
    *,
    reason: str,
    subaccount: int | None,
    timeout_s: float,
    out: TextIO = sys.stdout,
) -> int:
    async def call(desk: DeskCalls) -> int:
        report = await desk.kill(reason, subaccount=subaccount, timeout_s=timeout_s)
        print("\n".join(report_lines(report)), file=out)
        resume = f"kalshi-router state active --config {path}"
        print(f"trading state: halted (creates refused); to trade again: {resume}", file=out)
        return 0 if report.done else 1

    return await _with_desk(config, call)


async def state_command(
    config: Config, state: TradingState | None, *, out: TextIO = sys.stdout
) -> int:
    async def call(desk: DeskCalls) -> int:
        if state is None:
            print(f"trading state: {await desk.trading_state()}", file=out)
            return 0
        reply = await desk.set_trading_state(state)
        print(f"trading state: {reply.state} (was {reply.was})", file=out)
        return 0

    return await _with_desk(config, call)


def report_lines(report: KillReport) -> list[str]:
    """The report, for people: what was done, and what is left if it is not done."""
    if report.done:
        head = f"every resting order confirmed cancelled in {report.seconds:.3f} s"
    else:
        head = f"NOT DONE after {report.seconds:.3f} s: {len(report.still_resting)} still resting"
    lines = [
        f"kill switch ({report.reason}): {head}",
        f"  queued creates closed: {report.creates_closed}",
        f"  cancel-all: {report.cancel_all}",
        f"  cancelled one by one: {report.cancels_sent} ({report.cancels_confirmed} confirmed), "
        f"in {report.rounds} rounds",
    ]
    if report.still_resting:
        shown = report.still_resting[:_SHOWN]
        more = len(report.still_resting) - len(shown)
        lines.append(f"  still resting: {' '.join(shown)}{f' and {more} more' if more else ''}")
    return lines


async def _with_desk(config: Config, call: Callable[[DeskCalls], Awaitable[int]]) -> int:
    settings = config.service
    at = service_at(settings)  # ConfigError (exit 2) for a port the client cannot know
    token = None if at.unix_socket else read_token(settings)
    headers = {HEADER: CLI_NAME}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        async with at.session() as session:
            return await call(DeskCalls(session, at, lambda: headers))
    except ServiceError as exc:
        print(f"kalshi-router: {exc}", file=sys.stderr)
        return 1

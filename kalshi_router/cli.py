"""``kalshi-router``: ``demo`` (the simulator and one signed batch end to end) and ``sim``.

This module wires the simulator and the wire layer together; neither imports the other.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from decimal import Decimal

import msgspec

from kalshi_router.config import Config, load_config
from kalshi_router.errors import KalshiRouterError
from kalshi_router.intent import CancelIntent, OrderIntent
from kalshi_router.loop import run
from kalshi_router.outcome import Accepted, Cancelled, Rejected
from kalshi_router.sim import SimConfig, SimServer, serve_forever
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.dialect import dialect_for
from kalshi_router.wire.http import HttpTransport
from kalshi_router.wire.reply import BatchReply
from kalshi_router.wire.signer import Signer, generate_key, load_private_key

DEMO_KEY_ID = "demo-key-0000"
TICKER = "KXDEMO-26DEC31-T50"


def _config(path: str | None) -> Config:
    return load_config(path) if path else Config()


def demo_intents() -> list[OrderIntent]:
    """A small market-making batch that shows each kind of answer the exchange gives."""
    return [
        OrderIntent.bid(TICKER, "0.45", 10, post_only=True),
        OrderIntent.ask(TICKER, "0.62", 10, post_only=True),
        OrderIntent.bid(TICKER, 44, "2.5"),
        OrderIntent.legacy(ticker=TICKER, action="buy", side="no", price="0.38", count=5),
        # Crosses the simulator's resting asks, so it fills at once.
        OrderIntent.bid(TICKER, "0.60", 3, time_in_force="immediate_or_cancel"),
        # Post-only that would cross the book: Kalshi refuses it per item.
        OrderIntent.bid(TICKER, "0.70", 1, post_only=True),
        # Off the market's one-cent tick.
        OrderIntent.bid(TICKER, "0.3050", 1),
    ]


_NO_ANSWER = {
    "retry": "not executed (resend with the same ids)",
    "ambiguous": "no answer (may exist: look it up before resending)",
    "answered": "left out of the answer (look it up before resending)",
}


def _describe(intent: OrderIntent | CancelIntent, outcome: object, disposition: str) -> str:
    if isinstance(intent, OrderIntent):
        what = f"{intent.side:<3} {intent.count:>6} @ {intent.price} {intent.time_in_force}"
    else:
        what = f"cancel {intent.order_id[:8]}"
    if isinstance(outcome, Accepted):
        return f"{what:<48} accepted  order {outcome.order_id[:8]} filled {outcome.fill_count} resting {outcome.remaining_count}"  # noqa: E501
    if isinstance(outcome, Cancelled):
        return f"{what:<48} cancelled reduced by {outcome.reduced_by}"
    if isinstance(outcome, Rejected):
        detail = f" ({outcome.details})" if outcome.details else ""
        return f"{what:<48} rejected  {outcome.code}: {outcome.message}{detail}"
    return f"{what:<48} {_NO_ANSWER.get(disposition, disposition)}"


def _print_reply(
    title: str, intents: Sequence[OrderIntent] | Sequence[CancelIntent], reply: BatchReply
) -> None:
    print(f"\n{title}: HTTP {reply.http_status}, {reply.disposition}")
    for intent in intents:
        key = intent.client_order_id if isinstance(intent, OrderIntent) else intent.order_id
        print("  " + _describe(intent, reply.outcomes.get(key), reply.disposition))
    for anomaly in reply.anomalies:
        print(f"  ! {anomaly}")


async def run_demo(config: Config) -> int:
    """Start the simulator, sign and send one batch of creates and one of cancels, print each
    order's own answer. Returns the process exit code."""
    private_pem, public_pem = generate_key(config.credentials.key_type)
    sim_config = config.sim
    if config.exchange.dialect == "v1":
        # V1 orders cost 100 tokens each: a Basic bucket (100) could take one per batch.
        tier = "premier" if sim_config.tier == "basic" else sim_config.tier
        sim_config = msgspec.structs.replace(sim_config, v1_mode="serve", tier=tier)
    dialect = dialect_for(config.exchange.dialect)
    signer = Signer(DEMO_KEY_ID, load_private_key(private_pem))
    async with SimServer(sim_config) as sim:
        sim.register_key(DEMO_KEY_ID, public_pem)
        print(f"simulator listening at {sim.url} (tier {sim_config.tier})")
        async with HttpTransport(
            sim.url, signer, timeout_s=config.exchange.request_timeout_s
        ) as transport:
            client = ExchangeClient(transport, dialect)
            limits = await client.get_limits()
            costs = await client.get_endpoint_costs()
            print(
                f"account tier {limits.usage_tier}: write bucket {limits.write.bucket_capacity} "
                f"tokens, refill {limits.write.refill_rate}/s; default cost {costs.default_cost}"
            )
            intents = demo_intents()
            reply = await client.create_batch(intents)
            _print_reply(f"{dialect.name} batch create of {len(intents)}", intents, reply)
            # A resend of an order that landed: client order ids are single-use, so the exchange
            # refuses it rather than placing the order twice.
            again = [intents[0]]
            _print_reply(
                "resend of the first order, same id", again, await client.create_batch(again)
            )
            resting = [
                o
                for o in reply.outcomes.values()
                if isinstance(o, Accepted) and o.remaining_count > Decimal(0)
            ]
            cancels = [CancelIntent(order_id=o.order_id, ticker=TICKER) for o in resting]
            if cancels:
                cancel_reply = await client.cancel_batch(cancels)
                _print_reply(f"batch cancel of {len(cancels)}", cancels, cancel_reply)
    return 0 if reply.disposition == "answered" else 1


def _sim_config(args: argparse.Namespace) -> SimConfig:
    config = load_config(args.config).sim if args.config else SimConfig()
    changes: dict[str, object] = {}
    if args.tier:
        changes["tier"] = args.tier
    if args.v1:
        changes["v1_mode"] = args.v1
    return msgspec.structs.replace(config, **changes) if changes else config


async def _run_sim(args: argparse.Namespace) -> int:
    config = _sim_config(args)
    await serve_forever(config, args.host, args.port)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kalshi-router", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the simulator and send signed batches to it")
    demo.add_argument("--config", help="TOML config file (default: built-in defaults)")
    demo.add_argument("--dialect", choices=("v2", "v1"), help="override exchange.dialect")
    sim = commands.add_parser("sim", help="run the exchange simulator on its own")
    sim.add_argument("--config", help="TOML config file whose [sim] table is used")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument("--tier", help="rate-limit tier: basic, advanced, premier, paragon, prime")
    sim.add_argument("--v1", choices=("gone", "serve"), help="legacy V1 routes: 410 or served")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            config = _config(args.config)
            if args.dialect:
                exchange = msgspec.structs.replace(config.exchange, dialect=args.dialect)
                config = msgspec.structs.replace(config, exchange=exchange)
            return run(run_demo(config))
        return run(_run_sim(args))
    except KalshiRouterError as exc:
        print(f"kalshi-router: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

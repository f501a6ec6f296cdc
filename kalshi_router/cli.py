"""``kalshi-router``: ``demo`` (the simulator and the router end to end), ``serve``, ``sim`` and
``journal`` (what the service's intent journal holds).

This module (with ``demo``) wires the simulator and the router together; neither imports
the other.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec

from kalshi_router.config import Config, load_config
from kalshi_router.demo import run_demo
from kalshi_router.errors import ConfigError, KalshiRouterError
from kalshi_router.journal import SqliteJournal
from kalshi_router.journal.report import summary
from kalshi_router.loop import run
from kalshi_router.service.logs import setup_logging
from kalshi_router.service.serve import serve
from kalshi_router.sim import FaultConfig, SimConfig, serve_forever


def _config(path: str | None) -> Config:
    return load_config(path) if path else Config()


def _serve_config(args: argparse.Namespace) -> Config:
    config = _config(args.config)
    changes = {
        name: value
        for name, value in (
            ("host", args.host),
            ("port", args.port),
            ("unix_socket", args.unix_socket),
            ("log_format", args.log_format),
        )
        if value is not None
    }
    service = msgspec.structs.replace(config.service, **changes)
    setup_logging(service.log_level, json_lines=service.log_format == "json")
    return msgspec.structs.replace(config, service=service)


def _sim_config(args: argparse.Namespace) -> SimConfig:
    config = load_config(args.config).sim if args.config else SimConfig()
    changes: dict[str, object] = {}
    if args.tier:
        changes["tier"] = args.tier
    if args.v1:
        changes["v1_mode"] = args.v1
    if args.seed is not None:
        changes["seed"] = args.seed
    if args.fault:
        changes["faults"] = _faults(config.faults, args.fault)
    return msgspec.structs.replace(config, **changes) if changes else config


def _faults(base: FaultConfig, settings: list[str]) -> FaultConfig:
    """``--fault error_503_rate=0.1 --fault hang_s=2``: numeric FaultConfig fields."""
    raw = msgspec.to_builtins(base)
    for setting in settings:
        name, sep, value = setting.partition("=")
        if not sep or name not in raw or not isinstance(raw[name], int | float):
            numeric = sorted(k for k, v in raw.items() if isinstance(v, int | float))
            raise ConfigError(f"--fault {setting!r}: expected NAME=NUMBER, NAME one of {numeric}")
        whole = isinstance(raw[name], int)
        try:
            raw[name] = int(value) if whole else float(value)
        except ValueError:
            kind = "a whole number" if whole else "a number"
            raise ConfigError(f"--fault {setting!r}: {value!r} is not {kind}") from None
    try:
        return msgspec.convert(raw, FaultConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"--fault: {exc}") from None


def _journal(args: argparse.Namespace) -> int:
    path = Path(args.path) if args.path else _config(args.config).journal.journal_path()
    with SqliteJournal.read(path) as journal:
        print(summary(journal, list_unresolved=args.unresolved))
    return 0


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
    demo.add_argument("--orders", type=int, default=60, help="size of the burst (default 60)")
    demo.add_argument(
        "--seconds", type=float, default=10.0, help="how long to make markets (default 10)"
    )
    demo.add_argument("--tier", help="the simulator's rate-limit tier (default: the config's)")
    serve_cmd = commands.add_parser("serve", help="run the router as a local service")
    serve_cmd.add_argument("--config", help="TOML config file (default: built-in defaults)")
    serve_cmd.add_argument("--host", help="override service.host")
    serve_cmd.add_argument("--port", type=int, help="override service.port (0: any free port)")
    serve_cmd.add_argument("--unix-socket", help="override service.unix_socket")
    serve_cmd.add_argument(
        "--log-format", choices=("text", "json"), help="override service.log_format"
    )
    sim = commands.add_parser("sim", help="run the exchange simulator on its own")
    sim.add_argument("--config", help="TOML config file whose [sim] table is used")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument("--tier", help="rate-limit tier: basic, advanced, premier, paragon, prime")
    sim.add_argument("--v1", choices=("gone", "serve"), help="legacy V1 routes: 410 or served")
    sim.add_argument("--seed", type=int, help="seed of the fault draws")
    sim.add_argument(
        "--fault",
        action="append",
        metavar="NAME=VALUE",
        help="a fault setting, e.g. error_503_rate=0.1, reset_after_rate=0.05, hang_s=2 "
        "(repeatable; see FaultConfig)",
    )
    journal = commands.add_parser(
        "journal", help="summarise the service's intent journal and list unresolved intents"
    )
    journal.add_argument("--config", help="TOML config file whose journal.path is read")
    journal.add_argument("--path", help="the journal file (overrides the config)")
    journal.add_argument(
        "--unresolved",
        action="store_true",
        help="list each intent not settled, or settled unknown (look those up at the exchange)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            config = _config(args.config)
            if args.dialect:
                exchange = msgspec.structs.replace(config.exchange, dialect=args.dialect)
                config = msgspec.structs.replace(config, exchange=exchange)
            if args.tier:
                config = msgspec.structs.replace(
                    config, sim=msgspec.structs.replace(config.sim, tier=args.tier)
                )
            return run(run_demo(config, orders=args.orders, seconds=args.seconds))
        if args.command == "serve":
            return run(serve(_serve_config(args)))
        if args.command == "journal":
            return _journal(args)
        return run(_run_sim(args))
    except KalshiRouterError as exc:
        print(f"kalshi-router: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

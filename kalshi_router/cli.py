"""``kalshi-router``: ``demo`` (the simulator and the router end to end), ``serve``, ``sim``,
``check`` (whether a key can trade, by reading only), ``journal`` (what the service's intent
journal holds), and ``kill`` and ``state`` (the running service's kill switch and trading
state, ``cli_desk``).

Every option is checked like a config key (``cli_options``): a bad one is a one-line error
naming it, exit 2. This module (with ``demo``) wires the simulator and the router together;
neither imports the other.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

import msgspec

from kalshi_router import cli_options as opt
from kalshi_router.check import check
from kalshi_router.cli_desk import kill_command, state_command
from kalshi_router.config import Config, load_config
from kalshi_router.demo import require_simulator, run_demo
from kalshi_router.demo.bot_kit import write_bot_kit
from kalshi_router.errors import KalshiRouterError, OptionError
from kalshi_router.journal import SqliteJournal
from kalshi_router.journal.report import summary
from kalshi_router.loop import run
from kalshi_router.risk.config import STATES
from kalshi_router.service.logs import setup_logging
from kalshi_router.service.serve import serve
from kalshi_router.sim import SimServer, serve_forever
from kalshi_router.wire.hosts import LOOPBACK_HINT, is_loopback

log = logging.getLogger("kalshi_router")


def _config(path: str | None) -> Config:
    return load_config(path) if path else Config()


def _demo(args: argparse.Namespace) -> int:
    config = _config(args.config)
    require_simulator(config, args.config)
    if args.dialect:
        exchange = opt.override(config.exchange, "--dialect", dialect=args.dialect)
        config = msgspec.structs.replace(config, exchange=exchange)
    if args.tier:
        sim = opt.override(config.sim, "--tier", tier=args.tier)
        config = msgspec.structs.replace(config, sim=sim)
    # The quotes need room in the queue beside the burst.
    most = config.router.queue_size // 2
    if args.orders > most:
        raise OptionError(
            f"--orders: at most {most} (half of router.queue_size), got {args.orders}"
        )
    return run(run_demo(config, orders=args.orders, seconds=args.seconds))


def _serve_config(args: argparse.Namespace) -> Config:
    config = _config(args.config)
    service = config.service
    for option, name in (
        ("--host", "host"),
        ("--port", "port"),
        ("--unix-socket", "unix_socket"),
        ("--log-format", "log_format"),
    ):
        value = getattr(args, name)
        if value is not None:
            service = opt.override(service, option, **{name: value})
    setup_logging(service.log_level, json_lines=service.log_format == "json")
    return msgspec.structs.replace(config, service=service)


def _sim_config(args: argparse.Namespace) -> Config:
    config = _config(args.config)
    sim = config.sim
    if args.tier:
        sim = opt.override(sim, "--tier", tier=args.tier)
    if args.v1:
        sim = opt.override(sim, "--v1", v1_mode=args.v1)
    if args.seed is not None:
        sim = opt.override(sim, "--seed", seed=args.seed)
    if args.fault:
        sim = opt.override(sim, "--fault", faults=opt.faults(sim.faults, args.fault))
    return msgspec.structs.replace(config, sim=sim)


def _new_key(directory: Path, config: Config) -> Callable[[SimServer], None]:
    """Once the simulator listens: a key pair it accepts and a bot config, in ``directory``."""

    def ready(server: SimServer) -> None:
        try:
            kit = write_bot_kit(directory, server.url, config.credentials.key_type)
        except OSError as exc:
            raise OptionError(f"--new-key: cannot write to {directory}: {exc}") from None
        server.register_key(kit.key_id, kit.public_pem)
        print("\n".join(kit.describe()), flush=True)

    return ready


async def _run_sim(args: argparse.Namespace) -> int:
    config = _sim_config(args)
    ready = None
    if args.new_key is not None:
        if not is_loopback(args.host):
            raise OptionError(
                f"--new-key: needs a loopback --host ({LOOPBACK_HINT}): a router talks plain "
                "http to the simulator only there"
            )
        ready = _new_key(args.new_key, config)
    try:
        await serve_forever(config.sim, args.host, args.port, ready)
    except OSError as exc:
        where = f"{args.host}:{args.port}"
        raise OptionError(f"--host/--port: cannot listen on {where}: {exc}") from None
    return 0


def _journal(args: argparse.Namespace) -> int:
    path = Path(args.path) if args.path else _config(args.config).journal.journal_path()
    with SqliteJournal.read(path) as journal:
        print(summary(journal, list_unresolved=args.unresolved))
    return 0


def _check(args: argparse.Namespace) -> int:
    return run(check(_config(args.config), err=lambda line: print(line, file=sys.stderr)))


def _kill(args: argparse.Namespace) -> int:
    return run(
        kill_command(
            _config(args.config),
            args.config,
            reason=args.reason,
            subaccount=args.subaccount,
            timeout_s=args.timeout,
        )
    )


def _state(args: argparse.Namespace) -> int:
    return run(state_command(_config(args.config), args.state))


def _desk_commands(commands: argparse._SubParsersAction[opt.Parser]) -> None:
    config_help = "the TOML config whose [service] names the running service"
    kill = commands.add_parser(
        "kill",
        help="the running service's kill switch: halt, cancel every resting order, confirm; "
        "exit 0 when every one is confirmed cancelled, 1 when not",
    )
    kill.add_argument("--config", type=opt.existing_file, required=True, help=config_help)
    kill.add_argument(
        "--reason", type=opt.reason, default="kalshi-router kill", help="for the logs and report"
    )
    kill.add_argument(
        "--subaccount", type=opt.subaccount, help="only this subaccount's orders (default: all)"
    )
    kill.add_argument(
        "--timeout", type=opt.kill_timeout, default=30.0, help="give up after this long (30 s)"
    )
    state = commands.add_parser(
        "state", help="print the running service's trading state; set it first when given one"
    )
    state.add_argument("state", nargs="?", choices=STATES, help="active, reducing or halted")
    state.add_argument("--config", type=opt.existing_file, required=True, help=config_help)


def _parser() -> argparse.ArgumentParser:
    parser = opt.Parser(prog="kalshi-router", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    config_help = "TOML config file (default: built-in defaults)"
    demo = commands.add_parser("demo", help="run the simulator and send signed batches to it")
    demo.add_argument("--config", type=opt.existing_file, help=config_help)
    demo.add_argument("--dialect", choices=("v2", "v1"), help="override exchange.dialect")
    demo.add_argument("--orders", type=opt.count, default=60, help="size of the burst (60)")
    demo.add_argument("--seconds", type=opt.seconds, default=10.0, help="market making (10 s)")
    demo.add_argument("--tier", help="the simulator's rate-limit tier (default: the config's)")
    serve_cmd = commands.add_parser("serve", help="run the router as a local service")
    serve_cmd.add_argument("--config", type=opt.existing_file, help=config_help)
    serve_cmd.add_argument("--host", type=opt.host, help="override service.host")
    serve_cmd.add_argument("--port", type=opt.port, help="override service.port (0: any free)")
    serve_cmd.add_argument(
        "--unix-socket", type=opt.socket_path, help="override service.unix_socket"
    )
    serve_cmd.add_argument(
        "--log-format", choices=("text", "json"), help="override service.log_format"
    )
    sim = commands.add_parser("sim", help="run the exchange simulator on its own")
    sim.add_argument("--config", type=opt.existing_file, help="TOML config file ([sim] is used)")
    sim.add_argument("--host", type=opt.host, default="127.0.0.1")
    sim.add_argument("--port", type=opt.port, default=8765, help="0: any free port")
    sim.add_argument("--tier", help="rate-limit tier: basic, advanced, premier, paragon, prime")
    sim.add_argument("--v1", choices=("gone", "serve"), help="legacy V1 routes: 410 or served")
    sim.add_argument("--seed", type=opt.whole_number, help="seed of the fault draws")
    sim.add_argument(
        "--fault",
        action="append",
        metavar="NAME=VALUE",
        help="a fault setting, e.g. error_503_rate=0.1, reset_after_rate=0.05, hang_s=2, "
        "ws.drop_frame_rate=0.05 (repeatable; see FaultConfig and WsFaultConfig)",
    )
    sim.add_argument(
        "--new-key",
        type=opt.directory,
        metavar="DIR",
        help="write a fresh key pair the simulator accepts and a bot config into DIR, and "
        "print the environment a bot sets",
    )
    check_cmd = commands.add_parser(
        "check", help="check the credentials against the exchange, by reading only (no orders)"
    )
    check_cmd.add_argument(
        "--config", type=opt.existing_file, required=True, help="TOML config file (target url)"
    )
    journal = commands.add_parser(
        "journal", help="summarise the service's intent journal and list unresolved intents"
    )
    journal.add_argument(
        "--config", type=opt.existing_file, help="TOML config file whose journal.path is read"
    )
    journal.add_argument("--path", type=opt.existing_file, help="the journal (overrides config)")
    journal.add_argument(
        "--unresolved",
        action="store_true",
        help="list each intent not settled, or settled unknown (look those up at the exchange)",
    )
    _desk_commands(commands)
    return parser


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": _demo,
    "serve": lambda args: run(serve(_serve_config(args))),
    "sim": lambda args: run(_run_sim(args)),
    "check": _check,
    "journal": _journal,
    "kill": _kill,
    "state": _state,
}


def _warning_as_log_line(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    # One line, through the service's log format when there is one, not a source excerpt.
    log.warning("%s", message)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_as_log_line
            args = _parser().parse_args(argv)
            return _COMMANDS[args.command](args)
    except KalshiRouterError as exc:
        print(f"kalshi-router: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

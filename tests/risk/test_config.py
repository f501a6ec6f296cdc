"""[risk]: numbers by the project's one rule, errors naming the key, off by default."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from kalshi_router.config import Config, OrdersConfig, load_config
from kalshi_router.errors import ConfigError
from kalshi_router.risk.config import (
    ClientLimits,
    RiskConfig,
    TickerLimits,
    check_state,
)

D = Decimal


def _decode(text: str) -> RiskConfig:
    return msgspec.toml.decode(text.encode(), type=RiskConfig)


def _error(text: str) -> str:
    with pytest.raises(msgspec.ValidationError) as info:
        _decode(text)
    return str(info.value)


def test_off_by_default() -> None:
    config = RiskConfig()
    assert config.state == "active"
    assert not config.limited()
    assert config.exposure_limits() == []
    assert Config().risk == config


def test_numbers_follow_the_one_rule() -> None:
    config = _decode(
        """
        max_contracts = 10
        max_notional = "50"
        price_min = 5
        price_max = "0.95"
        max_open_orders = 3
        max_position = "2.5"
        max_orders_per_s = 20
        max_daily_notional = "1000.50"
        """
    )
    assert config.max_contracts == D(10)
    assert config.max_notional == D(50)
    assert config.price_min == D("0.05")  # an int price is cents
    assert config.price_max == D("0.95")
    assert config.max_open_orders == 3
    assert config.max_position == D("2.5")
    assert config.max_orders_per_s == 20.0
    assert config.max_daily_notional == D("1000.50")
    assert config.limited()


def test_rules_per_ticker_and_client() -> None:
    config = _decode(
        """
        [[tickers]]
        match = "KXHIGHNY-*"
        max_position = 100
        [[tickers]]
        match = "KXFOO-26DEC31"
        price_max = 90
        [[clients]]
        name = "bot-a"
        max_orders_per_s = 0.5
        """
    )
    wild, exact = config.tickers
    assert wild.fits("KXHIGHNY-26DEC31-T60")
    assert wild.fits("KXHIGHNY-")
    assert not wild.fits("KXHIGHN")
    assert not wild.fits("XKXHIGHNY-1")
    assert exact.fits("KXFOO-26DEC31")
    assert not exact.fits("KXFOO-26DEC31-X")
    assert TickerLimits(match="*").fits("ANY")
    assert config.clients[0].max_orders_per_s == 0.5
    assert config.limited()
    assert config.exposure_limits() == ["risk.tickers[0].max_position"]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("max_position = 0", "risk.max_position: must be > 0"),
        ('max_contracts = "1.234"', "risk.max_contracts: at most 2 decimal places"),
        ("max_contracts = 2.5", "risk.max_contracts: must not be a float"),
        ("price_min = 0", "risk.price_min: must be between 0 and 1"),
        ('price_max = "1.00"', "risk.price_max: must be between 0 and 1"),
        ('price_min = "0.5"\nprice_max = "0.4"', "risk.price_min: must be <= price_max"),
        ("max_notional = 50", "risk.max_notional: must be a str of dollars"),
        ("max_notional = 50.0", "risk.max_notional: must not be a float"),
        ('max_daily_notional = "-1"', "risk.max_daily_notional: must be > 0"),
        ('max_daily_notional = "lots"', "risk.max_daily_notional: not a decimal number"),
        ('max_daily_notional = "nan"', "risk.max_daily_notional: must be > 0"),
        ("max_open_orders = 0", "risk.max_open_orders: must be an int >= 1"),
        ("max_orders_per_s = 0", "risk.max_orders_per_s: must be a finite number > 0"),
        ("max_orders_per_s = inf", "risk.max_orders_per_s: must be a finite number > 0"),
        ("max_orders_per_s = nan", "risk.max_orders_per_s: must be a finite number > 0"),
        (
            '[[tickers]]\nmatch = "A"\n[[tickers]]\nmatch = "B"\n'
            '[[tickers]]\nmatch = "C-*"\nmax_position = 0',
            "risk.tickers[2].max_position: must be > 0",
        ),
        ('[[tickers]]\nmatch = ""', "risk.tickers[0].match: must be a ticker or a prefix"),
        ('[[tickers]]\nmatch = "K*X"', "risk.tickers[0].match: '*' may only end a prefix"),
        ('[[tickers]]\nmatch = "K X"', "risk.tickers[0].match: printable ASCII"),
        ('[[clients]]\nname = "bot a"', "risk.clients[0].name: a client name is"),
        ('[[clients]]\nname = "other"', "risk.clients[0].name: 'other' is reserved"),
        (
            '[[clients]]\nname = "a"\n[[clients]]\nname = "a"',
            "risk.clients[1].name: 'a' has a rule already",
        ),
        (
            '[[clients]]\nname = "a"\nprice_min = 1.5',
            "risk.clients[0].price_min: must not be a float",
        ),
    ],
)
def test_errors_name_the_key(text: str, said: str) -> None:
    assert said in _error(text)


def test_unknown_keys_and_states_are_errors() -> None:
    assert "unknown field `max_postion`" in _error("max_postion = 1")
    assert "unknown field `colour`" in _error('[[tickers]]\nmatch = "A"\ncolour = 1')
    assert "`$.tickers[0]`" in _error("[[tickers]]\nmax_position = 1")  # match is required
    assert "Invalid enum value 'paused'" in _error('state = "paused"')


def test_python_construction_is_checked_too() -> None:
    with pytest.raises(ConfigError, match=r"risk\.tickers\[0\]\.max_position: must be > 0"):
        RiskConfig(tickers=[TickerLimits(match="A", max_position=D(0))])
    with pytest.raises(ConfigError, match=r"risk\.state: must be one of active, reducing, halted"):
        RiskConfig(state="paused")  # type: ignore[arg-type]
    config = RiskConfig(clients=[ClientLimits(name="bot", max_notional=D("5"))])
    assert config.clients[0].max_notional == D(5)
    assert config.clients[0].limited()


def test_check_state() -> None:
    assert check_state("reducing") == "reducing"
    with pytest.raises(ConfigError, match="state: must be one of active, reducing, halted"):
        check_state("HALTED", "state")


def test_exposure_limits_need_the_tracker(tmp_path: Path) -> None:
    path = tmp_path / "router.toml"
    path.write_text(
        '[risk]\nmax_contracts = 5\n[[risk.tickers]]\nmatch = "A-*"\nmax_position = 3\n'
    )
    with pytest.raises(ConfigError, match=r"risk\.tickers\[0\]\.max_position: needs \[orders\]"):
        load_config(path)
    path.write_text(path.read_text() + "[orders]\ntrack = true\n")
    config = load_config(path)
    assert config.risk.tickers[0].max_position == D(3)
    # Limits on one order alone need no tracker.
    assert Config(risk=RiskConfig(max_contracts=D(5), price_max=D("0.9"))).risk.price_max == D(
        "0.9"
    )
    assert Config(risk=RiskConfig(max_open_orders=2), orders=OrdersConfig(track=True))


def test_frozen() -> None:
    config = RiskConfig()
    with pytest.raises(AttributeError):
        config.state = "halted"  # type: ignore[misc]

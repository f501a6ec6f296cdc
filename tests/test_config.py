"""Config: shipped files load, unknown keys and bad values are errors that name the key."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from kalshi_router.config import Config, ExchangeConfig, RouterConfig, load_config
from kalshi_router.errors import ConfigError
from kalshi_router.intent import OrderIntent
from kalshi_router.risk import Exposure, RiskGate

CONFIG_DIR = Path(__file__).parents[1] / "config"


def _load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "router.toml"
    path.write_text(text)
    return load_config(path)


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    message = str(info.value)
    assert str(tmp_path / "router.toml") in message
    return message


# --- shipped files ------------------------------------------------------------------------------


def test_default_toml_is_the_embedded_simulator() -> None:
    config = load_config(CONFIG_DIR / "default.toml")
    assert config.exchange.target == "sim"
    assert config.exchange.dialect == "v2"
    assert config.sim.tier == "basic"
    # The file documents every default, so it must say exactly what the code does.
    assert config == Config()


@pytest.mark.parametrize(
    ("name", "base_url"),
    [
        ("kalshi-demo.toml", "https://external-api.demo.kalshi.co/trade-api/v2"),
        ("kalshi-prod.toml", "https://external-api.kalshi.com/trade-api/v2"),
    ],
)
def test_kalshi_configs_target_recommended_hosts(name: str, base_url: str) -> None:
    config = load_config(CONFIG_DIR / name)
    assert config.exchange.target == "url"
    assert config.exchange.base_url == base_url
    assert config.exchange.dialect == "v2"
    assert config.exchange.verify_tls
    assert config.credentials.key_id_env == "KALSHI_API_KEY_ID"


def test_every_shipped_file_is_tested() -> None:
    assert sorted(p.name for p in CONFIG_DIR.glob("*.toml")) == [
        "default.toml",
        "kalshi-demo.toml",
        "kalshi-prod.toml",
    ]


def test_empty_file_is_all_defaults(tmp_path: Path) -> None:
    config = _load(tmp_path, "")
    assert config == Config()
    assert config.router.max_batch_size == 20
    # 0: the router reads the costs from GET /account/endpoint_costs at start.
    assert config.limits.create_cost == 0
    assert config.limits.cancel_cost == 0
    assert config.limits.headroom_s == 0.25
    assert config.credentials.key_type == "rsa"


def test_values_are_read(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        """
        [exchange]
        target = "url"
        base_url = "http://127.0.0.1:8080/trade-api/v2"
        dialect = "v1"
        verify_tls = false
        [credentials]
        key_type = "ed25519"
        private_key_env = "MY_PEM"
        [limits]
        write_refill_rate = 300
        write_bucket_capacity = 600
        [router]
        max_batch_size = 60
        linger_ms = 1.5
        [sim]
        tier = "advanced"
        """,
    )
    assert config.exchange.dialect == "v1"
    assert not config.exchange.verify_tls
    assert config.credentials.key_type == "ed25519"
    assert config.credentials.private_key_env == "MY_PEM"
    assert config.limits.write_bucket_capacity == 600
    assert config.router.max_batch_size == 60
    assert config.router.linger_ms == 1.5
    assert config.sim.tier == "advanced"


def test_the_idle_fast_path_is_on_by_default_and_can_be_switched_off(tmp_path: Path) -> None:
    assert Config().router.idle_fast_path is True
    assert _load(tmp_path, "[router]\nidle_fast_path = false\n").router.idle_fast_path is False
    assert "bool" in _error(tmp_path, "[router]\nidle_fast_path = 1\n")


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(AttributeError):
        config.router = RouterConfig()  # type: ignore[misc]


# --- unknown keys, types, enums -----------------------------------------------------------------


def test_unknown_top_level_key(tmp_path: Path) -> None:
    message = _error(tmp_path, "colour = 'blue'\n")
    assert "unknown field `colour`" in message


def test_unknown_section(tmp_path: Path) -> None:
    assert "unknown field `routr`" in _error(tmp_path, "[routr]\nmax_batch_size = 5\n")


@pytest.mark.parametrize(
    ("text", "field", "where"),
    [
        ("[router]\nmax_batch_sise = 5\n", "max_batch_sise", "$.router"),
        ("[exchange]\nverify_ssl = true\n", "verify_ssl", "$.exchange"),
        ("[credentials]\nprivate_key = 'x'\n", "private_key", "$.credentials"),
        ("[sim]\nteir = 'basic'\n", "teir", "$.sim"),
    ],
)
def test_unknown_nested_key(tmp_path: Path, text: str, field: str, where: str) -> None:
    message = _error(tmp_path, text)
    assert f"unknown field `{field}`" in message
    assert f"`{where}`" in message


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[exchange]\ntarget = 'prod'\n", "$.exchange.target"),
        ("[exchange]\ndialect = 'v3'\n", "$.exchange.dialect"),
        ("[credentials]\nkey_type = 'ecdsa'\n", "$.credentials.key_type"),
    ],
)
def test_bad_enum_value(tmp_path: Path, text: str, where: str) -> None:
    message = _error(tmp_path, text)
    assert "Invalid enum value" in message
    assert f"`{where}`" in message


def test_wrong_type(tmp_path: Path) -> None:
    message = _error(tmp_path, "[router]\nmax_batch_size = '20'\n")
    assert "Expected `int`" in message
    assert "`$.router.max_batch_size`" in message


def test_unknown_sim_tier(tmp_path: Path) -> None:
    message = _error(tmp_path, "[sim]\ntier = 'platinum'\n")
    assert "platinum" in message
    assert "`$.sim`" in message


def test_invalid_toml(tmp_path: Path) -> None:
    assert "invalid TOML" in _error(tmp_path, "[router\n")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match="not found") as info:
        load_config(path)
    assert str(path) in str(info.value)


# --- ranges -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("router", "max_batch_size", "0"),
        ("router", "max_in_flight", "0"),
        ("router", "queue_size", "-1"),
        ("router", "linger_ms", "-0.5"),
        ("router", "deadline_s", "0.0"),
        ("router", "deadline_s", "nan"),
        ("router", "drain_timeout_s", "-1.0"),
        ("exchange", "request_timeout_s", "0.0"),
        ("exchange", "presign_max_age_ms", "99"),
        ("exchange", "presign_max_age_ms", "2501"),
        ("limits", "write_refill_rate", "-1"),
        ("limits", "write_bucket_capacity", "-1"),
        ("limits", "write_bucket_capacity", "5"),
        ("limits", "create_cost", "-1"),
        ("limits", "cancel_cost", "-1"),
        ("limits", "headroom_s", "1.5"),
        ("router", "backoff_base_s", "0"),
    ],
)
def test_bad_range_names_key(tmp_path: Path, section: str, key: str, value: str) -> None:
    message = _error(tmp_path, f"[{section}]\n{key} = {value}\n")
    assert f"{section}.{key}: must be" in message
    assert f"`$.{section}`" in message


def test_presign_age_stays_within_half_the_clock_skew_limit(tmp_path: Path) -> None:
    # A pre-made signature's timestamp is up to its age behind: that adds to the skew.
    message = _error(tmp_path, "[exchange]\nmax_clock_skew_s = 1.0\npresign_max_age_ms = 501\n")
    assert "presign_max_age_ms: must be at most half of exchange.max_clock_skew_s" in message
    assert "(500 ms)" in message
    edge = _load(tmp_path, "[exchange]\nmax_clock_skew_s = 1.0\npresign_max_age_ms = 500\n")
    assert edge.exchange.presign_max_age_ms == 500
    # Off, the age is never used, so a small skew limit does not make it wrong.
    off = _load(tmp_path, "[exchange]\nmax_clock_skew_s = 0.1\npresign = false\n")
    assert (off.exchange.presign, off.exchange.presign_max_age_ms) == (False, 500)


def test_presign_is_on_by_default() -> None:
    assert (ExchangeConfig().presign, ExchangeConfig().presign_max_age_ms) == (True, 500)


def test_range_checked_when_built_in_code() -> None:
    with pytest.raises(ConfigError, match=re.escape("router.max_batch_size: must be >= 1")):
        RouterConfig(max_batch_size=0)


# --- exchange URL and TLS -----------------------------------------------------------------------


def test_verify_tls_false_refused_for_real_host(tmp_path: Path) -> None:
    message = _error(
        tmp_path,
        """
        [exchange]
        target = "url"
        base_url = "https://external-api.kalshi.com/trade-api/v2"
        verify_tls = false
        """,
    )
    assert "exchange.verify_tls" in message


@pytest.mark.parametrize(
    "base_url",
    [
        "https://127.0.0.1:8443/trade-api/v2",
        "https://127.5.6.7/trade-api/v2",
        "https://localhost:8443/trade-api/v2",
        "https://[::1]:8443/trade-api/v2",
    ],
)
def test_verify_tls_false_allowed_for_loopback(base_url: str) -> None:
    exchange = ExchangeConfig(target="url", base_url=base_url, verify_tls=False)
    assert not exchange.verify_tls


def test_verify_tls_false_refused_for_real_host_even_with_sim_target() -> None:
    # OrderRouter.connect without a base_url goes to this one whatever the target.
    with pytest.raises(ConfigError, match=r"exchange\.verify_tls"):
        ExchangeConfig(target="sim", verify_tls=False)


@pytest.mark.parametrize(
    "base_url",
    [
        "https://external-api.kalshi.com",
        "https://external-api.kalshi.com/trade-api/v2/",
        "https://external-api.kalshi.com/trade-api/v1",
        "https://external-api.kalshi.com/trade-api/v2?x=1",
        "external-api.kalshi.com/trade-api/v2",
        "ftp://external-api.kalshi.com/trade-api/v2",
    ],
)
def test_base_url_must_end_with_api_prefix(tmp_path: Path, base_url: str) -> None:
    message = _error(tmp_path, f'[exchange]\ntarget = "url"\nbase_url = "{base_url}"\n')
    assert "exchange.base_url" in message


def test_plain_http_refused_for_real_host() -> None:
    with pytest.raises(ConfigError, match="https"):
        ExchangeConfig(target="url", base_url="http://external-api.kalshi.com/trade-api/v2")


def test_plain_http_allowed_for_loopback() -> None:
    assert ExchangeConfig(target="url", base_url="http://127.0.0.1:9000/trade-api/v2")


# --- credentials --------------------------------------------------------------------------------


def test_credentials_must_be_variable_names_and_value_is_not_echoed(tmp_path: Path) -> None:
    secret = "-----BEGIN RSA PRIVATE KEY-----MIIEpAIBAAKCAQEA"
    message = _error(tmp_path, f'[credentials]\nprivate_key_env = "{secret}"\n')
    assert "credentials.private_key_env" in message
    assert "MIIEpAIBAAKCAQEA" not in message


@pytest.mark.parametrize("name", ["kalshi-prod.toml", "kalshi-demo.toml"])
def test_the_exchange_configs_refuse_a_fat_finger(name: str) -> None:
    config = load_config(CONFIG_DIR / name)
    gate = RiskGate(config.risk, Exposure(), time.monotonic)
    intent = OrderIntent.ask("KXHIGHNY-26DEC31-T60", price="0.99", count=1_000_000)
    refusal = gate.check_create(intent)
    assert refusal is not None
    assert refusal.code == "risk.max_contracts"
    assert (
        gate.check_create(OrderIntent.ask("KXHIGHNY-26DEC31-T60", price="0.99", count=10)) is None
    )

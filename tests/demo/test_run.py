"""The demo runs on the embedded simulator only: a config that targets an exchange is refused
rather than quietly ignored (issue 11: ``demo --config config/kalshi-demo.toml`` ran on the
simulator as if it had traded on Kalshi's demo exchange)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kalshi_router.cli import main
from kalshi_router.config import load_config
from kalshi_router.demo import run_demo
from kalshi_router.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "config"


@pytest.mark.parametrize(
    ("name", "exchange"),
    [
        ("kalshi-demo.toml", "Kalshi's demo exchange (https://external-api.demo.kalshi.co/"),
        ("kalshi-prod.toml", "Kalshi's production exchange (https://external-api.kalshi.com/"),
    ],
)
def test_a_config_for_a_real_exchange_is_refused(
    name: str, exchange: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(CONFIGS / name)
    assert main(["demo", "--config", path]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(
        f'kalshi-router: {path}: exchange.target is "url", but the demo runs only on the '
        f"embedded simulator, not on {exchange}"
    )
    for instead in (
        f"kalshi-router check --config {path}",
        f"kalshi-router serve --config {path}",
        "the library (OrderRouter.connect)",
    ):
        assert instead in err


def test_a_service_client_config_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bot.toml"
    path.write_text('[exchange]\ntarget = "service"\n')
    assert main(["demo", "--config", str(path)]) == 2
    assert "the demo runs only on the embedded simulator" in capsys.readouterr().err


async def test_the_library_entry_point_refuses_it_too() -> None:
    config = load_config(CONFIGS / "kalshi-demo.toml")
    with pytest.raises(ConfigError, match="the demo runs only on the embedded simulator"):
        await run_demo(config, orders=1, seconds=0.1)

"""The README's first command, run in-process with captured output."""

from __future__ import annotations

from pathlib import Path

import pytest

from kalshi_router.cli import main


@pytest.mark.parametrize("dialect", ["v2", "v1"])
def test_demo_prints_each_orders_own_answer(
    dialect: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--dialect", dialect]) == 0
    out = capsys.readouterr().out
    assert f"{dialect} batch create of 7: HTTP 201, answered" in out
    assert out.count(" accepted ") == 5
    assert "rejected  invalid order: invalid order (post only cross)" in out
    assert "rejected  invalid_price" in out
    assert "rejected  duplicate_client_order_id" in out
    assert "batch cancel of 4: HTTP 200, answered" in out
    assert out.count(" cancelled reduced by ") == 4


def test_bad_config_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[router]\nmax_batch_sise = 3\n")
    assert main(["demo", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "max_batch_sise" in err

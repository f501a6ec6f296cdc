"""The README's first command, run in-process with captured output."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kalshi_router.cli import main


@pytest.mark.parametrize("dialect", ["v2", "v1"])
def test_demo_routes_every_intent_to_one_answer(
    dialect: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--dialect", dialect, "--orders", "10", "--seconds", "2"]) == 0
    out = capsys.readouterr().out
    assert f"dialect {dialect}" in out
    assert "rejected  invalid order: invalid order (post only cross)" in out
    assert "rejected  invalid_price" in out
    assert "resend of the first order, same id           rejected  duplicate_client_order_id" in out
    sent = re.search(r"(\d+) intents, (\d+) outcomes: (\{.*\})", out)
    assert sent is not None
    assert sent[1] == sent[2]
    assert "'accepted'" in sent[3]
    assert "'cancelled'" in sent[3]
    assert "429s: 0" in out
    assert "│" in out  # the latency histogram


def test_bad_config_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[router]\nmax_batch_sise = 3\n")
    assert main(["demo", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "max_batch_sise" in err

"""The README's first command, run in-process with captured output."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kalshi_router.cli import _parser, _sim_config, main


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


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        pytest.param(["--fault", "nope=1"], "expected NAME=NUMBER", id="unknown-name"),
        pytest.param(["--fault", "hang_s=soon"], "is not a number", id="not-a-number"),
        pytest.param(["--fault", "error_503_rate=3"], "between 0 and 1", id="out-of-range"),
        pytest.param(
            ["--fault", "trickle_chunks=2.5"], "not a whole number", id="fractional-count"
        ),
        pytest.param(["--fault", "ws.nope=1"], "ws.drop_frame_rate", id="unknown-ws-name"),
        pytest.param(["--fault", "latency.fixed_ms=1"], "NAME=NUMBER", id="not-a-ws-table"),
        pytest.param(
            ["--fault", "ws.stall_rate=2"], "ws.stall_rate must be between", id="ws-range"
        ),
    ],
)
def test_sim_fault_flags_are_checked_before_listening(
    flags: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sim", "--port", "0", *flags]) == 2
    assert problem in capsys.readouterr().err


def test_sim_fault_flags_set_the_fault_config() -> None:
    args = _parser().parse_args(
        ["sim", "--fault", "error_503_rate=0.25", "--fault", "hang_s=2", "--seed", "9"]
    )
    config = _sim_config(args).sim
    assert (config.faults.error_503_rate, config.faults.hang_s, config.seed) == (0.25, 2.0, 9)
    assert config.faults.reset_after_rate == 0.0


def test_ws_fault_flags_set_the_websocket_faults() -> None:
    flags = ["--fault", "ws.drop_frame_rate=0.05", "--fault", "ws.drop_connection_every_frames=7"]
    faults = _sim_config(_parser().parse_args(["sim", *flags])).sim.faults
    assert (faults.ws.drop_frame_rate, faults.ws.drop_connection_every_frames) == (0.05, 7)
    assert isinstance(faults.ws.drop_connection_every_frames, int)
    assert faults.error_503_rate == 0.0


def test_a_count_fault_flag_is_a_whole_number() -> None:
    args = _parser().parse_args(["sim", "--fault", "trickle_chunks=4", "--fault", "trickle_rate=1"])
    faults = _sim_config(args).sim.faults
    assert (faults.trickle_chunks, faults.trickle_rate) == (4, 1.0)
    assert isinstance(faults.trickle_chunks, int)

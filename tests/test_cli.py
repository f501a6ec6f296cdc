"""The README's first command, run in-process with captured output; the options of every
command checked; ``kill`` and ``state`` against a running ``serve``."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import aiohttp
import pytest

from kalshi_router.cli import _parser, _sim_config, main
from kalshi_router.intent import OrderIntent
from kalshi_router.outcome import Accepted, Rejected
from kalshi_router.service.client import RouterClient
from tests.service.test_serve_cancels import place, statuses, tracked_config, until
from tests.service.test_serve_e2e import TICKER, TOKEN, Sim, base_env, serve


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


# --- kill and state: the running service's desk ----------------------------------------------


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        pytest.param(
            ["kill", "--subaccount", "64"], "--subaccount: must be a subaccount", id="sub"
        ),
        pytest.param(["kill", "--subaccount", "one"], "--subaccount: must be a whole", id="sub-x"),
        pytest.param(["kill", "--timeout", "0"], "--timeout: must be a finite number", id="t0"),
        pytest.param(["kill", "--timeout", "nan"], "--timeout: must be a finite number", id="nan"),
        pytest.param(["kill", "--timeout", "601"], "--timeout: must be at most 600", id="t-big"),
        pytest.param(["kill", "--reason", ""], "--reason: must be 1 to 200 characters", id="r0"),
        pytest.param(["kill", "--reason", "a\nb"], "--reason: printable characters only", id="nl"),
        pytest.param(["state", "paused"], "state: invalid choice: 'paused'", id="state"),
    ],
)
def test_desk_options_are_checked_naming_the_option(
    argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--config", "config/default.toml"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"kalshi-router: {problem}")
    assert captured.err.count("\n") == 1  # one line, no usage dump or traceback
    assert captured.out == ""


@pytest.mark.parametrize("command", ["kill", "state"])
def test_desk_commands_need_a_config_naming_the_service(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command]) == 2
    assert "--config" in capsys.readouterr().err
    assert main([command, "--config", str(tmp_path / "none.toml")]) == 2
    assert "--config: no such file" in capsys.readouterr().err
    # Port 0 is the service's to choose: a client cannot know it.
    path = tmp_path / "zero.toml"
    path.write_text("[service]\nport = 0\n")
    assert main([command, "--config", str(path)]) == 2
    assert "service.port: 0 lets the service pick a port" in capsys.readouterr().err


def test_a_service_that_is_not_there_exits_1(
    tmp_path: Path, refused_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gone.toml"
    path.write_text(f"[service]\nport = {refused_port}\n")
    assert main(["kill", "--config", str(path)]) == 1
    assert "kalshi-router: cannot reach the service at http://127.0.0.1:" in capsys.readouterr().err
    assert main(["state", "--config", str(path)]) == 1


async def cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kalshi_router",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_kill_and_state_against_a_running_serve(tmp_path: Path) -> None:
    keys = [f"cli-{n}" for n in range(3)]
    async with (
        Sim(tmp_path, "premier") as sim,
        serve(tmp_path, tracked_config(tmp_path, sim)) as service,
        aiohttp.ClientSession() as session,
        RouterClient(service.url, token=TOKEN, name="quoter") as bot,
    ):
        # A bot's config for the same service: its port, the token from the environment.
        path = tmp_path / "desk.toml"
        path.write_text(f"[service]\nport = {service.url.rpartition(':')[2]}\n")
        env = {**base_env(tmp_path), "KALSHI_ROUTER_TOKEN": TOKEN}
        assert await cli("state", "--config", str(path), env=env) == (
            0,
            "trading state: active\n",
            "",
        )
        await place(bot, keys)
        await until(session, sim, keys, "resting")
        code, out, err = await cli("kill", "--reason", "desk drill", "--config", str(path), env=env)
        assert (code, err) == (0, "")
        lines = out.splitlines()
        assert lines[0].startswith("kill switch (desk drill): every resting order confirmed")
        assert "  cancel-all: sent" in lines
        assert lines[-1].startswith("trading state: halted (creates refused); to trade again: ")
        assert await statuses(session, sim) == dict.fromkeys(keys, "canceled")
        refused = await bot.place(OrderIntent.bid(TICKER, "0.30", 1))
        assert isinstance(refused, Rejected)
        assert refused.code == "risk.halted"
        code, out, _ = await cli("state", "active", "--config", str(path), env=env)
        assert (code, out) == (0, "trading state: active (was halted)\n")
        assert isinstance(await bot.place(OrderIntent.bid(TICKER, "0.30", 1)), Accepted)
        wrong = {**env, "KALSHI_ROUTER_TOKEN": "not-the-token"}
        code, _, err = await cli("kill", "--config", str(path), env=wrong)
        assert code == 1
        assert "refused the token (401)" in err
        assert "not-the-token" not in err
        code, _ = await service.stop()
    assert code == 0, service.log()
    assert "POST /v1/kill by client kalshi-router-cli: desk drill" in service.log()

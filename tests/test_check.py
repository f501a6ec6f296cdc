"""``kalshi-router check``: a good key gets exit 0 and what the exchange said; anything else
gets the precise reason and exit 1 (issue 11: there was no way to check a key without trading).
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from collections.abc import AsyncIterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from kalshi_router.check import check
from kalshi_router.cli import main
from kalshi_router.config import load_config
from kalshi_router.sim import FaultConfig, SimConfig, SimServer
from kalshi_router.wire.signer import generate_key
from tests.integration.conftest import KEY_ID, PRIVATE_PEM, running_sim
from tests.wire.test_tls import Recorder, self_signed, serving

OTHER_PEM = generate_key("ed25519")[0]
GOOD_STATUS = {"exchange_active": True, "trading_active": True}


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with running_sim(SimConfig()) as server:
        yield server


def write_config(tmp_path: Path, base_url: str, *, timeout_s: float = 5.0) -> Path:
    path = tmp_path / "bot.toml"
    path.write_text(
        "[exchange]\n"
        'target = "url"\n'
        f'base_url = "{base_url}"\n'
        "verify_tls = true\n"
        f"request_timeout_s = {timeout_s}\n"
    )
    return path


def key_env(tmp_path: Path, pem: bytes = PRIVATE_PEM, mode: int = 0o600) -> dict[str, str]:
    path = tmp_path / "kalshi.key"
    path.write_bytes(pem)
    path.chmod(mode)
    return {"KALSHI_API_KEY_ID": KEY_ID, "KALSHI_PRIVATE_KEY_PATH": str(path)}


async def run(config: Path, environ: dict[str, str]) -> tuple[int, list[str], list[str]]:
    out: list[str] = []
    err: list[str] = []
    code = await check(load_config(config), environ=environ, out=out.append, err=err.append)
    return code, out, err


def the_problem(err: list[str]) -> str:
    (line,) = err
    assert line.startswith("kalshi-router check: ")
    return line.removeprefix("kalshi-router check: ")


async def test_a_good_key_reports_what_the_exchange_said(sim: SimServer, tmp_path: Path) -> None:
    code, out, err = await run(write_config(tmp_path, sim.url), key_env(tmp_path))
    assert (code, err) == (0, [])
    assert out[:6] == [
        f"exchange      a simulator on this machine ({sim.url})",
        f"key           id {KEY_ID}, Ed25519 (from KALSHI_PRIVATE_KEY_PATH)",
        "status        exchange active, trading active",
        "tier          basic",
        "write budget  refill 100 tokens/s, bucket 100 tokens",
        "costs         10 tokens per order, 2 per cancel: 10 orders/s",
    ]
    assert out[6].startswith("clock skew    ")
    assert out[6].endswith(" s, the exchange's clock minus ours (limit 5 s)")
    assert out[7] == "ok: the exchange accepts this key, and trading is open"


async def test_an_rsa_key_from_the_pem_variable_says_its_size(
    sim: SimServer, tmp_path: Path
) -> None:
    private, public = generate_key("rsa")
    sim.register_key("rsa-key", public)
    environ = {"KALSHI_API_KEY_ID": "rsa-key", "KALSHI_PRIVATE_KEY": private.decode()}
    code, out, _ = await run(write_config(tmp_path, sim.url), environ)
    assert code == 0
    assert out[1] == "key           id rsa-key, RSA 2048-bit (from KALSHI_PRIVATE_KEY)"


@pytest.mark.parametrize(
    ("key_id", "pem", "cause"),
    [
        pytest.param("no-such-key", PRIVATE_PEM, "INCORRECT_API_KEY", id="unknown-key-id"),
        pytest.param(KEY_ID, OTHER_PEM, "INCORRECT_API_KEY_SIGNATURE", id="right-id-wrong-key"),
    ],
)
async def test_a_refused_key_gets_what_to_check(
    sim: SimServer, tmp_path: Path, key_id: str, pem: bytes, cause: str
) -> None:
    environ = key_env(tmp_path, pem) | {"KALSHI_API_KEY_ID": key_id}
    code, out, err = await run(write_config(tmp_path, sim.url), environ)
    assert code == 1
    # It got as far as the exchange's status, which needs no key.
    assert out[-1] == "status        exchange active, trading active"
    problem = the_problem(err)
    assert problem.startswith(f"GET /account/limits: HTTP 401 (authentication_error: {cause})")
    for name in ("KALSHI_API_KEY_ID", "KALSHI_PRIVATE_KEY", "KALSHI_PRIVATE_KEY_PATH"):
        assert name in problem
    assert "demo and production keys are not interchangeable" in problem
    assert key_id not in problem


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        pytest.param({}, "environment variable KALSHI_API_KEY_ID (the API key id) is not set"),
        pytest.param(
            {"KALSHI_API_KEY_ID": KEY_ID},
            "no private key: set environment variable KALSHI_PRIVATE_KEY (PEM text) or "
            "KALSHI_PRIVATE_KEY_PATH (path to a PEM file)",
            id="no-key",
        ),
        pytest.param(
            {"KALSHI_API_KEY_ID": KEY_ID, "KALSHI_PRIVATE_KEY_PATH": "/nonexistent/kalshi.key"},
            "environment variable KALSHI_PRIVATE_KEY_PATH: private key file not found: "
            "/nonexistent/kalshi.key",
            id="no-key-file",
        ),
        pytest.param(
            {"KALSHI_API_KEY_ID": KEY_ID, "KALSHI_PRIVATE_KEY": "-----BEGIN nonsense"},
            "environment variable KALSHI_PRIVATE_KEY: could not parse the PEM private key",
            id="bad-key",
        ),
    ],
)
async def test_a_key_that_cannot_be_loaded_is_the_reason(
    sim: SimServer, tmp_path: Path, environ: dict[str, str], problem: str
) -> None:
    code, out, err = await run(write_config(tmp_path, sim.url), environ)
    assert code == 1
    assert len(out) == 1  # the exchange, then nothing: no request was made
    assert the_problem(err).startswith(problem)


async def test_nothing_listening_is_the_reason(refused_port: int, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{refused_port}/trade-api/v2"
    code, _, err = await run(write_config(tmp_path, url), key_env(tmp_path))
    assert code == 1
    assert the_problem(err).startswith(
        f"cannot reach a simulator on this machine ({url}): GET /exchange/status: cannot connect:"
    )


async def test_a_certificate_that_cannot_be_verified_is_the_reason(tmp_path: Path) -> None:
    recorder = Recorder()
    async with serving(recorder, self_signed(tmp_path)) as url:
        code, _, err = await run(write_config(tmp_path, url), key_env(tmp_path))
    assert code == 1
    problem = the_problem(err)
    assert problem.startswith(f"cannot reach a simulator on this machine ({url}): ")
    assert "GET /exchange/status: TLS failed: " in problem
    assert "certificate verify failed" in problem
    assert recorder.paths == []


async def test_no_answer_in_time_is_the_reason(tmp_path: Path) -> None:
    hang = FaultConfig(hang_rate=1.0, hang_s=10.0, paths=["GET /exchange/status"])
    async with running_sim(SimConfig(faults=hang)) as sim:
        config = write_config(tmp_path, sim.url, timeout_s=0.2)
        code, _, err = await run(config, key_env(tmp_path))
    assert code == 1
    assert the_problem(err).endswith("GET /exchange/status: no answer in time (0.2 s)")


class FakeExchange(Recorder):
    """Answers the three reads as told, with its ``Date`` header ``date_offset_s`` off."""

    def __init__(
        self,
        status: dict[str, Any],
        date_offset_s: float = 0.0,
        errors: dict[str, tuple[int, dict[str, Any]]] | None = None,
    ) -> None:
        super().__init__()
        self.status = status
        self.date_offset_s = date_offset_s
        self.errors = errors or {}
        """Path (without /trade-api/v2) -> the error status and body it answers instead."""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        answers: dict[str, Any] = {
            "/trade-api/v2/exchange/status": self.status,
            "/trade-api/v2/account/limits": {
                "usage_tier": "premier",
                "read": {"refill_rate": 200, "bucket_capacity": 400},
                "write": {"refill_rate": 400, "bucket_capacity": 800},
            },
            "/trade-api/v2/account/endpoint_costs": {"default_cost": 10, "endpoint_costs": []},
        }
        status, body = self.errors.get(
            request.path.removeprefix("/trade-api/v2"), (200, answers[request.path])
        )
        response = web.json_response(body, status=status)
        response.headers["Date"] = formatdate(time.time() + self.date_offset_s, usegmt=True)
        return response


@pytest.mark.parametrize(
    ("status", "shown", "problems"),
    [
        pytest.param(
            {"exchange_active": True, "trading_active": False},
            "exchange active, trading PAUSED",
            ["trading is paused (trading_active false: outside trading hours or paused)"],
            id="paused",
        ),
        pytest.param(
            {
                "exchange_active": False,
                "trading_active": False,
                "exchange_estimated_resume_time": "2026-12-08T06:00:00Z",
            },
            "exchange CLOSED, trading PAUSED",
            [
                "the exchange is closed for maintenance (exchange_active false; estimated to "
                "resume at 2026-12-08T06:00:00Z)",
                "trading is paused (trading_active false: outside trading hours or paused)",
            ],
            id="closed",
        ),
    ],
)
async def test_a_closed_or_paused_exchange_is_the_reason(
    tmp_path: Path, status: dict[str, Any], shown: str, problems: list[str]
) -> None:
    async with serving(FakeExchange(status), None) as url:
        code, out, err = await run(write_config(tmp_path, url), key_env(tmp_path))
    assert code == 1
    assert f"status        {shown}" in out
    # The rest is still read and shown.
    assert "write budget  refill 400 tokens/s, bucket 800 tokens" in out
    assert err == [f"kalshi-router check: {problem}" for problem in problems]


async def test_a_clock_far_from_the_exchanges_is_the_reason(tmp_path: Path) -> None:
    async with serving(FakeExchange(GOOD_STATUS, date_offset_s=30), None) as url:
        code, out, err = await run(write_config(tmp_path, url), key_env(tmp_path))
    assert code == 1
    # A Date header has whole seconds: 30 s off reads as 29.5 to 30.5.
    assert re.fullmatch(
        r"clock skew    \+(29|30)\.\d s, the exchange's clock minus ours \(limit 5 s\)", out[-1]
    )
    assert re.match(
        r"our clock is (29|30)\.\d s behind the exchange's \(more than "
        r"exchange\.max_clock_skew_s = 5\): signatures carry our time",
        the_problem(err),
    )


# --- the command itself --------------------------------------------------------------------


async def cli(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """``python -m kalshi_router`` in a subprocess (the simulator runs on this loop)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kalshi_router",
        *args,
        env={k: v for k, v in os.environ.items() if not k.startswith("KALSHI_")} | env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_command_exits_0_for_a_good_key_and_warns_once_of_a_loose_key_file(
    sim: SimServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path, sim.url)
    env = key_env(tmp_path, mode=0o644)
    code, out, err = await cli("check", "--config", str(config), env=env, cwd=tmp_path)
    assert code == 0, err
    assert "tier          basic" in out
    assert out.endswith("ok: the exchange accepts this key, and trading is open\n")
    # One line, once (it was a log line and a Python warning with its source line).
    assert err.count("accessible by group or others") == 1
    assert err.count("\n") == 1
    assert "chmod 600" in err


async def test_the_command_exits_1_with_the_reason(sim: SimServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, sim.url)
    env = key_env(tmp_path, OTHER_PEM)
    code, _, err = await cli("check", "--config", str(config), env=env, cwd=tmp_path)
    assert code == 1
    assert err.startswith("kalshi-router check: GET /account/limits: HTTP 401 ")
    assert "Traceback" not in err


async def test_a_key_without_the_scope_is_the_reason(tmp_path: Path) -> None:
    forbidden = {"error": {"code": "forbidden", "message": "forbidden", "details": ""}}
    exchange = FakeExchange(GOOD_STATUS, errors={"/account/limits": (403, forbidden)})
    async with serving(exchange, None) as url:
        code, _, err = await run(write_config(tmp_path, url), key_env(tmp_path))
    assert code == 1
    problem = the_problem(err)
    assert problem.startswith("GET /account/limits: HTTP 403 (forbidden) from ")
    assert "a read-only key is refused with 403: trading needs a key with write scope" in problem


async def test_an_unreadable_status_is_a_problem_but_the_key_is_still_checked(
    tmp_path: Path,
) -> None:
    down = {"error": {"code": "service_unavailable", "message": "maintenance"}}
    exchange = FakeExchange(GOOD_STATUS, errors={"/exchange/status": (503, down)})
    async with serving(exchange, None) as url:
        code, out, err = await run(write_config(tmp_path, url), key_env(tmp_path))
    assert code == 1
    assert "status        unknown: HTTP 503 service_unavailable: maintenance" in out
    assert "tier          premier" in out
    assert err == [
        "kalshi-router check: GET /exchange/status: HTTP 503 service_unavailable: maintenance"
    ]


@pytest.mark.parametrize("target", ["sim", "service"])
def test_a_config_without_an_exchange_to_check_is_refused(
    tmp_path: Path, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'[exchange]\ntarget = "{target}"\n')
    assert main(["check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(
        "kalshi-router: exchange.target: check reads the exchange at exchange.base_url "
        f"(target = \"url\"), not '{target}'"
    )

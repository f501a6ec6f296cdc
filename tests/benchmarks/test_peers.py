"""The peer contenders' plumbing: pipelining, timing, skip reasons, and pykalshi on the sim."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
from collections.abc import AsyncIterator, Sequence
from typing import Any

import _peers
import pytest
from _data import make_intents, stdlib_order
from _sim import UNLIMITED_WRITES

from kalshi_router.sim import SimConfig, SimServer
from kalshi_router.wire.signer import generate_key


async def test_pipelined_places_every_chunk_once_with_at_most_workers_in_flight() -> None:
    in_flight, peak, placed = 0, 0, []

    async def place(chunk: Sequence[int]) -> list[str]:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0)  # let the other workers start theirs
        placed.append(list(chunk))
        in_flight -= 1
        return ["accepted"] * len(chunk)

    labels = await _peers.pipelined(list(range(45)), 20, 3, place)

    assert sorted(map(len, placed)) == [5, 20, 20]
    assert sorted(x for chunk in placed for x in chunk) == list(range(45))
    assert peak == 3
    assert labels == ["accepted"] * 45


async def test_measure_times_only_the_timed_orders_and_counts_labels() -> None:
    sent: list[list[str]] = []

    @contextlib.asynccontextmanager
    async def sender() -> AsyncIterator[_peers.Send[str]]:
        async def send(orders: Sequence[str]) -> list[str]:
            sent.append(list(orders))
            return ["accepted" if o != "bad" else "rejected:x" for o in orders]

        yield send

    result = await _peers.measure(sender(), ["w"], ["a", "bad", "b"])

    assert sent == [["w"], ["a", "bad", "b"]]
    assert result["orders"] == 3
    assert result["outcomes"] == {"accepted": 2, "rejected:x": 1}
    assert result["warmup_outcomes"] == {"accepted": 1}
    assert result["orders_per_s"] == pytest.approx(3 / result["seconds"])


def test_pykalshi_skip_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def without_pykalshi(name: str, *args: Any) -> Any:
        return None if name == "pykalshi" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_pykalshi)
    reason = _peers.pykalshi_skip_reason("rsa")
    assert reason == "skipped: pykalshi not installed (pip install -e '.[bench]')"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: object())
    assert _peers.pykalshi_skip_reason("rsa") is None
    assert "RSA keys only" in str(_peers.pykalshi_skip_reason("ed25519"))


async def test_pykalshi_batches_reach_the_sim_and_refusals_are_unreported() -> None:
    pytest.importorskip("pykalshi")
    private_pem, public_pem = generate_key("rsa")
    orders = [stdlib_order(i) for i in make_intents(25, 1, "peer")]
    limits_off = SimConfig(
        write_refill=int(UNLIMITED_WRITES["write_refill"]),
        write_capacity=int(UNLIMITED_WRITES["write_capacity"]),
    )
    async with SimServer(limits_off) as sim:
        sim.register_key("peer-key", public_pem)
        spec = {
            "url": sim.url,
            "key_id": "peer-key",
            "private_pem": private_pem.decode(),
            "in_flight": 2,
            "batch": 10,
        }
        # The second send repeats 5 ids: the sim refuses those, pykalshi drops them.
        result = await _peers.measure(_peers.batch_sender(_peers.PYKALSHI, spec), [], orders)
        again = await _peers.measure(_peers.batch_sender(_peers.PYKALSHI, spec), [], orders[:5])

    assert result["outcomes"] == {"accepted": 25}
    assert again["outcomes"] == {"unreported": 5}

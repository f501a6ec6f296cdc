"""JSON log lines and logging setup; the Prometheus metrics as a router observer (called
directly, read back from its own registry); the lines the service's router writes about orders."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kalshi_router.intent import OrderIntent
from kalshi_router.outcome import Accepted, Rejected, Unknown
from kalshi_router.service.logs import JsonFormatter, setup_logging
from kalshi_router.service.metrics import CONTENT_TYPE, Metrics
from kalshi_router.wire.presign import SignatureFigures
from tests.service.conftest import TICKER, MakeService, eventually, slow_exchange

# --- JSON lines --------------------------------------------------------------------------------


def record(
    message: str = "sent %d",
    args: tuple[object, ...] = (3,),
    level: int = logging.WARNING,
    **extra: object,
) -> logging.LogRecord:
    logger = logging.getLogger("kalshi_router.test")
    made = logger.makeRecord(logger.name, level, __file__, 1, message, args, None, extra=extra)
    made.created = 1_767_225_600.25  # 2026-01-01T00:00:00.250Z
    made.msecs = 250.0
    return made


def test_a_json_line_has_the_fixed_fields() -> None:
    line = json.loads(JsonFormatter().format(record()))
    assert line == {
        "ts": "2026-01-01T00:00:00.250Z",
        "level": "warning",
        "logger": "kalshi_router.test",
        "message": "sent 3",
    }


def test_order_ids_are_top_level_fields() -> None:
    formatted = JsonFormatter().format(
        record(client_order_id="c-1", order_ids=["o-1", "o-2"], path="/v1/orders", status=201)
    )
    line = json.loads(formatted)
    assert line["client_order_id"] == "c-1"
    assert line["order_ids"] == ["o-1", "o-2"]
    assert (line["path"], line["status"]) == ("/v1/orders", 201)
    # One object per line: a search by id is a grep.
    assert "\n" not in formatted


def test_other_extras_stay_out_and_odd_values_do_not_break_the_line() -> None:
    line = json.loads(
        JsonFormatter().format(record(order_id=Decimal("1.5"), secret="x", client_order_id=None))
    )
    assert line["order_id"] == "1.5"
    # Only the id fields are copied: an extra that happens to hold a key never is.
    assert "secret" not in line
    assert "client_order_id" not in line


def test_an_exception_is_one_field() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        made = record()
        made.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(made))
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert line["exception"].endswith("ValueError: boom")


# --- setup_logging -----------------------------------------------------------------------------


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, put back as it was (pytest's capture handlers included)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    access = logging.getLogger("aiohttp.access").level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(access)


@pytest.mark.parametrize("json_lines", [False, True])
def test_setup_logging_is_idempotent(
    root_logger: logging.Logger, capsys: pytest.CaptureFixture[str], json_lines: bool
) -> None:
    setup_logging("debug", json_lines=json_lines)
    setup_logging("warning", json_lines=json_lines)
    assert len(root_logger.handlers) == 1
    assert isinstance(root_logger.handlers[0].formatter, JsonFormatter) is json_lines
    assert root_logger.level == logging.WARNING
    assert logging.getLogger("aiohttp.access").level == logging.WARNING
    logging.getLogger("kalshi_router.test").info("dropped")
    logging.getLogger("kalshi_router.test").warning("kept", extra={"client_order_id": "c-9"})
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    if json_lines:
        assert json.loads(lines[0])["client_order_id"] == "c-9"
    else:
        assert re.fullmatch(r".* WARNING kalshi_router\.test: kept", lines[0])


# --- metrics -----------------------------------------------------------------------------------


SIGNATURES = "kalshi_router_batch_signatures_total"


def value(metrics: Metrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    assert found is not None, f"no sample {name}{labels}"
    return found


def test_settled_counts_by_lane_outcome_and_code() -> None:
    metrics = Metrics()
    accepted = Accepted(
        client_order_id="c", order_id="o", fill_count=Decimal(0), remaining_count=Decimal(1)
    )
    metrics.settled("create", accepted, 0.2)
    metrics.settled("create", accepted, 0.003)
    metrics.settled("cancel", Rejected(code="not_found", message=""), 0.05)
    outcomes = "kalshi_router_outcomes_total"
    assert value(metrics, outcomes, lane="create", outcome="accepted", code="") == 2
    assert value(metrics, outcomes, lane="cancel", outcome="rejected", code="not_found") == 1
    latency = "kalshi_router_submit_to_outcome_seconds"
    assert value(metrics, f"{latency}_count") == 3
    assert value(metrics, f"{latency}_sum") == pytest.approx(0.253)
    assert value(metrics, f"{latency}_bucket", le="0.005") == 1
    assert value(metrics, f"{latency}_bucket", le="0.1") == 2
    assert value(metrics, f"{latency}_bucket", le="0.25") == 3


def test_sent_and_answered_feed_waits_batches_and_fill() -> None:
    metrics = Metrics()
    metrics.sent("create", 3, [0.01, 0.02, 0.03], 0.5)
    metrics.answered("create", 3, 0.04)
    metrics.sent("cancel", 1, [0.001], 0.0)
    metrics.answered("cancel", 1, 0.02)
    assert value(metrics, "kalshi_router_queue_wait_seconds_count") == 4
    assert value(metrics, "kalshi_router_queue_wait_seconds_sum") == pytest.approx(0.061)
    assert value(metrics, "kalshi_router_limiter_wait_seconds_count") == 2
    assert value(metrics, "kalshi_router_limiter_wait_seconds_sum") == pytest.approx(0.5)
    assert value(metrics, "kalshi_router_batches_total", lane="create") == 1
    assert value(metrics, "kalshi_router_batches_total", lane="cancel") == 1
    assert value(metrics, "kalshi_router_batch_fill_sum", lane="create") == 3
    assert value(metrics, "kalshi_router_batch_fill_bucket", lane="create", le="2.0") == 0
    assert value(metrics, "kalshi_router_batch_fill_bucket", lane="create", le="5.0") == 1
    assert value(metrics, "kalshi_router_round_trip_seconds_count") == 2
    assert value(metrics, "kalshi_router_round_trip_seconds_sum") == pytest.approx(0.06)


def test_429s_retries_and_reconciliations_count() -> None:
    metrics = Metrics()
    metrics.rate_limited()
    metrics.rate_limited()
    metrics.retried(5)
    metrics.reconciling(3)
    assert value(metrics, "kalshi_router_http_429_total") == 2
    assert value(metrics, "kalshi_router_retries_total") == 5
    assert value(metrics, "kalshi_router_reconciliations_total") == 3


def test_gauges_read_the_router_at_scrape_time() -> None:
    metrics = Metrics()
    state = {"tokens": 0.0, "queued": 0.0, "flying": 0.0}
    metrics.bind(
        tokens=lambda: state["tokens"],
        queue_depth=lambda: state["queued"],
        in_flight=lambda: state["flying"],
    )
    assert value(metrics, "kalshi_router_queue_depth") == 0
    state.update(tokens=120, queued=7, flying=2)
    assert value(metrics, "kalshi_router_tokens_spent") == 120
    assert value(metrics, "kalshi_router_queue_depth") == 7
    assert value(metrics, "kalshi_router_in_flight") == 2


def test_batch_signatures_are_read_at_scrape_time_and_absent_when_off() -> None:
    metrics = Metrics()
    figures: list[SignatureFigures | None] = [None]
    metrics.bind_signatures(lambda: figures[0])
    assert metrics.registry.get_sample_value(SIGNATURES, {"source": "premade"}) is None
    figures[0] = SignatureFigures(premade=7, inline=2)
    assert value(metrics, SIGNATURES, source="premade") == 7
    assert value(metrics, SIGNATURES, source="inline") == 2


def test_each_service_has_its_own_registry() -> None:
    # Two in one process (tests, an embedder with two routers) neither clash nor share counts.
    first, second = Metrics(), Metrics()
    first.rate_limited()
    assert value(first, "kalshi_router_http_429_total") == 1
    assert value(second, "kalshi_router_http_429_total") == 0


def test_render_is_prometheus_text() -> None:
    metrics = Metrics()
    metrics.answered("create", 4, 0.01)
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}
    assert families["kalshi_router_batches"].type == "counter"
    assert families["kalshi_router_batch_fill"].type == "histogram"
    assert families["kalshi_router_queue_depth"].type == "gauge"
    assert {
        "kalshi_router_outcomes",
        "kalshi_router_http_429",
        "kalshi_router_retries",
        "kalshi_router_reconciliations",
        "kalshi_router_queue_wait_seconds",
        "kalshi_router_limiter_wait_seconds",
        "kalshi_router_round_trip_seconds",
        "kalshi_router_submit_to_outcome_seconds",
        "kalshi_router_tokens_spent",
        "kalshi_router_in_flight",
    } <= set(families)


# --- lines about orders, from the service's router -------------------------------------------


async def test_each_order_that_did_not_go_through_has_one_line_with_its_id(
    make_service: MakeService, caplog: pytest.LogCaptureFixture
) -> None:
    running = await make_service()
    caplog.set_level(logging.INFO, logger="kalshi_router")
    placed = await running.router.place(OrderIntent.bid(TICKER, "0.30", 1))
    refused = await running.router.place(OrderIntent.bid(TICKER, "0.305", 1))
    missing = await running.router.cancel("no-such-order", TICKER)
    assert isinstance(placed, Accepted)
    assert isinstance(refused, Rejected)
    assert isinstance(missing, Rejected)

    def lines(field: str, key: str | None) -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.__dict__.get(field) == key]

    # Successes only at debug: at load they would be most of the log.
    assert lines("client_order_id", placed.client_order_id) == []
    (line,) = lines("client_order_id", refused.client_order_id)
    assert "invalid_price" in line.getMessage()
    assert json.loads(JsonFormatter().format(line))["client_order_id"] == refused.client_order_id
    (line,) = lines("order_id", "no-such-order")
    assert "not_found" in line.getMessage()


async def test_closing_with_orders_in_flight_names_them_as_fields(
    make_service: MakeService, caplog: pytest.LogCaptureFixture
) -> None:
    running = await make_service()
    slow_exchange(running, 500)
    intents = [OrderIntent.bid(TICKER, "0.30", 1) for _ in range(2)]
    futures = running.router.submit_many(intents)
    await eventually(lambda: running.router.in_flight == 2)
    with caplog.at_level(logging.INFO, logger="kalshi_router"):
        await running.router.aclose(drain_timeout=0.05)
    assert [type(f.result()) for f in futures] == [Unknown, Unknown]
    ids = [i.client_order_id for i in intents]
    (summary,) = [r for r in caplog.records if r.getMessage().startswith("closing with")]
    assert summary.__dict__.get("client_order_ids") == ids
    # And one line of its own per order.
    per_order = [
        r.__dict__["client_order_id"] for r in caplog.records if "client_order_id" in r.__dict__
    ]
    assert per_order == ids

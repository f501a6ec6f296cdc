"""The intake app on aiohttp's test server over a real router and an in-process simulator:
per-intent answers, errors that name the field, auth, msgpack, the stream, metrics, draining."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kalshi_router.config import Config, ServiceConfig
from kalshi_router.outcome import Accepted, Amended, Cancelled, Rejected
from kalshi_router.service.protocol import (
    OrderStatus,
    ResultsBody,
    StreamError,
    StreamOutcome,
    StreamReply,
)
from kalshi_router.sim import FaultConfig
from tests.integration.conftest import FAST_RETRIES, KEY_ID
from tests.service.conftest import (
    AUTH,
    TICKER,
    TOKEN,
    MakeService,
    Running,
    eventually,
    resting,
    slow_exchange,
)

MSGPACK = "application/msgpack"
_results = msgspec.json.Decoder(ResultsBody)
_status = msgspec.json.Decoder(OrderStatus)


async def post(
    running: Running, path: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """POST ``body`` as JSON (bytes as they are); the status and the decoded JSON answer."""
    data = body if isinstance(body, bytes) else msgspec.json.encode(body)
    async with running.http.post(
        path, data=data, headers=AUTH if headers is None else headers
    ) as r:
        return r.status, msgspec.json.decode(await r.read())


async def submit(running: Running, path: str, items: list[Any], **body: Any) -> ResultsBody:
    """POST intents that must be taken (200 or 202); the results, typed."""
    data = msgspec.json.encode({"items": items, **body})
    async with running.http.post(path, data=data, headers=AUTH) as response:
        assert response.status in (200, 202), await response.text()
        return _results.decode(await response.read())


def at_exchange(running: Running) -> dict[str, Any]:
    """The sim's orders for our key, by client_order_id."""
    return {o.client_order_id: o for o in running.sim.state.exchange.orders(KEY_ID)}


# --- POST /v1/orders ---------------------------------------------------------------------------


async def test_orders_are_answered_per_intent_in_request_order(running: Running) -> None:
    ids = ["svc-order-a", "svc-order-b", "svc-order-c"]
    status, body = await post(
        running, "/v1/orders", {"items": [resting(client_order_id=i) for i in ids]}
    )
    assert status == 200
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2]
    assert [r["key"] for r in results] == ids
    # The wire shape clients read: the outcome carries its kind as "type", money as strings.
    assert [r["outcome"]["type"] for r in results] == ["accepted"] * 3
    assert [r["outcome"]["remaining_count"] for r in results] == ["1.00"] * 3
    held = at_exchange(running)
    assert set(held) == set(ids)
    assert [r["outcome"]["order_id"] for r in results] == [held[i].order_id for i in ids]


@pytest.mark.parametrize(
    ("bad", "field", "message"),
    [
        pytest.param(resting(price="1.40"), "price", "between 0 and 1", id="price-above-1"),
        pytest.param(resting(price="0.40001"), "price", "at most 4 decimal", id="price-5-places"),
        pytest.param(resting(price="nan"), "price", "finite", id="price-nan"),
        pytest.param(resting(price="Infinity"), "price", "finite", id="price-infinity"),
        pytest.param(resting(price="0,40"), "price", "not a decimal number", id="price-comma"),
        pytest.param(resting(price=True), "price", "not a bool", id="price-bool"),
        # A JSON integer is cents, as in Python: 4000 is refused, never read as $40.
        pytest.param(resting(price=4000), "price", "an int is cents", id="price-int"),
        pytest.param(resting(price=0.4), "price", "float", id="price-float"),
        pytest.param(resting(count="0"), "count", "> 0", id="count-zero"),
        pytest.param(resting(count="1.555"), "count", "at most 2 decimal", id="count-3-places"),
        pytest.param(resting(side="up"), "side", "Invalid enum value 'up'", id="side-enum"),
        pytest.param(resting(time_in_force="day"), "time_in_force", "Invalid enum", id="tif-enum"),
        pytest.param(resting(bogus=1), "bogus", "unknown field", id="unknown-field"),
        pytest.param(
            {"side": "bid", "price": "0.30", "count": "1"}, "ticker", "required", id="missing"
        ),
        pytest.param(
            resting(client_order_id="has space"), "client_order_id", "1-64", id="coid-charset"
        ),
        pytest.param(
            resting(post_only=True, time_in_force="immediate_or_cancel"),
            "post_only",
            "good_till_canceled",
            id="cross-field-rule",
        ),
        pytest.param([1, 2], "body", "Expected `object`", id="not-an-object"),
    ],
)
async def test_a_bad_intent_is_refused_alone(
    running: Running, bad: Any, field: str, message: str
) -> None:
    good = [resting(client_order_id="svc-good-1"), resting(client_order_id="svc-good-2")]
    status, body = await post(running, "/v1/orders", {"items": [good[0], bad, good[1]]})
    assert status == 200
    first, refused, last = body["results"]
    assert refused["index"] == 1
    assert "key" not in refused
    assert "outcome" not in refused
    assert refused["error"]["field"] == field
    assert message in refused["error"]["message"]
    assert (first["index"], first["outcome"]["type"]) == (0, "accepted")
    assert (last["index"], last["outcome"]["type"]) == (2, "accepted")
    assert set(at_exchange(running)) == {"svc-good-1", "svc-good-2"}


@pytest.mark.parametrize(
    "price",
    [
        pytest.param("0.4", id="short"),
        pytest.param("0.4000", id="four-places"),
        pytest.param("4e-1", id="exponent"),
        # A JSON number is read from its text, not through a binary float: exact.
        pytest.param(Decimal("0.4"), id="json-number"),
    ],
)
async def test_exact_price_spellings_reach_the_book_as_forty_cents(
    running: Running, price: str | Decimal
) -> None:
    results = await submit(running, "/v1/orders", [resting(price=price, client_order_id="svc-p")])
    assert isinstance(results.results[0].outcome, Accepted)
    # The sim counts price in $0.0001.
    assert at_exchange(running)["svc-p"].price == 4000


async def test_a_rejection_by_the_exchange_is_an_outcome_not_an_error(running: Running) -> None:
    results = await submit(running, "/v1/orders", [resting(price="0.305")])
    (result,) = results.results
    assert result.error is None
    assert isinstance(result.outcome, Rejected)
    assert (result.outcome.code, result.outcome.client_order_id) == ("invalid_price", result.key)


async def test_a_client_order_id_already_accepted_is_refused_before_the_exchange(
    running: Running,
) -> None:
    first = await submit(running, "/v1/orders", [resting(client_order_id="svc-once")])
    accepted = first.results[0].outcome
    assert isinstance(accepted, Accepted)
    writes = running.router.stats().items_sent
    again = await submit(running, "/v1/orders", [resting(client_order_id="svc-once")])
    error = again.results[0].error
    assert error is not None
    assert error.field == "client_order_id"
    assert accepted.order_id in error.message
    # Nothing was sent, and the book still holds the first outcome.
    assert running.router.stats().items_sent == writes
    async with running.http.get("/v1/orders/svc-once", headers=AUTH) as response:
        assert _status.decode(await response.read()).outcome == accepted


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        pytest.param(b'{"items": [', "body", "truncated", id="truncated-json"),
        pytest.param(b"not json", "body", "malformed body", id="not-json"),
        pytest.param(b"[]", "body", "Expected `object`", id="array"),
        pytest.param(b"{}", "items", "required", id="no-items"),
        pytest.param(b'{"items": 3}', "items", "Expected `array`", id="items-not-array"),
        pytest.param(b'{"items": [], "itemz": []}', "itemz", "unknown field", id="unknown-key"),
        pytest.param(b'{"items": [], "wait": "no"}', "wait", "Expected `bool`", id="wait-type"),
        pytest.param(b'{"items": [], "deadline_s": 0}', "deadline_s", "> 0", id="deadline-0"),
        pytest.param(
            b'{"items": [], "deadline_s": 1e9}', "deadline_s", "<= 86400", id="deadline-huge"
        ),
    ],
)
async def test_a_malformed_body_is_a_400_naming_the_problem(
    running: Running, body: bytes, field: str, message: str
) -> None:
    status, answer = await post(running, "/v1/orders", body)
    assert status == 400
    assert answer["field"] == field
    assert answer["error"].startswith("malformed body: ")
    assert message in answer["error"]
    # The service keeps running.
    assert (await submit(running, "/v1/orders", [resting()])).results[0].outcome is not None


async def test_too_many_items_is_a_413(make_service: MakeService) -> None:
    running = await make_service(ServiceConfig(max_items=2))
    status, answer = await post(running, "/v1/orders", {"items": [resting()] * 3})
    assert (status, answer) == (413, {"error": "3 items; at most 2", "field": "items"})
    assert at_exchange(running) == {}


async def test_a_body_over_the_limit_is_a_413_with_the_limit(make_service: MakeService) -> None:
    running = await make_service(ServiceConfig(max_body_bytes=2000))
    status, answer = await post(running, "/v1/orders", {"items": [resting()] * 40})
    assert status == 413
    assert answer["error"] == "request body larger than 2000 bytes"
    assert at_exchange(running) == {}
    # One that fits still goes.
    results = await submit(running, "/v1/orders", [resting()])
    assert isinstance(results.results[0].outcome, Accepted)


# --- auth --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="none"),
        pytest.param({"Authorization": "Bearer wrong"}, id="wrong"),
        pytest.param({"Authorization": f"Bearer {TOKEN}x"}, id="longer"),
        pytest.param({"Authorization": TOKEN}, id="no-scheme"),
        pytest.param({"Authorization": f"Basic {TOKEN}"}, id="other-scheme"),
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/orders"),
        ("POST", "/v1/cancels"),
        ("GET", "/v1/orders/anything"),
        ("GET", "/v1/stats"),
        ("GET", "/v1/stream"),
        ("GET", "/metrics"),
        ("GET", "/no/such/path"),
    ],
)
async def test_without_the_token_every_route_is_a_bare_401(
    running: Running, headers: dict[str, str], method: str, path: str
) -> None:
    body = msgspec.json.encode({"items": [resting()]})
    async with running.http.request(method, path, data=body, headers=headers) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        # No detail: nothing says whether the token was missing, malformed or wrong.
        assert await response.json() == {"error": "unauthorized", "field": None}
    assert at_exchange(running) == {}


@pytest.mark.parametrize(("path", "answer"), [("/healthz", "alive"), ("/readyz", "ready")])
async def test_probes_need_no_token(running: Running, path: str, answer: str) -> None:
    async with running.http.get(path) as response:
        assert response.status == 200
        assert await response.json() == {"status": answer}


async def test_without_a_token_configured_no_header_is_needed(make_service: MakeService) -> None:
    # A Unix-socket service: its 0600 mode is the guard.
    running = await make_service(token=None)
    status, body = await post(running, "/v1/orders", {"items": [resting()]}, headers={})
    assert (status, body["results"][0]["outcome"]["type"]) == (200, "accepted")


# --- wait: false, and status by key ------------------------------------------------------------


async def test_no_wait_answers_202_with_keys_then_status_settles(running: Running) -> None:
    slow_exchange(running, 300)
    results = await submit(
        running, "/v1/orders", [resting(client_order_id="svc-later"), resting()], wait=False
    )
    assert [(r.index, r.status, r.outcome) for r in results.results] == [
        (0, "pending", None),
        (1, "pending", None),
    ]
    assert results.results[0].key == "svc-later"
    async with running.http.get("/v1/orders/svc-later", headers=AUTH) as response:
        assert response.status == 200
        assert await response.json() == {
            "key": "svc-later",
            "status": "pending",
            "client_order_id": "svc-later",
            "actions": [{"action": "place", "status": "pending"}],
        }
    await running.router.flush()
    async with running.http.get("/v1/orders/svc-later", headers=AUTH) as response:
        found = _status.decode(await response.read())
    assert found.status == "settled"
    assert isinstance(found.outcome, Accepted)
    assert found.outcome.order_id == at_exchange(running)["svc-later"].order_id


async def test_an_unknown_key_is_a_404_naming_it(running: Running) -> None:
    async with running.http.get("/v1/orders/never-sent", headers=AUTH) as response:
        assert response.status == 404
        body = await response.json()
    assert "'never-sent'" in body["error"]


async def test_the_book_keeps_only_the_newest_outcomes(make_service: MakeService) -> None:
    running = await make_service(ServiceConfig(keep_outcomes=2))
    for key in ("svc-k1", "svc-k2", "svc-k3"):
        await submit(running, "/v1/orders", [resting(client_order_id=key)])
    found = {}
    for key in ("svc-k1", "svc-k2", "svc-k3"):
        async with running.http.get(f"/v1/orders/{key}", headers=AUTH) as response:
            found[key] = response.status
    assert found == {"svc-k1": 404, "svc-k2": 200, "svc-k3": 200}


# --- cancels, amends, decreases ----------------------------------------------------------------


async def test_cancels_amends_and_decreases(running: Running) -> None:
    placed = await submit(running, "/v1/orders", [resting(count="3"), resting(count="3")])
    first, second = (r.outcome for r in placed.results)
    assert isinstance(first, Accepted)
    assert isinstance(second, Accepted)
    ref = {"ticker": TICKER}

    amend = {**ref, "order_id": first.order_id, "side": "bid", "price": "0.31", "count": "5"}
    (amended,) = (await submit(running, "/v1/amends", [amend])).results
    assert amended.key == first.order_id
    assert isinstance(amended.outcome, Amended)
    assert amended.outcome.remaining_count == Decimal(5)

    decrease = {**ref, "order_id": first.order_id, "reduce_by": "2"}
    bad_decrease = {**ref, "order_id": first.order_id}  # neither reduce_by nor reduce_to
    decreased, refused = (await submit(running, "/v1/decreases", [decrease, bad_decrease])).results
    assert isinstance(decreased.outcome, Amended)
    assert decreased.outcome.remaining_count == Decimal(3)
    assert refused.error is not None
    assert refused.error.field == "reduce_by"

    cancels = [
        {**ref, "order_id": first.order_id},
        {"order_id": second.order_id},  # no ticker: Kalshi routes cancels by it
        {**ref, "order_id": "no-such-order"},
        {**ref, "order_id": second.order_id},
    ]
    results = (await submit(running, "/v1/cancels", cancels)).results
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert isinstance(results[0].outcome, Cancelled)
    assert results[0].outcome.reduced_by == Decimal(3)
    assert results[1].error is not None
    assert results[1].error.field == "ticker"
    assert isinstance(results[2].outcome, Rejected)
    assert results[2].outcome.code == "not_found"
    assert isinstance(results[3].outcome, Cancelled)
    statuses = {o.order_id: o.status for o in at_exchange(running).values()}
    assert statuses == {first.order_id: "canceled", second.order_id: "canceled"}


# --- msgpack -----------------------------------------------------------------------------------


async def test_msgpack_in_msgpack_out(running: Running) -> None:
    body = msgspec.msgpack.encode(
        {"items": [resting(client_order_id="svc-mp"), resting(price="2")]}
    )
    headers = {**AUTH, "Content-Type": MSGPACK}
    async with running.http.post("/v1/orders", data=body, headers=headers) as response:
        assert response.status == 200
        assert response.content_type == MSGPACK
        results = msgspec.msgpack.decode(await response.read(), type=ResultsBody).results
    assert isinstance(results[0].outcome, Accepted)
    assert results[0].outcome.client_order_id == "svc-mp"
    assert results[1].error is not None
    assert results[1].error.field == "price"
    # A GET has no body: Accept asks for msgpack.
    headers = {**AUTH, "Accept": MSGPACK}
    async with running.http.get("/v1/orders/svc-mp", headers=headers) as response:
        assert response.content_type == MSGPACK
        found = msgspec.msgpack.decode(await response.read(), type=OrderStatus)
    assert found.outcome == results[0].outcome


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        pytest.param(b"\xc1", 400, "body", id="malformed"),
        pytest.param(
            msgspec.msgpack.encode({"items": [], "deadline_s": float("nan")}),
            400,
            "deadline_s",
            id="nan-deadline",
        ),
        pytest.param(msgspec.msgpack.encode({"items": [{}] * 5}), 413, "items", id="too-many"),
    ],
)
async def test_msgpack_errors_are_msgpack(
    make_service: MakeService, body: bytes, status: int, field: str
) -> None:
    running = await make_service(ServiceConfig(max_items=4))
    headers = {**AUTH, "Content-Type": MSGPACK}
    async with running.http.post("/v1/orders", data=body, headers=headers) as response:
        assert response.status == status
        assert response.content_type == MSGPACK
        assert msgspec.msgpack.decode(await response.read())["field"] == field


# --- the stream --------------------------------------------------------------------------------


class Stream:
    """A raw WebSocket to /v1/stream in JSON or msgpack."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse, binary: bool) -> None:
        self.socket = socket
        self.binary = binary
        self._replies = (msgspec.msgpack.Decoder if binary else msgspec.json.Decoder)(StreamReply)

    async def send(self, message: Any) -> None:
        """A request (encoded in the stream's format), or raw bytes / text as they are."""
        if isinstance(message, bytes):
            await self.socket.send_bytes(message)
        elif isinstance(message, str):
            await self.socket.send_str(message)
        elif self.binary:
            await self.socket.send_bytes(msgspec.msgpack.encode(message))
        else:
            await self.socket.send_str(msgspec.json.encode(message).decode())

    async def receive(self, count: int) -> list[StreamReply]:
        """The next ``count`` replies; a stream that falls silent fails the test, not hangs it."""
        replies: list[StreamReply] = []
        async with asyncio.timeout(10):
            while len(replies) < count:
                message = await self.socket.receive()
                expected = aiohttp.WSMsgType.BINARY if self.binary else aiohttp.WSMsgType.TEXT
                assert message.type == expected, message
                replies.append(self._replies.decode(message.data))
        return replies


async def open_stream(running: Running, binary: bool) -> Stream:
    query = "?format=msgpack" if binary else ""
    socket = await running.http.ws_connect(f"/v1/stream{query}", headers=AUTH)
    return Stream(socket, binary)


def by_type(replies: list[StreamReply]) -> dict[str, dict[Any, Any]]:
    """Replies as {"ack": {id: key}, "outcome": {id: outcome}, "error": {id: (field, msg)}}."""
    found: dict[str, dict[Any, Any]] = {"ack": {}, "outcome": {}, "error": {}}
    for reply in replies:
        name, value = (
            ("error", (reply.field, reply.message))
            if isinstance(reply, StreamError)
            else ("outcome", reply.outcome)
            if isinstance(reply, StreamOutcome)
            else ("ack", reply.key)
        )
        assert reply.id not in found[name], f"two {name}s for id {reply.id}"
        found[name][reply.id] = value
    return found


@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
async def test_stream_acks_then_answers_each_id(running: Running, binary: bool) -> None:
    stream = await open_stream(running, binary)
    requests = [
        {"type": "submit", "id": 1, "item": resting(client_order_id="svc-ws-1")},
        {"type": "submit", "id": "two", "item": resting(price="0")},
        {"type": "submit", "id": 3, "item": resting(client_order_id="svc-ws-3")},
    ]
    for request in requests:
        await stream.send(request)
    # Two acks, two outcomes, one error; nothing more.
    received = await stream.receive(5)
    sequence = [(type(reply).__name__, reply.id) for reply in received]
    for n in (1, 3):
        assert sequence.index(("StreamAck", n)) < sequence.index(("StreamOutcome", n))
    replies = by_type(received)
    assert replies["ack"] == {1: "svc-ws-1", 3: "svc-ws-3"}
    assert set(replies["outcome"]) == {1, 3}
    assert all(isinstance(o, Accepted) for o in replies["outcome"].values())
    assert replies["outcome"][1].client_order_id == "svc-ws-1"
    assert replies["error"]["two"][0] == "price"
    assert set(at_exchange(running)) == {"svc-ws-1", "svc-ws-3"}

    # A frame that is not a request at all: an error with id null, and the stream stays open.
    await stream.send(b"\xc1" if binary else "{not json")
    (malformed,) = await stream.receive(1)
    assert isinstance(malformed, StreamError)
    assert (malformed.id, malformed.field) == (None, "body")
    await stream.send({"type": "submit", "id": 4, "item": resting(client_order_id="svc-ws-4")})
    after = by_type(await stream.receive(2))
    assert after["ack"] == {4: "svc-ws-4"}
    assert isinstance(after["outcome"][4], Accepted)
    await stream.socket.close()


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        pytest.param({"type": "place", "id": 7, "item": {}}, "type", id="unknown-verb"),
        pytest.param({"type": "submit", "id": 7}, "item", id="no-item"),
        pytest.param({"type": "submit", "id": 7, "item": {}, "x": 1}, "x", id="unknown-key"),
        pytest.param(
            {"type": "submit", "id": 7, "item": resting(), "deadline_s": -1},
            "deadline_s",
            id="negative-deadline",
        ),
    ],
)
async def test_a_request_that_does_not_decode_is_answered_by_its_id(
    running: Running, request_: dict[str, Any], field: str
) -> None:
    # Its sender waits for an answer to id 7: an error with id null would leave it waiting.
    stream = await open_stream(running, binary=False)
    await stream.send(request_)
    assert by_type(await stream.receive(1))["error"][7][0] == field
    await stream.socket.close()


async def test_stream_cancel_amend_decrease(running: Running) -> None:
    placed = (await submit(running, "/v1/orders", [resting(count="4")])).results[0].outcome
    assert isinstance(placed, Accepted)
    ref = {"order_id": placed.order_id, "ticker": TICKER}
    stream = await open_stream(running, binary=False)
    await stream.send(
        {"type": "amend", "id": 1, "item": {**ref, "side": "bid", "price": "0.32", "count": "4"}}
    )
    (amended,) = (by_type(await stream.receive(2))["outcome"]).values()
    await stream.send({"type": "decrease", "id": 2, "item": {**ref, "reduce_to": "1"}})
    (decreased,) = (by_type(await stream.receive(2))["outcome"]).values()
    await stream.send({"type": "cancel", "id": 3, "item": ref})
    (cancelled,) = (by_type(await stream.receive(2))["outcome"]).values()
    assert isinstance(amended, Amended)
    assert isinstance(decreased, Amended)
    assert decreased.remaining_count == Decimal(1)
    assert isinstance(cancelled, Cancelled)
    assert cancelled.reduced_by == Decimal(1)
    await stream.socket.close()


async def test_an_outcome_settles_even_when_its_stream_went_away(running: Running) -> None:
    slow_exchange(running, 200)
    stream = await open_stream(running, binary=False)
    await stream.send({"type": "submit", "id": 1, "item": resting(client_order_id="svc-gone")})
    assert by_type(await stream.receive(1))["ack"] == {1: "svc-gone"}
    await stream.socket.close()
    await running.router.flush()
    async with running.http.get("/v1/orders/svc-gone", headers=AUTH) as response:
        found = _status.decode(await response.read())
    assert isinstance(found.outcome, Accepted)
    assert running.service.streams == {}


# --- metrics -----------------------------------------------------------------------------------


async def scrape(running: Running) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics as {(sample name, sorted labels): value}."""
    async with running.http.get("/metrics", headers=AUTH) as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_move_with_the_traffic(running: Running) -> None:
    before = await scrape(running)
    assert before[("kalshi_router_queue_depth", ())] == 0
    assert before[("kalshi_router_tokens_spent", ())] == 0
    await submit(running, "/v1/orders", [resting() for _ in range(5)] + [resting(price="0.305")])
    after = await scrape(running)
    outcome = "kalshi_router_outcomes_total"
    assert after[(outcome, (("code", ""), ("lane", "create"), ("outcome", "accepted")))] == 5
    rejected = (("code", "invalid_price"), ("lane", "create"), ("outcome", "rejected"))
    assert after[(outcome, rejected)] == 1
    batches = after[("kalshi_router_batches_total", (("lane", "create"),))]
    assert batches >= 1
    assert after[("kalshi_router_batch_fill_sum", (("lane", "create"),))] == 6
    assert after[("kalshi_router_batch_fill_count", (("lane", "create"),))] == batches
    assert after[("kalshi_router_round_trip_seconds_count", ())] == batches
    assert after[("kalshi_router_limiter_wait_seconds_count", ())] == batches
    assert after[("kalshi_router_queue_wait_seconds_count", ())] == 6
    assert after[("kalshi_router_submit_to_outcome_seconds_count", ())] == 6
    assert after[("kalshi_router_submit_to_outcome_seconds_sum", ())] > 0
    # The gauges read the running router at scrape time.
    assert after[("kalshi_router_tokens_spent", ())] == running.router.budget.spent > 0
    assert after[("kalshi_router_queue_depth", ())] == 0
    assert after[("kalshi_router_in_flight", ())] == 0
    assert after[("kalshi_router_http_429_total", ())] == 0
    # Each batch's signature was made ahead or inline ([exchange] presign is on by default).
    signatures = running.router.signatures
    assert signatures is not None
    premade = after[("kalshi_router_batch_signatures_total", (("source", "premade"),))]
    inline = after[("kalshi_router_batch_signatures_total", (("source", "inline"),))]
    assert (premade, inline) == (signatures.premade, signatures.inline)
    assert premade + inline == batches


async def test_metrics_count_429s_and_retries(running: Running) -> None:
    # A 429 storm until the router has met one; then the exchange lets the retries through.
    running.sim.state.faults.configure(FaultConfig(storm_429_rate=1.0, storm_429_s=10))
    results = await submit(running, "/v1/orders", [resting(), resting()], wait=False)
    await eventually(lambda: running.router.stats().http_429 > 0)
    running.sim.state.faults.configure(FaultConfig())
    await running.router.flush()
    for result in results.results:
        async with running.http.get(f"/v1/orders/{result.key}", headers=AUTH) as response:
            assert isinstance(_status.decode(await response.read()).outcome, Accepted)
    metrics = await scrape(running)
    assert metrics[("kalshi_router_http_429_total", ())] == running.router.stats().http_429 >= 1
    assert metrics[("kalshi_router_retries_total", ())] == running.router.stats().retries >= 2


async def test_queue_depth_and_in_flight_while_the_exchange_is_slow(
    make_service: MakeService,
) -> None:
    # One request at a time, of at most 20: 25 intents are 20 on the wire and 5 waiting.
    router = msgspec.structs.replace(FAST_RETRIES, max_in_flight=1, max_batch_size=20)
    running = await make_service(config=Config(router=router))
    slow_exchange(running, 400)
    await submit(running, "/v1/orders", [resting() for _ in range(25)], wait=False)
    await eventually(lambda: running.router.in_flight > 0)
    during = await scrape(running)
    assert during[("kalshi_router_in_flight", ())] == 20
    assert during[("kalshi_router_queue_depth", ())] == 5
    await running.router.flush()
    after = await scrape(running)
    assert (after[("kalshi_router_in_flight", ())], after[("kalshi_router_queue_depth", ())]) == (
        0,
        0,
    )


# --- draining ----------------------------------------------------------------------------------


async def test_draining_refuses_new_intents_and_readyz_says_so(running: Running) -> None:
    stream = await open_stream(running, binary=False)
    running.service.draining = True
    status, body = await post(running, "/v1/orders", {"items": [resting()]})
    assert (status, body["error"]) == (503, "shutting down: not taking new intents")
    async with running.http.get("/readyz") as response:
        assert (response.status, await response.json()) == (503, {"status": "draining"})
    async with running.http.get("/healthz") as response:
        assert response.status == 200
    # An open stream is told per request; a new stream is refused.
    await stream.send({"type": "submit", "id": 1, "item": resting()})
    assert by_type(await stream.receive(1))["error"] == {1: ("service", "shutting down")}
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await running.http.ws_connect("/v1/stream", headers=AUTH)
    assert refused.value.status == 503
    assert at_exchange(running) == {}
    await stream.socket.close()


async def test_close_streams_delivers_pending_outcomes_then_closes(running: Running) -> None:
    slow_exchange(running, 300)
    stream = await open_stream(running, binary=False)
    for n in range(3):
        await stream.send({"type": "submit", "id": n, "item": resting()})
    acks = by_type(await stream.receive(3))["ack"]
    assert set(acks) == {0, 1, 2}
    # What serve does on SIGTERM.
    running.service.draining = True
    await running.router.aclose()
    await running.service.close_streams()
    outcomes = by_type(await stream.receive(3))["outcome"]
    assert {n: o.client_order_id for n, o in outcomes.items()} == acks
    closing = await stream.socket.receive(timeout=5)
    assert closing.type == aiohttp.WSMsgType.CLOSE
    assert closing.data == aiohttp.WSCloseCode.GOING_AWAY
    assert closing.extra == "shutting down"


async def test_a_server_shutdown_closes_open_streams_at_once(running: Running) -> None:
    # Without serve's own drain (an error path, or an embedder's runner): streams are not
    # held open until the runner's shutdown timeout runs out.
    stream = await open_stream(running, binary=False)
    async with asyncio.timeout(3):
        await running.http.server.close()
        closing = await stream.socket.receive()
    assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, aiohttp.WSCloseCode.GOING_AWAY)
    assert running.service.draining
